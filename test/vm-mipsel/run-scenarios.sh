#!/bin/bash
# Little-endian MIPS full-system test (test/run.sh runs it; VMTEST PASS/FAIL lines, exit 0 = all
# passed): the same two-VM test as the big-endian one (test/vm-mips/run-scenarios.sh e2e), with
# the ramips build build/mipsel_24kc/tunneldigger as the client in a mipsel Malta VM running
# Debian's packaged 4kc-malta kernel (test/vm-mipsel/make-initramfs.sh), against the Node broker
# in the x86 VM (test/vm/scenarios-mips/e2e-broker.sh), joined by a qemu socket netdev on
# 127.0.0.1. Checks come back as VMTEST mipsel-e2e/<check> (tunnel, ping through it, PMTU,
# SIGTERM -> ERROR 0x11, clean kernels); the client's memory as `mips-client VmRSS <kB> kB`
# (also saved to build/vm-mipsel/mipsel-client-rss.txt).
# Env: PORT (socket netdev port, default random free), MIPSEL_E2E_TIMEOUT (per VM, s, default 480),
#      NO_BUILD=1 (skip the make step).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
OUTD=build/vm-mipsel
mkdir -p "$OUTD"
fails=0
fail() { echo "VMTEST FAIL $1: $2"; fails=$((fails + 1)); }
vmtest_lines() { grep -a -o -E 'VMTEST (PASS|FAIL) .*' "$1" 2>/dev/null; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building: make broker vm-prep mipsel_24kc mipsel-vm"
  if ! make broker vm-prep mipsel_24kc mipsel-vm > "$OUTD/build.log" 2>&1; then
    tail -n 20 "$OUTD/build.log"
    fail mipsel-vm/build "make broker vm-prep mipsel_24kc mipsel-vm failed (log $OUTD/build.log); no VM test ran"
    exit 1
  fi
fi

T=${MIPSEL_E2E_TIMEOUT:-480}
port=${PORT:-}
while [ -z "$port" ]; do
  p=$((20000 + RANDOM % 20000))
  ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || port=$p
done
XN=mipsel-e2e-broker
XOUT=build/vm/out/$XN
rm -f "$OUTD/mipsel-client-rss.txt"
t0=$(date +%s.%N)
VM_NAME=$XN VM_QUIET=1 VM_TIMEOUT=$T TD_E2E_NAME=mipsel-e2e \
  VM_QEMU_EXTRA="-netdev socket,id=n0,listen=127.0.0.1:$port -device virtio-net-pci,netdev=n0,mac=52:54:00:5e:01:01" \
  test/vm/run-vm.sh test/vm/scenarios-mips/e2e-broker.sh > "$OUTD/e2e-broker.out" 2>&1 &
xpid=$!
# wait for the x86 qemu's listening socket and its vmout (see test/vm-mips/run-scenarios.sh)
i=0
until ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && [ -f "$XOUT/.vmcmd.sh" ]; do
  i=$((i + 1))
  if [ $i -gt 600 ] || ! kill -0 $xpid 2>/dev/null; then break; fi
  sleep 0.2
done
if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
  wait $xpid; fail mipsel-e2e/x86-vm "x86 VM never listened on 127.0.0.1:$port: $(tail -n 3 "$OUTD/e2e-broker.out" | tr '\n' ' ')"
  exit 1
fi
mkdir -p "$XOUT/mips"
mlog=$OUTD/e2e-client.console.log
test/vm-mips/run-vm.sh --mipsel --no-build --name mipsel-e2e-client --log "$mlog" --vmout "$ROOT/$XOUT/mips" \
  --timeout "$T" --env TDARCH=mipsel_24kc \
  test/vm-mips/e2e-client.sh -- \
  -netdev "socket,id=n0,connect=127.0.0.1:$port" -device virtio-net-pci,netdev=n0,mac=52:54:00:5e:01:02 \
  > "$OUTD/e2e-client.out" 2>&1
mrc=$?
wait $xpid; xrc=$?
wall=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
vmtest_lines "$XOUT/transcript.txt"
vmtest_lines "$mlog"
if [ $xrc -ne 0 ] && ! vmtest_lines "$XOUT/transcript.txt" | grep -q '^VMTEST FAIL '; then
  fail mipsel-e2e/x86-vm "broker VM exited $xrc: $(tail -n 1 "$OUTD/e2e-broker.out"); log build/vm/$XN.log"
fi
if [ $mrc -ne 0 ] && ! vmtest_lines "$mlog" | grep -q '^VMTEST FAIL '; then
  fail mipsel-e2e/mipsel-vm "client VM exited $mrc: $(tail -n 1 "$OUTD/e2e-client.out"); log $mlog"
fi
[ $xrc -eq 0 ] && [ $mrc -eq 0 ] || fails=$((fails + 1))
grep -a -o -E 'VMTEST init at .*' "$mlog" | head -1
grep -a -o -E 'mips-client (Vm|Rss)[A-Za-z-]+ .*' "$mlog" | tee "$OUTD/mipsel-client-rss.txt"
grep -a -o 'tunnel up .* after the client started' "$mlog"
grep -a 'run-vm:' "$OUTD/e2e-broker.out" "$OUTD/e2e-client.out" | sed 's/^[^:]*://'
echo "mipsel-e2e: both VMs done in $wall s wall (x86 rc=$xrc, mipsel rc=$mrc); logs $OUTD/, build/vm/$XN.log, $XOUT/"
[ $fails -eq 0 ]
