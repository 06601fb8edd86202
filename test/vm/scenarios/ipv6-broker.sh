# The broker over IPv6 (issue 9), broker side, with the load generator as the clients (the real
# client's IPv6 scenarios are separate), documentation prefix 2001:db8::/32 only:
#   1. IPv6-only underlay: a kernel tunnel over UDP/IPv6 on both sides carries a ping; LIMIT over
#      IPv6 puts the HTB qdisc on the session; at a 1400-byte underlay the broker measures 1326
#      (= 1400 - 74); SIGTERM leaves no L2TP tunnel or interface in the kernel
#   2. log_ip_addresses=false hides IPv6 client addresses; the per-IP limit counts per /64
#   3. dual stack: one broker on 198.51.100.1 and 2001:db8::1, 10 kernel tunnels over each at the
#      same time; then the setup time over IPv6 next to IPv4 (control only, same boot)
# vm-scenario-timeout: 1200
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/load-lib.sh"
W=$TD_WORK
B6=2001:db8::1
C6=2001:db8::2
ulimit -n 8192

# broker[ul0 2001:db8::1/64] <-veth-> client[ul0 2001:db8::2/64, sources 2001:db8::10-1f and
# 2001:db8:0:1::10 (another /64, on-link)]; no IPv4 address on the underlay
v6_topo() {
  vm_topo_clean
  _vm_ns broker && _vm_ns client &&
  ip link add ul0 netns broker type veth peer name ul0 netns client &&
  ip -n broker addr add "$B6/64" dev ul0 nodad &&
  ip -n client addr add "$C6/64" dev ul0 nodad &&
  for _i in $(seq 16 31); do echo "addr add 2001:db8::$(printf %x "$_i")/64 dev ul0 nodad"; done | ip -n client -batch - &&
  ip -n client addr add 2001:db8:0:1::10/64 dev ul0 nodad &&
  ip -n broker link set ul0 up && ip -n client link set ul0 up &&
  ip -n broker -6 route add 2001:db8:0:1::/64 dev ul0
}

# v6_cfg <file> [key=value ...]: td_broker_cfg on the IPv6 address; K_<key>=value lines in
# $V6_EXTRA (keys the template does not have) go into [broker]
v6_cfg() {
  _f=$1; shift
  td_broker_cfg "$_f" address=$B6 port=8942 max_tunnels=64 verbosity=INFO "$@" || return 1
  [ -z "${V6_EXTRA:-}" ] || { awk -v extra="$V6_EXTRA" '/^\[log\]/ { n = split(extra, e, " "); for (i = 1; i <= n; i++) print e[i]; print "" } { print }' \
    "$_f" > "$_f.new" && mv "$_f.new" "$_f"; }
}

# lg6 <name> <loadgen args...>: the load generator in netns client against [2001:db8::1]:8942
lg6() {
  _ln=$1; shift
  ip netns exec client node "$LOAD_JS" --broker "[$B6]:8942" --progress 5 "$@" > "$W/$_ln.out" 2> "$W/$_ln.err"
}
lg4() {
  _ln=$1; shift
  ip netns exec client node "$LOAD_JS" --broker "$VM_BROKER_IP:8942" --progress 5 "$@" > "$W/$_ln.out" 2> "$W/$_ln.err"
}
# v6_start <cfg> <log>: td_start_broker, with the longer wait of load_broker (Node's start in a
# TCG guest on a loaded host has taken more than 30 s)
v6_start() {
  td_start_broker broker "$1" "$2" 2>/dev/null || wait_for 120 grep -q 'broker started' "$2"
}
no_l2tp_left() {
  [ "$(load_kernel_tunnels broker)" = 0 ] && ! ip -n broker -o link show type l2tp | grep -q .
}
tunnel_family_count() { ip -n broker l2tp show tunnel | grep -c "^ *From $1"; }

# ---- 1. IPv6-only underlay --------------------------------------------------------------------
vm_check topo-ipv6-only v6_topo
vm_check no-ipv4-on-underlay sh -c "! ip -n broker -4 addr show dev ul0 | grep -q inet"
td_hook_script "$W/up.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for _h in predown down mtu; do td_hook_script "$W/$_h.sh" "$W/broker-hooks.log"; done
vm_check underlay-mtu-1400 vm_set_mtu 1400 broker client
v6_cfg "$W/broker.cfg" session.up="$W/up.sh" session.pre-down="$W/predown.sh" session.down="$W/down.sh" \
  session.mtu-changed="$W/mtu.sh"
td_check broker-start v6_start "$W/broker.cfg" "$W/broker.log"
vm_check listening-on-v6 grep -q "listening on \[$B6\]:8942 (interface ul0)" "$W/broker.log"
# one client with a client-side kernel tunnel over UDP/IPv6, asking for a 1024 kbit/s limit
lg6 kernel6 --clients 1 --kernel --limit 1024 --source 2001:db8::10 --up-timeout 240 --duration 90 --uuid-prefix v6k --ifname-prefix lg &
lpid=$!
if vm_check kernel6-up wait_for 240 grep -q 'all 1 tunnels up' "$W/kernel6.out"; then
  vm_check broker-session-up td_wait_link_up broker l2tp100-100 10
  vm_check client-kernel-tunnel-over-v6 sh -c "ip -n client l2tp show tunnel | grep -q 'From 2001:db8::10 to $B6'"
  vm_check broker-kernel-tunnel-over-v6 sh -c "ip -n broker l2tp show tunnel | grep -q 'From $B6 to 2001:db8::10'"
  ip -n client link set lg0 up && ip -n client addr add "$VM_OVL_CLIENT/$VM_OVL_PREFIX" dev lg0
  vm_check ping-through-l2tp-over-ipv6 vm_ping client "$VM_OVL_BROKER" 5
  has_htb() { in_ns broker tc qdisc show dev l2tp100-100 | grep -q '^qdisc htb 1: root'; }
  vm_check limit-over-ipv6-htb wait_for 20 has_htb
  vm_check limit-over-ipv6-class sh -c "ip netns exec broker tc class show dev l2tp100-100 | grep -q 'rate 1024Kbit'"
  # broker probes 1500x4, 1492x4, 1476x4, 1450x4, then 1400 fits: 1400 - 74 = 1326 (~17-21 s in).
  # The tunnel then takes the smaller of that and the client's notification: the load
  # generator's client core measures with the client's own formula (src/client/), which the
  # final link MTU below shows next to it.
  vm_check broker-pmtu-1326-at-1400-underlay wait_for 60 grep -q 'MTU 1426 -> 1326' "$W/broker.log"
  echo "MTU over IPv6 at a 1400-byte underlay: broker measured $(grep -o 'MTU 1426 -> [0-9]*' "$W/broker.log" | head -n1), link now broker l2tp100-100 $(td_link_mtu broker l2tp100-100), client lg0 $(td_link_mtu client lg0)"
fi
wait "$lpid"; rc=$?
vm_check kernel6-exit-0 [ "$rc" = 0 ]
td_check broker-sigterm td_stop_broker
vm_check sigterm-no-l2tp-left no_l2tp_left
vm_check sigterm-client-side-clean [ "$(load_kernel_tunnels client)" = 0 ]
vm_set_mtu 1500 broker client

# ---- 2. redaction and the /64 rate limit ------------------------------------------------------
V6_EXTRA="connection_rate_limit_per_ip_count=2 connection_rate_limit_per_ip_time=60" \
  v6_cfg "$W/broker-rl.cfg" log_ip_addresses=false
td_check broker-rl-start v6_start "$W/broker-rl.cfg" "$W/broker-rl.log"
# six clients on six addresses of one /64: two tunnels, the rest refused
lg6 rl64 --clients 6 --source 2001:db8::10-15 --up-timeout 30 --uuid-prefix rl
vm_check rate-limit-per-64-two-tunnels [ "$(grep -c ') up: interface l2tp' "$W/broker-rl.log")" = 2 ]
vm_check rate-limit-per-64-logged grep -q 'more than 2 requests from its /64 (IPv6 prefix) within 60 s' "$W/broker-rl.log"
# a client in another /64 is not affected
lg6 other64 --clients 1 --source 2001:db8:0:1::10 --up-timeout 120 --duration 2 --uuid-prefix other --tunnel-id-base 3000; rc=$?
vm_check rate-limit-other-64-up [ "$rc" = 0 ]
vm_check redaction-hidden grep -q '<ip hidden>' "$W/broker-rl.log"
vm_check redaction-no-client-v6 sh -c "! grep -E -i '2001:db8::1[0-9a-f]|2001:db8:0:1::' '$W/broker-rl.log'"
vm_check redaction-own-address-kept grep -q "\[$B6\]:8942" "$W/broker-rl.log"
td_check broker-rl-sigterm td_stop_broker
vm_check rl-no-l2tp-left no_l2tp_left

# ---- 3. dual stack ----------------------------------------------------------------------------
ip -n broker addr add "$VM_BROKER_IP/24" dev ul0
ip -n client addr add "$VM_CLIENT_IP/24" dev ul0
for _i in $(seq 10 19); do echo "addr add 198.51.100.$_i/24 dev ul0"; done | ip -n client -batch -
v6_cfg "$W/broker-dual.cfg" address="$VM_BROKER_IP,$B6"
td_check broker-dual-start v6_start "$W/broker-dual.cfg" "$W/broker-dual.log"
vm_check dual-listens-v4 grep -q "listening on $VM_BROKER_IP:8942" "$W/broker-dual.log"
vm_check dual-listens-v6 grep -q "listening on \[$B6\]:8942" "$W/broker-dual.log"
lg4 dual4 --clients 10 --kernel --source 198.51.100.10-19 --up-timeout 240 --duration 60 --uuid-prefix d4 --ifname-prefix la --tunnel-id-base 1000 &
p4=$!
lg6 dual6 --clients 10 --kernel --source 2001:db8::10-19 --up-timeout 240 --duration 60 --uuid-prefix d6 --ifname-prefix lb --tunnel-id-base 2000 &
p6=$!
if vm_check dual-20-up wait_for 300 sh -c "grep -q 'all 10 tunnels up' '$W/dual4.out' && grep -q 'all 10 tunnels up' '$W/dual6.out'"; then
  vm_check dual-broker-20-kernel-tunnels [ "$(load_kernel_tunnels broker)" = 20 ]
  vm_check dual-10-over-v4 [ "$(tunnel_family_count "$VM_BROKER_IP ")" = 10 ]
  vm_check dual-10-over-v6 [ "$(tunnel_family_count "$B6 ")" = 10 ]
  vm_check dual-client-20-kernel-tunnels [ "$(load_kernel_tunnels client)" = 20 ]
fi
wait "$p4"; r4=$?
wait "$p6"; r6=$?
vm_check dual-exit-0 [ "$r4.$r6" = 0.0 ]
vm_check dual-broker-empty-after-teardown wait_for 20 sh -c "[ \$(ip -n broker l2tp show tunnel | grep -c '^Tunnel ') = 0 ]"
# setup time, same broker, same boot: 30 control-only clients over IPv4, then over IPv6
lg4 time4 --clients 30 --source 198.51.100.10-19 --up-timeout 240 --duration 1 --uuid-prefix t4 --tunnel-id-base 4000; t4=$?
lg6 time6 --clients 30 --source 2001:db8::10-19 --up-timeout 240 --duration 1 --uuid-prefix t6 --tunnel-id-base 5000; t6=$?
vm_check setup-time-runs-exit-0 [ "$t4.$t6" = 0.0 ]
for _r in time4 time6; do
  eval "$(load_vars $_r)"
  echo "SETUP-TIME $_r: 30 clients all up after ${lg_all_up:-never} s, handshake p50/p95/p99 ${lg_hs_p50}/${lg_hs_p95}/${lg_hs_p99} ms"
done
td_check broker-dual-sigterm td_stop_broker
vm_check dual-sigterm-no-l2tp-left no_l2tp_left

[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker.log" "$W/kernel6.out" "$W/kernel6.err" "$W/broker-rl.log" "$W/rl64.out" \
  "$W/broker-dual.log" "$W/dual4.err" "$W/dual6.err"
vm_done
