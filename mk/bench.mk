# Benchmarks (bench/README.md): `make bench` builds and runs them and prints the figures.
# Not part of `make test`: figures depend on the machine's load, nothing here passes or fails
# on timing.
#
# The QuickJS codec run needs a `qjs` interpreter, which the client build does not make (the
# client has no eval). It is built here from the same Debian source tree ($(QJS_SRC), fetched by
# mk/quickjs.mk) with the client engine's optimisation (-Os, LTO), so QuickJS figures are those of
# the engine the client ships with. This fragment is included before mk/quickjs.mk (sorted
# names): QJS_* variables appear only in recipes and secondarily expanded prerequisites ($$).
.SECONDEXPANSION:

BENCH_QJS     := $(CACHE)/quickjs/bench-qjs/qjs
BENCH_QJS_OPT ?= -Os -flto
BENCH_BUNDLE  := build/bench/codec-qjs.js
BENCH_TS      := $(wildcard bench/*.ts) $(wildcard src/protocol/*.ts) $(wildcard src/netlink/*.ts)

.PHONY: bench bench-qjs bench-node
bench: bench-node bench-qjs build/bench/tdnative-fork.node
	@echo "== spawn: posix_spawn vs the former fork+execv, from a 50 MB Node process =="
	$(NODE) build/js/bench/spawn.js
	@echo "== codec: Node vs QuickJS =="
	$(NODE) build/js/bench/codec.js --compare-qjs $(BENCH_QJS) $(BENCH_BUNDLE)
	@echo "== broker core: handshakes and memory (Node) =="
	$(NODE) --expose-gc build/js/bench/broker.js
	$(NODE) --expose-gc build/js/bench/metrics.js
	@if [ -x bench/sizes.sh ]; then echo "== sizes =="; bench/sizes.sh; \
	  else echo "(bench/sizes.sh not present: no size figures)"; fi

# the Node side is compiled by the project's tsc (bench/**/*.ts is in tsconfig.json)
bench-node: npm ts

bench-qjs: $(BENCH_QJS) $(BENCH_BUNDLE)

# qjs.c embeds the REPL as bytecode (qjsc_repl); compile it with the host qjsc of mk/quickjs.mk.
$(BENCH_QJS): $$(QJS_STAMP) $$(QJS_HOST_QJSC)
	@mkdir -p $(@D)
	@echo "bench: building the qjs interpreter ($(BENCH_QJS_OPT)) into $(@D)"
	$(QJS_HOST_QJSC) -s -c -m -o $(@D)/repl.c $(QJS_SRC)/repl.js
	cd $(QJS_SRC) && gcc $(BENCH_QJS_OPT) $(QJS_DEFS) -w -o $@.tmp qjs.c $(@D)/repl.c \
	  $(QJS_LIB_SRCS) -lm -ldl -lpthread
	$@.tmp -e 'console.log(6 * 7)' | grep -qx 42 || \
	  { echo "bench: $@.tmp does not evaluate JS; not installed" >&2; exit 1; }
	mv $@.tmp $@

$(BENCH_BUNDLE): bench/rollup.config.js bench/tsconfig.qjs.json $(BENCH_TS) node_modules/.package-lock.json
	@mkdir -p $(@D)
	npx rollup -c bench/rollup.config.js --silent

# `make bench-load`: one x86 VM boot (4 GiB) running test/vm/bench-load.sh: the load generator
# (bench/loadgen) and real clients against the broker; prints the table (also in
# build/vm/out/$(BENCH_LOAD_VM)/table.md, for bench/README.md) and the broker's CPU profile summary.
# Never fails on timing; takes 15-30 min under TCG.
BENCH_LOAD_VM  ?= bench-load
BENCH_LOAD_MEM ?= 4096
.PHONY: bench-load
bench-load: build vm-prep
	$(call vm-bench,$(BENCH_LOAD_VM),$(BENCH_LOAD_MEM),3600,test/vm/bench-load.sh)

# $(call vm-bench,<VM name>,<MiB>,<default VM_TIMEOUT s>,<script>): one VM boot running the
# script with the build machine's load passed in, then its table (or where to look instead)
vm-bench = VM_NAME=$(1) VM_MEM=$(2) VM_TIMEOUT=$${VM_TIMEOUT:-$(3)} VM_QUIET=1 \
	  VM_HOST_LOAD="$$(cat /proc/loadavg)" test/vm/run-vm.sh $(4); \
	  rc=$$?; cat build/vm/out/$(1)/table.md 2>/dev/null || \
	  echo "$(basename $(notdir $(4))): no table (see build/vm/$(1).log)"; exit $$rc

# `make bench-scale`: one x86 VM boot running test/vm/bench-scale.sh, the scale scenarios of
# issue 7 (docs/scaling.md): fd limit 1,024 with 2,000 arriving clients, 1,000 at once with
# kernel tunnels, SIGKILL + restart with 1,000, 10,000 held 10 min then SIGTERM. Prints the table
# (also build/vm/out/$(BENCH_SCALE_VM)/table.md, for docs/scaling.md). Counts are checks (VMTEST
# lines), timings are figures; 40-90 min under TCG. Knobs: TD_SCALE_* (see the script).
BENCH_SCALE_VM  ?= bench-scale
BENCH_SCALE_MEM ?= 4096
.PHONY: bench-scale
bench-scale: build vm-prep
	$(call vm-bench,$(BENCH_SCALE_VM),$(BENCH_SCALE_MEM),6000,test/vm/bench-scale.sh)

# `make bench-scale-host`: bench-scale's D (10,000 control-only clients held 10 min, then SIGTERM)
# with the load generator on the host, linked to the VM by a tap device in a network namespace of
# its own (test/vm/bench-scale-host.sh): the guest's vCPUs are the broker's alone. Same table.
BENCH_SCALE_HOST_VM ?= bench-scale-host
.PHONY: bench-scale-host
bench-scale-host: build vm-prep
	VM_NAME=$(BENCH_SCALE_HOST_VM) VM_MEM=$(BENCH_SCALE_MEM) VM_TIMEOUT=$${VM_TIMEOUT:-6000} VM_QUIET=1 \
	  VM_HOST_LOAD="$$(cat /proc/loadavg)" test/vm/bench-scale-host.sh

# `make bench-overload`: 1,000 control-only clients arriving at 200/s against the broker in one
# x86 VM (docs/scaling.md "Overload"): clients up, creations, orphans, and the broker's counters
# (stale requests dropped, cookie requests held back). TD_OV_N, TD_OV_RATE, TD_OV_ORIGINAL=1,
# TD_OV_UP_TIMEOUT. Never fails on timing; 5-10 min under TCG.
.PHONY: bench-overload
bench-overload: build vm-prep
	$(call vm-bench,bench-overload,2048,1100,test/vm/bench-overload.sh)

# `make bench-kmem`: the kernel's memory per tunnel (docs/scaling.md "Sizing"): MemAvailable,
# Slab and Percpu per 1,000 L2TP tunnels with a session and an l2tp_eth device each
# (TD_KMEM_STEP, TD_KMEM_STEPS) in one x86 VM boot.
.PHONY: bench-kmem
bench-kmem: vm-prep
	$(call vm-bench,bench-kmem,2048,900,test/vm/bench-kmem.sh)

# `make bench-ports`: the kernel's cost per port (docs/scaling.md "The kernel's cost per port"):
# packets per second through one L2TP tunnel while 0-10,000 other connected sockets share its
# port, one VM boot per kernel (BENCH_PORTS_KERNELS, default: Debian 12's 6.1 and the newest
# trixie-backports kernel, fetched by test/vm/prep.sh VM_KSUITE). Never fails on timing.
.PHONY: bench-ports
bench-ports: build vm-prep build/bench/port-flood
	bench/port-cost/run.sh

build/bench/port-flood: bench/port-cost/flood.c
	@mkdir -p $(@D)
	gcc -std=gnu11 -O2 -Wall -Wextra -o $@ $<
# `make bench-loadgen`: the load generator's own CPU on this host (bench/loadgen-cost.sh): the
# host broker (no L2TP) on loopback against each way the load generator reads its sockets, in one
# run, with ratios to the per-socket baseline. No VM; LG_COST_N clients (10,000) need as many fds.
.PHONY: bench-loadgen
bench-loadgen: ts build/node/tdnative.node
	bench/loadgen-cost.sh

# `make bench-client-steady`: instructions per keepalive round of the QuickJS client on this
# host (bench/client-steady.ts under callgrind: independent of the machine's load). The harness
# binary is the client's engine, C runtime and flags with its own bytecode
# (bench/client-steady-qjs.ts: a kernel that says yes, fast keepalives), not stripped so that
# callgrind can name functions.
BENCH_STEADY := build/bench/tunneldigger-steady
.PHONY: bench-client-steady
bench-client-steady: ts $(BENCH_STEADY) build/x86_64/tunneldigger
	@scripts/ensure-apt.sh valgrind
	$(NODE) build/js/bench/client-steady.js --binary $(BENCH_STEADY)

build/bench/client-steady.js: bench/rollup.client-steady.config.js bench/tsconfig.client-steady.json \
    bench/client-steady-qjs.ts rollup.config.js $$(QJS_TS_SRCS) node_modules/.package-lock.json
	@mkdir -p $(@D)
	npx rollup -c bench/rollup.client-steady.config.js --silent
	@node src/runtime/quickjs/check-bundle.mjs $@ || { rm -f $@; exit 1; }

build/bench/client_steady_bytecode.c: build/bench/client-steady.js $$(QJS_HOST_QJSC)
	$(QJS_HOST_QJSC) -c -s -N qjsc_client -M tdnative,tdnative -M tdproc,tdproc -m -o $@ $<

$(BENCH_STEADY): $$(QJS_X86_LIB_OBJS) $$(QJS_X86_OWN_OBJS) build/bench/client_steady_bytecode.c
	gcc $(QJS_X86_OWN_CFLAGS) -flto=2 -Wl,--gc-sections -o $@ $^ -lm
