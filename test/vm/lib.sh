# Helpers for VM scenarios (sourced by test/vm/scenarios/*.sh; runs as root inside the test VM
# under dash, with iproute2/tc/nft/node from the host root and `busybox ping`).
#
# Topologies (namespaces are deleted and recreated by each vm_topo_*):
#   vm_topo_pair:  broker[ul0 198.51.100.1/24] <-veth-> client[ul0 198.51.100.2/24]
#   vm_topo_nat:   broker[ul0 198.51.100.1/24] <-veth-> [wan0 198.51.100.2/24] nat [lan0 203.0.113.1/25]
#                  <-veth-> client[ul0 203.0.113.2/25, default via 203.0.113.1]
#                  nat forwards and MASQUERADEs (nftables) out of wan0; the broker has no route
#                  back to 203.0.113.0/25, so it only ever sees 198.51.100.2.
# Overlay addresses for tunnels: 203.0.113.128/25 ($VM_OVL_BROKER / $VM_OVL_CLIENT).
#
# Reporting: every check prints exactly one line
#   VMTEST PASS <scenario>/<name>      or      VMTEST FAIL <scenario>/<name>: <why>
# (<scenario> = script basename; override with VMTEST_SCENARIO). End a scenario with
# `vm_done`, which exits 1 if any check failed.

VMTEST_SCENARIO=${VMTEST_SCENARIO:-$(basename "$0" .sh)}
VMTEST_FAILS=0
VMTEST_CHECKS=0
VM_BROKER_IP=198.51.100.1
VM_CLIENT_IP=198.51.100.2      # the client's underlay address (pair) / the NAT's public address
VM_NAT_LAN_IP=203.0.113.1
VM_CLIENT_LAN_IP=203.0.113.2   # the client's own address behind the NAT
VM_OVL_BROKER=203.0.113.129
VM_OVL_CLIENT=203.0.113.130
VM_OVL_PREFIX=25
VM_ROOT=${VM_ROOT:-$(cd "$(dirname "$0")/../../.." 2>/dev/null && pwd)}

# --- reporting ---------------------------------------------------------------------------------

vm_pass() { VMTEST_CHECKS=$((VMTEST_CHECKS + 1)); echo "VMTEST PASS $VMTEST_SCENARIO/$1"; }
vm_fail() {
  VMTEST_CHECKS=$((VMTEST_CHECKS + 1)); VMTEST_FAILS=$((VMTEST_FAILS + 1))
  n=$1; shift
  echo "VMTEST FAIL $VMTEST_SCENARIO/$n: $(echo "$*" | tr '\n' ' ' | sed 's/ *$//')"
}
# vm_check <name> <cmd...>: runs cmd, PASS if it exits 0, else FAIL with the last output lines.
vm_check() {
  n=$1; shift
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" -eq 0 ]; then vm_pass "$n"; return 0; fi
  vm_fail "$n" "'$*' exited $rc: $(printf '%s\n' "$out" | tail -n 3)"
  return 1
}
# vm_done: end of scenario; status 1 if any check failed (or none ran).
vm_done() {
  if [ "$VMTEST_CHECKS" -eq 0 ]; then vm_fail scenario "no checks ran"; fi
  echo "VMTEST-SUMMARY $VMTEST_SCENARIO: $((VMTEST_CHECKS - VMTEST_FAILS)) passed, $VMTEST_FAILS failed"
  [ "$VMTEST_FAILS" -eq 0 ]
  exit $?
}

# --- waiting -----------------------------------------------------------------------------------

# wait_for <timeout_s> <cmd...>: polls cmd every 0.2 s until it succeeds; 1 on timeout.
wait_for() {
  _t=$1; shift
  _end=$(( $(date +%s) + _t ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -ge "$_end" ] && return 1
    sleep 0.2
  done
}

# --- namespaces --------------------------------------------------------------------------------

# in_ns <ns> <cmd...>
in_ns() { _ns=$1; shift; ip netns exec "$_ns" "$@"; }

# vm_ping <ns> <addr> [count] [size]: busybox ping (the host has no iputils), 0.2 s interval;
# succeeds if a reply arrives within count*0.2+3 s.
vm_ping() {
  ip netns exec "$1" busybox ping -q -i 0.2 -c "${3:-2}" -s "${4:-56}" -W 1 -w $(( ${3:-2} / 5 + 3 )) "$2"
}

vm_topo_clean() {
  for _ns in client nat broker; do ip netns del "$_ns" 2>/dev/null; done
  return 0
}

_vm_ns() { ip netns add "$1" && ip -n "$1" link set lo up; }

vm_topo_pair() {
  vm_topo_clean
  _vm_ns broker && _vm_ns client &&
  ip link add ul0 netns broker type veth peer name ul0 netns client &&
  ip -n broker addr add "$VM_BROKER_IP/24" dev ul0 &&
  ip -n client addr add "$VM_CLIENT_IP/24" dev ul0 &&
  ip -n broker link set ul0 up && ip -n client link set ul0 up
}

vm_topo_nat() {
  vm_topo_clean
  _vm_ns broker && _vm_ns nat && _vm_ns client &&
  ip link add ul0 netns broker type veth peer name wan0 netns nat &&
  ip link add lan0 netns nat type veth peer name ul0 netns client &&
  ip -n broker addr add "$VM_BROKER_IP/24" dev ul0 &&
  ip -n nat addr add "$VM_CLIENT_IP/24" dev wan0 &&
  ip -n nat addr add "$VM_NAT_LAN_IP/25" dev lan0 &&
  ip -n client addr add "$VM_CLIENT_LAN_IP/25" dev ul0 &&
  for _l in broker:ul0 nat:wan0 nat:lan0 client:ul0; do
    ip -n "${_l%%:*}" link set "${_l#*:}" up || return 1
  done &&
  ip -n client route add default via "$VM_NAT_LAN_IP" &&
  ip netns exec nat sysctl -qw net.ipv4.ip_forward=1 &&
  ip netns exec nat nft -f - <<EOF
table ip vmnat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
}
EOF
}

# vm_set_mtu <mtu> [ns...]: MTU of every underlay veth end in the given namespaces
# (default: all of broker, nat, client that exist).
vm_set_mtu() {
  _mtu=$1; shift
  [ $# -gt 0 ] || set -- broker nat client
  for _ns in "$@"; do
    [ -e "/run/netns/$_ns" ] || continue
    for _dev in $(ip -n "$_ns" -o link show type veth | sed -n 's/^[0-9]*: \([^@:]*\).*/\1/p'); do
      ip -n "$_ns" link set "$_dev" mtu "$_mtu" || return 1
    done
  done
}

# vm_link_mtu <ns> <dev>: prints the MTU of a link.
vm_link_mtu() { ip -n "$1" -o link show dev "$2" | sed -n 's/.* mtu \([0-9]*\).*/\1/p'; }
