#!/bin/bash
# `make bench-ports`: the kernel's cost per port (docs/scaling.md). One x86 VM boot per kernel,
# each running test/vm/bench-ports.sh; prints each kernel's table and keeps them in
# build/bench/ports/<kernel>.md (raw RESULT lines: build/vm/out/<vm name>/results.txt).
# Never fails on timing; fails when a VM check fails.
#
# Env: BENCH_PORTS_KERNELS: blank-separated list of <suite>[:<kver>], "default" = the kernel the
#      other VM tests boot (the host's apt: Debian 12's 6.1); default "default trixie-backports"
#      (the newest Debian kernel with the connected-UDP 4-tuple hash when this was written:
#      7.3.4+deb13-amd64; without :<kver> the suite's current linux-image-amd64 is taken).
#      BENCH_PORTS_MEM (MiB, default 2048), BENCH_PORTS_SMP (vCPUs, default 1: sender and receive
#      path share one CPU, no cross-CPU scheduling noise), VM_TIMEOUT (s per boot, default 3600), and the
#      TD_PORTS_* knobs of test/vm/bench-ports.sh (N list, modes, repetitions, seconds).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
KERNELS=${BENCH_PORTS_KERNELS:-default trixie-backports}
mkdir -p build/bench/ports
rc=0
for k in $KERNELS; do
  suite=${k%%:*}; kver=""
  [ "$suite" != "$k" ] && kver=${k#*:}
  [ "$suite" = default ] && suite=""
  name=bench-ports-${suite:-default}
  echo "== bench-ports: kernel ${suite:-default}${kver:+ $kver} (VM $name), host load $(cut -d' ' -f1-3 /proc/loadavg) =="
  env ${suite:+VM_KSUITE=$suite} ${kver:+VM_KVER=$kver} VM_NAME="$name" VM_MEM="${BENCH_PORTS_MEM:-2048}" \
    VM_TIMEOUT="${VM_TIMEOUT:-3600}" VM_SMP="${BENCH_PORTS_SMP:-1}" VM_QUIET=1 VM_HOST_LOAD="$(cat /proc/loadavg)" \
    test/vm/run-vm.sh test/vm/bench-ports.sh
  r=$?
  [ "$r" = 0 ] || rc=1
  t=build/vm/out/$name/table.md
  if [ -f "$t" ]; then
    kname=$(head -n1 "$t" | sed 's/^kernel //')
    cp "$t" "build/bench/ports/${kname:-$name}.md"
    cat "$t"
  else
    echo "bench-ports: no table from $name (see build/vm/$name.log)"
  fi
  grep -a '^VMTEST FAIL' "build/vm/out/$name/transcript.txt" 2>/dev/null
  echo "host load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
done
exit "$rc"
