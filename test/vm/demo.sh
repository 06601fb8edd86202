#!/bin/sh
# `make demo`: boots the x86_64 test VM and shows a broker and a client building a real kernel
# L2TPv3 tunnel between two network namespaces (logs, interfaces, MTU discovery, ping).
# On the host: test/vm/demo.sh (follows the VM console, prints only the demo's own output).
# Inside the VM (run-vm.sh calls it again with --in-vm): the demo itself, POSIX sh (dash).
# Env: VM_NAME (default demo), VM_TIMEOUT (default 300 s); full console log build/vm/<name>.log.

if [ "${1:-}" != --in-vm ]; then
  ROOT=$(cd "$(dirname "$0")/../.." && pwd)
  cd "$ROOT" || exit 1
  [ -x build/x86_64/tunneldigger ] && [ -f build/js/src/main/broker/broker-main.js ] ||
    { echo "demo: build/x86_64/tunneldigger or the broker is missing; run 'make build' first" >&2; exit 1; }
  export VM_NAME=${VM_NAME:-demo} VM_TIMEOUT=${VM_TIMEOUT:-300} VM_QUIET=1
  LOG=build/vm/$VM_NAME.log
  mkdir -p build/vm; rm -f "$LOG"
  echo "demo: booting the test VM (qemu, no KVM: ~15-60 s to boot) ..."
  test/vm/run-vm.sh test/vm/demo.sh --in-vm > build/vm/$VM_NAME.run 2>&1 &
  vm=$!
  # Follow the console: only what the demo script prints (no init markers, no kernel messages).
  tail -n +1 -F --pid="$vm" "$LOG" 2>/dev/null |
    sed -u -n '/^VMTEST-START/,/^VMTEST-END/{/^VMTEST-/d;/^\[ *[0-9.]*\]/d;p}' &
  wait "$vm"; rc=$?
  sleep 1.2   # tail notices the VM's end within a second
  cat build/vm/$VM_NAME.run
  if [ "$rc" = 0 ]; then echo "demo: SUCCESS"; else echo "demo: FAILED (status $rc; console log $LOG)"; fi
  exit "$rc"
fi

# ---------------------------------------------------------------------------------------------
# Inside the VM (cwd = the repository root).
VM_ROOT=$(pwd)
. test/vm/lib.sh
VMTEST_SCENARIO=demo
. test/vm/td-lib.sh
W=$TD_WORK
UUID=demo-router-42
PROBLEMS=""
problem() { PROBLEMS="$PROBLEMS
  - $*"; }
title() { printf '\n=== %s\n' "$1${2:+ $2}"; }
indent() { sed 's/^/    /'; }
# broker log lines without the ISO date (the time of day is enough here)
blog() { sed -E 's/^[0-9-]+T([0-9:.]+)Z /\1 /' "$W/broker.log" | grep -v ' DEBUG ' | cut -c1-150 | indent; }
clog() { cut -c1-150 "$W/client.log" | indent; }

title "Setup" ""
cat <<EOF | indent
namespace broker: ul0 $VM_BROKER_IP/24  <--veth, MTU 1400-->  namespace client: ul0 $VM_CLIENT_IP/24
overlay (inside the tunnel): broker $VM_OVL_BROKER, client $VM_OVL_CLIENT (/$VM_OVL_PREFIX), set by the hooks
broker: bin/tunneldigger-broker $W/broker.cfg   (ports 8942, 53, 123)
client: build/x86_64/tunneldigger -f -u $UUID -b $VM_BROKER_IP:8942 -i l2tp0 -t 1 -s client-hook.sh
EOF
vm_topo_pair && vm_set_mtu 1400 || problem "network namespaces could not be created"
td_hook_script "$W/up.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for h in predown down mtu; do td_hook_script "$W/$h.sh" "$W/broker-hooks.log"; done
td_hook_script "$W/client-hook.sh" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
td_broker_cfg "$W/broker.cfg" session.up="$W/up.sh" session.pre-down="$W/predown.sh" \
  session.down="$W/down.sh" session.mtu-changed="$W/mtu.sh" log_ip_addresses=true verbosity=DEBUG

t0=$(date +%s)
if ! td_start_broker broker "$W/broker.cfg" "$W/broker.log" 2>/dev/null; then problem "the broker did not start"; fi
td_start_client client "$W/client.log" -f -u "$UUID" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 \
  -s "$W/client-hook.sh" 2>/dev/null || problem "the client did not start"
mtu_is() { [ "$(td_link_mtu "$1" "$2" 2>/dev/null)" = "$3" ]; }
if td_wait_link_up client l2tp0 40 && td_wait_link_up broker l2tp100-100 10; then
  echo "    broker started and tunnel up after $(( $(date +%s) - t0 )) s (node starts slowly in the VM); waiting for path MTU discovery (about 20 s) ..."
  wait_for 45 mtu_is broker l2tp100-100 1346
  wait_for 20 mtu_is client l2tp0 1346
else
  problem "the tunnel did not come up within 50 s"
fi

title "Broker log" "(stderr, DEBUG lines left out)"
blog
title "Client log" "(stderr with -f)"
clog
title "Hooks" "(as recorded by the hook scripts)"
{ td_hook_calls "$W/broker-hooks.log" | sed 's/^/broker /'; td_hook_calls "$W/client-hooks.log" | sed 's/^client-hook/client/'; } | indent

title "Tunnel interfaces" "(ip -d link show)"
echo "  broker:"; ip -n broker -d link show dev l2tp100-100 2>&1 | indent
echo "  client:"; ip -n client -d link show dev l2tp0 2>&1 | indent
title "Kernel L2TP state" "(ip l2tp show tunnel / session)"
echo "  broker:"; { ip -n broker l2tp show tunnel; ip -n broker l2tp show session; } 2>&1 | indent
echo "  client:"; { ip -n client l2tp show tunnel; ip -n client l2tp show session; } 2>&1 | indent

bm=$(td_link_mtu broker l2tp100-100 2>/dev/null); cm=$(td_link_mtu client l2tp0 2>/dev/null)
title "Negotiated MTU" ""
echo "    underlay path MTU 1400 - 54 bytes of IPv4/UDP/L2TPv3/Ethernet headers = 1346" 
echo "    broker l2tp100-100: ${bm:-?}    client l2tp0: ${cm:-?}"
[ "$bm" = 1346 ] && [ "$cm" = 1346 ] || problem "tunnel MTU is ${bm:-?} (broker) / ${cm:-?} (client), expected 1346"

title "Ping through the tunnel" ""
echo "  client -> broker ($VM_OVL_BROKER):"
in_ns client busybox ping -c 3 -i 0.3 -W 2 "$VM_OVL_BROKER" > "$W/ping1.txt" 2>&1 || problem "ping client -> broker failed"
indent < "$W/ping1.txt"
echo "  broker -> client ($VM_OVL_CLIENT), 1318 bytes of data = a full 1346-byte IP packet:"
in_ns broker busybox ping -c 3 -i 0.3 -W 2 -s 1318 "$VM_OVL_CLIENT" > "$W/ping2.txt" 2>&1 || problem "ping broker -> client failed"
indent < "$W/ping2.txt"

title "Shutdown" "(SIGTERM to the client, then to the broker)"
td_stop_client || problem "the client exited with status $?"
wait_for 10 sh -c "grep -q '^@@ down ' '$W/broker-hooks.log'" || problem "the broker did not close the tunnel"
td_stop_broker || problem "the broker exited with status $?"
{ tail -n 2 "$W/client.log"; sed -E 's/^[0-9-]+T([0-9:.]+)Z /\1 /' "$W/broker.log" | grep -E ' closed: | shutdown ' ; } | cut -c1-220 | indent
ip -n broker l2tp show tunnel | grep -q Tunnel && problem "kernel tunnels left on the broker side"
ip -n client l2tp show tunnel | grep -q Tunnel && problem "kernel tunnels left on the client side"

echo
if [ -z "$PROBLEMS" ]; then
  echo "DEMO SUCCESS: L2TPv3 tunnel client tunnel 1 <-> broker tunnel 100, MTU 1346 on both sides, ping both ways, clean shutdown"
  exit 0
fi
echo "DEMO FAILED:$PROBLEMS"
echo "(all files: build/vm/out/${VM_NAME:-demo}/demo/)"
exit 1
