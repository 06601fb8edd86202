# tunneldigger build. Run as root on Debian 12: `make demo` (main job), `make test` (all tests).
# Concern-specific rules live in mk/*.mk; each fragment may add to APT_PACKAGES and BUILD_TARGETS.
SHELL := /bin/bash
CACHE ?= $(HOME)/.cache/tunneldigger
export CACHE
NODE ?= node
APT_PACKAGES := build-essential
BUILD_TARGETS :=

.PHONY: all build deps npm ts test unit demo clean
all: build

include $(sort $(wildcard mk/*.mk))

deps:
	@scripts/ensure-apt.sh $(sort $(APT_PACKAGES))

npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The compiled tests are removed first: a suite deleted or renamed in test/ must not keep
# running from a stale build/js/test (test/run.sh runs exactly the test/unit/*.test.ts sources).
# tsc runs only when a .ts file, a directory holding one (a file added, removed or renamed) or
# the configuration changed: `make deb`, `make install` and the suites that call them no longer
# recompile everything each time.
TS_INPUTS := $(shell find src test bench -name '*.ts' 2>/dev/null)
ts: build/js/.tsc-stamp
build/js/.tsc-stamp: tsconfig.json node_modules/.package-lock.json $(TS_INPUTS) $(sort $(dir $(TS_INPUTS)))
	rm -rf build/js/test
	npx tsc -p tsconfig.json
	@touch $@

build: deps npm ts $(BUILD_TARGETS)

unit: build
	bash test/run.sh unit

test: build
	bash test/run.sh

clean:
	rm -rf build dist
