#!/bin/bash
# `make bench-scale-host` (mk/bench.mk): bench-scale's D (TD_SCALE_N control-only clients, held
# TD_SCALE_HOLD_S, then SIGTERM) with the broker and its kernel in the TCG VM and the load
# generator on the host at native speed. In the guest, 10,000 simulated clients cost the load
# generator more CPU than the broker (bench/README.md, docs/scaling.md): it fell behind and its
# clients timed out, so the figures were the load generator's. Here the guest's vCPUs are the
# broker's alone.
#
# This script re-runs itself in a network namespace of its own (unshare --net: nothing on the
# host's network changes) with a tap device, tdtap0, holding 198.51.100.2 and the load
# generator's sources 198.51.100.10-19 (documentation range); qemu runs in that namespace too and
# gives the guest the tap's other end as eth0 (scale-lib.sh scale_host_topo moves it into netns
# broker). The guest's bench-scale.sh writes each load generator run's arguments to
# build/vm/out/<name>/<run>.args; this loop runs it here (output <run>.out, .err, status <run>.rc
# beside it) and the guest reads the broker's side itself; the load generator reads the broker
# through bench/loadgen/broker-agent.js in the guest (--broker-agent).
# Env: as bench-scale.sh (TD_SCALE_*, default TD_SCALE_STEPS=D), VM_* for run-vm.sh.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
NAME=${VM_NAME:-bench-scale-host}
OUT=$ROOT/build/vm/out/$NAME
TAP=tdtap0
SOURCES=10   # as load-lib.sh's LOAD_SOURCES: 198.51.100.10-19

if [ "${TD_HOST_NETNS:-}" != 1 ]; then
  command -v unshare >/dev/null || { echo "bench-scale-host: unshare (util-linux) missing" >&2; exit 1; }
  [ -c /dev/net/tun ] || { echo "bench-scale-host: /dev/net/tun missing: no tap device for the VM" >&2; exit 1; }
  # the kernel is fetched here: the namespace below has no network
  test/vm/prep.sh || { echo "bench-scale-host: VM preparation failed" >&2; exit 1; }
  export VM_HOST_LOAD=${VM_HOST_LOAD:-$(cat /proc/loadavg)}
  exec unshare --net env TD_HOST_NETNS=1 "$0" "$@"
fi

ip link set lo up &&
  ip tuntap add "$TAP" mode tap &&
  ip addr add 198.51.100.2/24 dev "$TAP" &&
  for i in $(seq 10 $((9 + SOURCES))); do ip addr add "198.51.100.$i/24" dev "$TAP" || exit 1; done &&
  ip link set "$TAP" up || { echo "bench-scale-host: cannot set up $TAP in the namespace" >&2; exit 1; }
# 10,000 client sockets: the hard limit (20,000 on the build machines)
ulimit -n "$(ulimit -Hn)"

export TD_SCALE_HOST_LOADGEN=1 TD_SCALE_STEPS=${TD_SCALE_STEPS:-D} LOAD_SOURCES=$SOURCES
VM_NAME=$NAME VM_QEMU_EXTRA="-netdev tap,id=n0,ifname=$TAP,script=no,downscript=no -device virtio-net-pci,netdev=n0" \
  test/vm/run-vm.sh test/vm/bench-scale.sh &
vm=$!

# the guest's load generator runs, one at a time, until the VM is gone
while kill -0 "$vm" 2>/dev/null; do
  for a in "$OUT"/*.args; do
    [ -e "$a" ] || continue
    run=$(basename "$a" .args)
    mapfile -t args < "$a"
    rm -f "$a"
    echo "bench-scale-host: load generator run '$run' on the host (load $(cut -d' ' -f1-3 /proc/loadavg)): ${args[*]}"
    node build/js/bench/loadgen/main.js "${args[@]}" > "$OUT/$run.out" 2> "$OUT/$run.err"
    echo $? > "$OUT/$run.rc.tmp" && mv "$OUT/$run.rc.tmp" "$OUT/$run.rc"
    grep '^loadgen: ' "$OUT/$run.out" | tail -n 8
  done
  sleep 1
done
wait "$vm"; rc=$?
cat "$OUT/table.md" 2>/dev/null || echo "bench-scale-host: no table (see build/vm/$NAME.log)"
exit "$rc"
