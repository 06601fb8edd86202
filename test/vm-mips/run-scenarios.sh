#!/bin/bash
# MIPS VM suites (test/run.sh runs them; prints VMTEST PASS/FAIL lines, exit 0 = all passed).
# usage: test/vm-mips/run-scenarios.sh [--mipsel] [selftest|e2e]...
# Big-endian (default; parts default to both):
#  a) selftest-l2tp.sh: kernel L2TPv3 + musl probes on the MIPS Malta VM (VMTEST ... mips-kernel-l2tp);
#  b) full system: the x86 VM runs the Node broker (test/vm/scenarios-mips/e2e-broker.sh), the
#     MIPS VM the router client build/mips_24kc/tunneldigger (test/vm-mips/e2e-client.sh), both at
#     once, joined by a qemu socket netdev on 127.0.0.1 (x86 listens, MIPS connects). Their checks
#     come back as VMTEST mips-e2e/<check>; the client's memory as `mips-client VmRSS <kB> kB`
#     (also saved to build/vm-mips/mips-client-rss.txt for bench/sizes.sh).
# --mipsel (test/vm-mipsel/run-scenarios.sh; parts default to e2e, the only one): the same
#     full-system test with the ramips build build/mipsel_24kc/tunneldigger in a mipsel Malta VM
#     running Debian's packaged 4kc-malta kernel (run-vm.sh --mipsel); checks VMTEST
#     mipsel-e2e/<check>, memory in build/vm-mipsel/mipsel-client-rss.txt.
# Env: PORT (socket netdev port, default random free), MIPS_E2E_TIMEOUT / MIPSEL_E2E_TIMEOUT
#      (per VM, s, default 720 for mips with its IPv6 part, 480 for mipsel), NO_BUILD=1 (skip the make step).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# E: the VM's name in checks and paths; MACB: the fifth MAC byte of the VMs' link
E=mips ARCH=mips_24kc RUNVM=() MACB=00 T=${MIPS_E2E_TIMEOUT:-720} parts=(selftest e2e)
if [ "${1:-}" = --mipsel ]; then
  shift
  E=mipsel ARCH=mipsel_24kc RUNVM=(--mipsel --env TDARCH=mipsel_24kc) MACB=01 T=${MIPSEL_E2E_TIMEOUT:-480} parts=(e2e)
fi
OUTD=build/vm-$E
mkdir -p "$OUTD"
[ $# -gt 0 ] || set -- "${parts[@]}"
fails=0
fail() { echo "VMTEST FAIL $1: $2"; fails=$((fails + 1)); }
# VMTEST lines of a console log (the MIPS console may glue kernel messages to the front)
vmtest_lines() { grep -a -o -E 'VMTEST (PASS|FAIL) .*' "$1" 2>/dev/null; }

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== building: make broker vm-prep $ARCH $E-vm"
  if ! make broker vm-prep "$ARCH" "$E-vm" > "$OUTD/build.log" 2>&1; then
    tail -n 20 "$OUTD/build.log"
    fail "$E-vm/build" "make broker vm-prep $ARCH $E-vm failed (log $OUTD/build.log); no VM test ran"
    exit 1
  fi
fi

for what in "$@"; do
case "$what" in
selftest)
  [ "$E" = mips ] || { echo "run-scenarios: selftest is for the big-endian VM only (its kernel has no FPU emulator)" >&2; exit 2; }
  log=$OUTD/selftest-l2tp.console.log
  test/vm-mips/run-vm.sh --no-build --name mips-selftest --log "$log" --vmout "$OUTD/selftest-out" \
    --timeout 240 test/vm-mips/selftest-l2tp.sh > "$OUTD/selftest-l2tp.out" 2>&1
  rc=$?
  vmtest_lines "$log"
  if [ $rc -ne 0 ] && ! vmtest_lines "$log" | grep -q '^VMTEST FAIL '; then
    fail mips-kernel-l2tp "selftest VM exited $rc ($(tail -n1 "$OUTD/selftest-l2tp.out")); log $log"
  fi
  [ $rc -eq 0 ] || fails=$((fails + 1))
  grep -a 'run-vm:' "$OUTD/selftest-l2tp.out"
  ;;
e2e)
  port=${PORT:-}
  while [ -z "$port" ]; do
    p=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || port=$p
  done
  XN=$E-e2e-broker
  XOUT=build/vm/out/$XN
  rm -f "$OUTD/$E-client-rss.txt"
  t0=$(date +%s.%N)
  VM_NAME=$XN VM_QUIET=1 VM_TIMEOUT=$T TD_E2E_NAME=$E-e2e \
    VM_QEMU_EXTRA="-netdev socket,id=n0,listen=127.0.0.1:$port -device virtio-net-pci,netdev=n0,mac=52:54:00:5e:$MACB:01" \
    test/vm/run-vm.sh test/vm/scenarios-mips/e2e-broker.sh > "$OUTD/e2e-broker.out" 2>&1 &
  xpid=$!
  # The MIPS VM connects to the x86 qemu's listening socket: wait for it (run-vm.sh may first
  # rebuild the x86 initramfs). Its vmout is a subdir of the x86 one (created after run-vm.sh
  # has emptied that), so both guests see the same marker files.
  i=0
  until ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && [ -f "$XOUT/.vmcmd.sh" ]; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $xpid 2>/dev/null; then break; fi
    sleep 0.2
  done
  if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    wait $xpid; fail "$E-e2e/x86-vm" "x86 VM never listened on 127.0.0.1:$port: $(tail -n 3 "$OUTD/e2e-broker.out" | tr '\n' ' ')"
    continue
  fi
  mkdir -p "$XOUT/mips"
  mlog=$OUTD/e2e-client.console.log
  test/vm-mips/run-vm.sh "${RUNVM[@]}" --no-build --name "$E-e2e-client" --log "$mlog" --vmout "$ROOT/$XOUT/mips" \
    --timeout "$T" test/vm-mips/e2e-client.sh -- \
    -netdev "socket,id=n0,connect=127.0.0.1:$port" -device virtio-net-pci,netdev=n0,mac=52:54:00:5e:$MACB:02 \
    > "$OUTD/e2e-client.out" 2>&1
  mrc=$?
  wait $xpid; xrc=$?
  wall=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
  vmtest_lines "$XOUT/transcript.txt"
  vmtest_lines "$mlog"
  if [ $xrc -ne 0 ] && ! vmtest_lines "$XOUT/transcript.txt" | grep -q '^VMTEST FAIL '; then
    fail "$E-e2e/x86-vm" "broker VM exited $xrc: $(tail -n 1 "$OUTD/e2e-broker.out"); log build/vm/$XN.log"
  fi
  if [ $mrc -ne 0 ] && ! vmtest_lines "$mlog" | grep -q '^VMTEST FAIL '; then
    fail "$E-e2e/$E-vm" "client VM exited $mrc: $(tail -n 1 "$OUTD/e2e-client.out"); log $mlog"
  fi
  [ $xrc -eq 0 ] && [ $mrc -eq 0 ] || fails=$((fails + 1))
  grep -a -o -E 'VMTEST init at .*' "$mlog" | head -1
  grep -a -o -E 'mips-client (Vm|Rss)[A-Za-z-]+ .*' "$mlog" | tee "$OUTD/$E-client-rss.txt"
  grep -a -o 'tunnel up .* after the client started' "$mlog"
  grep -a 'run-vm:' "$OUTD/e2e-broker.out" "$OUTD/e2e-client.out" | sed 's/^[^:]*://'
  echo "$E-e2e: both VMs done in $wall s wall (x86 rc=$xrc, $E rc=$mrc); logs $OUTD/, build/vm/$XN.log, $XOUT/"
  ;;
*) echo "run-scenarios: unknown part '$what' (selftest, e2e)" >&2; exit 2 ;;
esac
done
[ $fails -eq 0 ]
