#!/bin/bash
# usage: scripts/cold-budget.sh [DIR]   (default: a new directory under /tmp)
# Where the time of a cold `make test` goes, measured without touching the shared build cache:
# exports HEAD (git archive, so uncommitted changes are not measured) into DIR/tree, and runs
# there with CACHE=DIR/cache (empty): `make build` split into its cached parts, each cached
# toolchain, kernel and userland the suites need, then test/run.sh, whose "time <suite>: N s"
# lines give each suite (what is left: the tests and their own one-off builds, e.g. the per-arch
# test qjsc and the MIPS VM build). Prints one line per stage with the load
# average before and after, and keeps them in DIR/budget.txt (logs: DIR/<stage>.log).
# Downloads the Debian sources and packages again (~300 MB: QuickJS, musl, busybox, iproute2,
# linux-source-6.1, the VM kernels). Hours on 2 shared cores (the first five stages alone took
# 37 min at load 21-40). Remove DIR afterwards.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$(mktemp -d /tmp/td-cold.XXXXXX)}
mkdir -p "$dir/tree" "$dir/cache"
git -C "$root" archive HEAD | tar -x -C "$dir/tree" || { echo "cold-budget: git archive failed" >&2; exit 1; }
cd "$dir/tree" || exit 1
export CACHE=$dir/cache
: >"$dir/budget.txt"
load() { cut -d' ' -f1 /proc/loadavg; }
line() { printf 'cold: %-30s %5s s  (load %s -> %s)%s\n' "$@" | tee -a "$dir/budget.txt"; }
# stage NAME COMMAND...: runs it, logs to DIR/NAME.log, prints its wall time
stage() {
  local name=$1 l0 t0 rc; shift
  l0=$(load); t0=$SECONDS
  "$@" >"$dir/$name.log" 2>&1; rc=$?
  line "$name" $((SECONDS - t0)) "$l0" "$(load)" "$([ $rc -eq 0 ] || echo "  exit $rc, see $dir/$name.log")"
}
echo "cold-budget: tree $dir/tree, CACHE=$CACHE, HEAD $(git -C "$root" rev-parse --short HEAD)" | tee -a "$dir/budget.txt"
t_all=$SECONDS
# what `make build` caches, then what the suites build first (the expensive part of a cold
# run), each on its own; test/run.sh then finds them built and measures the suites themselves
stage npm make npm
stage ts make ts
stage quickjs-host make build/x86_64/tunneldigger
stage node-addon make build/node/tdnative.node build/test/td_core_test
stage mips-toolchain make mips-client-toolchain
stage mips-client make build/mips_24kc/tunneldigger
stage build-rest make build
stage vm-x86_64-prep make vm-prep
stage mips-kernel make mips-kernel
stage mips-userland make mips-userland
for a in mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64; do
  stage "router-toolchain-$a" make "router-toolchain-$a"
  stage "router-client-$a" make "$a"
done
stage mipsel-vm make mipsel-vm
stage test bash test/run.sh
grep -a '^time ' "$dir/test.log" | sed 's/^time \(.*\): \([0-9]*\) s$/\1 \2/' | while read -r s n; do
  line "  test: $s" "$n" - - ""
done
line total $((SECONDS - t_all)) - "$(load)" ""
tail -1 "$dir/test.log" | tee -a "$dir/budget.txt"
