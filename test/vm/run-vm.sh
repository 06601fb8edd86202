#!/bin/bash
# Usage: test/vm/run-vm.sh <script> [args...]
# Boots the x86_64 test VM (TCG, no network, Debian kernel with L2TP) and runs <script> as root
# inside it with /bin/sh (dash), cwd = the caller's cwd. The whole host filesystem is visible,
# writable in RAM (overlay); /run/vmout inside is build/vm/out/<name>/ on the host.
# Exits with the script's status (124 on timeout, 1 if the VM died without a status).
# Console log: build/vm/<name>.log; clean script output: build/vm/out/<name>/transcript.txt.
# Env: VM_NAME (default: script basename), VM_TIMEOUT (s, default 600), VM_MEM (MiB, 1024),
#      VM_SMP (2), VM_QUIET=1 (don't echo the console), CACHE, VM_KVER/VM_KSUITE (which Debian
#      kernel, see prep.sh). All VM_* and TD_* variables are
#      exported to the script inside the VM. VM_QEMU_EXTRA: extra qemu arguments (split on
#      blanks), e.g. a link to another VM: `-netdev socket,id=n0,listen=127.0.0.1:PORT
#      -device virtio-net-pci,netdev=n0` (the guest names it eth0).
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 <script> [args...]" >&2; exit 2; }
SCRIPT=$(realpath -e "$1" 2>/dev/null) || { echo "run-vm: script '$1' not found" >&2; exit 2; }
shift
NAME=${VM_NAME:-$(basename "$SCRIPT" .sh)}
TIMEOUT=${VM_TIMEOUT:-600}
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
export CACHE

command -v qemu-system-x86_64 >/dev/null ||
  { echo "run-vm: qemu-system-x86_64 missing; run 'make deps' (qemu-system-x86)" >&2; exit 1; }
"$ROOT/test/vm/prep.sh" || { echo "run-vm: VM preparation failed, not booting" >&2; exit 1; }
# VM_KSUITE/VM_KVER: a kernel from another Debian suite / a given version (prep.sh).
KROOT=$CACHE/vm-x86_64${VM_KSUITE:+/$VM_KSUITE}
KVER=${VM_KVER:-$(cat "$KROOT/current")}
K=$KROOT/$KVER

OUT=$ROOT/build/vm/out/$NAME
LOG=$ROOT/build/vm/$NAME.log
rm -rf "$OUT"; mkdir -p "$OUT"
: > "$LOG"

# The command the guest runs; arguments are single-quoted for sh.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
{
  echo "cd $(q "$PWD") || exit 97"
  # The guest starts from a clean environment; forward the harness/test knobs (VM_*, TD_*).
  for v in $(compgen -e | grep -E '^(VM|TD)_'); do echo "export $v=$(q "${!v}")"; done
  printf 'exec /bin/sh %s' "$(q "$SCRIPT")"
  for a in "$@"; do printf ' %s' "$(q "$a")"; done
  echo
} > "$OUT/.vmcmd.sh"

t0=$(date +%s.%N)
if [ "${VM_QUIET:-0}" = 1 ]; then sink() { tr -d '\r' > "$LOG"; }; else sink() { tr -d '\r' | tee "$LOG"; }; fi
# -nic none: guest traffic never leaves the VM. TCG only (KVM on this host is PVM and hangs).
# no_timer_check: on a busy host the guest kernel's IO-APIC timer check can miss its ticks under
# TCG and panic ("IO-APIC + timer doesn't work!"); the timer works, the check is what fails.
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
  -accel tcg,thread=multi -cpu max -machine q35 -smp "${VM_SMP:-2}" -m "${VM_MEM:-1024}" \
  -display none -monitor none -serial stdio -no-reboot -nic none \
  -device virtio-rng-pci \
  -kernel "$K/vmlinuz" -initrd "$K/initramfs.cpio.gz" \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off no_timer_check" \
  -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
  -virtfs "local,path=$OUT,mount_tag=vmout,security_model=none" \
  ${VM_QEMU_EXTRA:-} \
  </dev/null > >(sink) 2>&1 &
tpid=$!
# Peak RSS of qemu (VmHWM), sampled while it runs.
rss=0
while kill -0 "$tpid" 2>/dev/null; do
  qpid=$(pgrep -P "$tpid" -x qemu-system-x86 2>/dev/null || pgrep -P "$tpid" 2>/dev/null | head -n1)
  if [ -n "$qpid" ]; then
    h=$(awk '/^VmHWM:/ {print $2}' "/proc/$qpid/status" 2>/dev/null)
    [ -n "$h" ] && [ "$h" -gt "$rss" ] && rss=$h
  fi
  sleep 1
done
wait "$tpid"; qrc=$?
sleep 0.2   # let the console sink flush
t1=$(date +%s.%N)
wall=$(awk "BEGIN{printf \"%.1f\", $t1 - $t0}")

rcline=$(grep -a -o 'VMTEST-RC=[0-9]*' "$LOG" | tail -n1)
g() { grep -a -o "$1 uptime=[0-9.]*" "$LOG" | tail -n1 | sed 's/.*=//'; }
gstart=$(g VMTEST-START); gend=$(g VMTEST-END)
times="wall ${wall} s"
[ -n "$gstart" ] && [ -n "$gend" ] &&
  times="$times (guest: boot ${gstart} s, script $(awk "BEGIN{printf \"%.1f\", $gend - $gstart}") s)"
times="$times, qemu peak RSS $((rss / 1024)) MiB"

if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "run-vm: $NAME timed out after ${TIMEOUT} s and was killed; console log $LOG" >&2
  exit 124
fi
if [ -z "$rcline" ]; then
  echo "run-vm: $NAME: VM exited (qemu status $qrc) without a VMTEST-RC line; see $LOG" >&2
  exit 1
fi
rc=${rcline#VMTEST-RC=}
echo "run-vm: $NAME rc=$rc, kernel $KVER, $times, log $LOG"
exit "$rc"
