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
ts: npm
	rm -rf build/js/test
	npx tsc -p tsconfig.json

build: deps npm ts $(BUILD_TARGETS)

unit: build
	bash test/run.sh unit

test: build
	bash test/run.sh

clean:
	rm -rf build dist
