# vm-scenario-timeout: 900
# The real client over an IPv6 underlay (issue 9), 2001:db8::/32 only; the overlay inside the
# tunnels stays 203.0.113.128/25.
#   a) IPv6-only underlay (no IPv4 address on the link): tunnel up, ping both ways, PMTU at a
#      1400-byte underlay on both ends (1400 - 40 - 8 - 12 - 14 = 1326), LIMIT, SIGTERM clean-up;
#   b) dual stack: one broker on 198.51.100.1 and 2001:db8:100::1, a v4 and a v6 client at once,
#      then a third client with a name that has A and AAAA records (/etc/netns/client/hosts, which
#      `ip netns exec` binds over /etc/hosts; the client's getaddrinfo reads it: hosts: files dns)
#      while the IPv6 path to that port is dropped: it comes up over IPv4;
#   c) the client behind a stateful IPv6 firewall that only lets replies in (conntrack).
# Setup times (client start -> "tunnel N up") and MTU figures are printed as FIGURE lines at the
# end (IPv4 and IPv6 from the same boot, to be compared with each other only: TCG).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK
B6=2001:db8:100::1
C6=2001:db8:100::2

ms() { echo $(( $(date +%s%N) / 1000000 )); }
mtu_is() { [ "$(td_link_mtu "$1" "$2")" = "$3" ]; }
broker_tunnels() { ip -n broker l2tp show tunnel 2>/dev/null | grep -c '^Tunnel '; }
client_up_line() { grep -q "tunnel $2 up on $3 over IPv$4" "$1"; }
# setup_time <log> <tunnel id> <ifname> <family> <start ms> <label> [max ms]: waits for the up
# line, prints a FIGURE line with the time from the client's start (fails above max ms)
setup_time() {
  wait_for 40 client_up_line "$1" "$2" "$3" "$4" || return 1
  _t=$(( $(ms) - $5 ))
  echo "FIGURE setup-time $6: $_t ms" >> "$W/figures.txt"
  [ -z "${7:-}" ] || [ "$_t" -le "$7" ]
}
v6_addr() { ip -n "$1" addr add "$2/64" dev "$3" nodad; }
no_client_state() { ! ip -n client l2tp show tunnel | grep -q '^Tunnel ' && ! ip -n client link show dev l2tp0 >/dev/null 2>&1; }
no_broker_state() { [ "$(broker_tunnels)" = 0 ]; }
topo_v6_pair() {
  vm_topo_pair && ip -n broker addr flush dev ul0 && ip -n client addr flush dev ul0 &&
  v6_addr broker $B6 ul0 && v6_addr client $C6 ul0
}
topo_dual() { vm_topo_pair && v6_addr broker $B6 ul0 && v6_addr client $C6 ul0; }
listens_on_both() {
  ip netns exec broker ss -Hlun > "$W/ss.txt" &&
  grep -q "$VM_BROKER_IP:8942 " "$W/ss.txt" && grep -q "\[$B6\]:8942 " "$W/ss.txt"
}
tunnel_count() { [ "$(broker_tunnels)" = "$1" ]; }
# td_start_broker, with up to 90 s more for a broker that is slow to start on a loaded host
start_broker() { td_start_broker "$@" 2>/dev/null || wait_for 90 grep -q 'broker started' "$3"; }

# --- a) IPv6-only underlay ---------------------------------------------------------------------
vm_check a-topo topo_v6_pair
vm_check a-no-ipv4-on-the-link sh -c "! ip -n client -4 addr show dev ul0 | grep -q inet"
vm_check a-underlay-mtu-1400-broker vm_set_mtu 1400 broker
td_hook_script "$W/up.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for h in predown down mtu; do td_hook_script "$W/$h.sh" "$W/broker-hooks.log"; done
td_broker_cfg "$W/broker.cfg" address=$B6 port=8942 session.up="$W/up.sh" session.pre-down="$W/predown.sh" \
  session.down="$W/down.sh" session.mtu-changed="$W/mtu.sh" &&
  td_check a-broker-start start_broker broker "$W/broker.cfg" "$W/broker.log"
T0=$(ms)
td_hook_script "$W/client-hook.sh" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
td_check a-client-start td_start_client client "$W/client.log" -f -u "$TD_UUID" -b "[$B6]:8942" -i l2tp0 -t 1 \
  -s "$W/client-hook.sh" -m -L 1024
vm_check a-client-l2tp0-up td_wait_link_up client l2tp0 40
vm_check a-broker-l2tp100-100-up td_wait_link_up broker l2tp100-100 10
vm_check a-up-over-ipv6 setup_time "$W/client.log" 1 l2tp0 6 "$T0" "ipv6-only-literal"
vm_check a-underlay-mtu-1400-client vm_set_mtu 1400 client
vm_check a-kernel-tunnel-over-ipv6 sh -c "ip -n client l2tp show tunnel | grep -q 'From $C6 to $B6'"
vm_check a-ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check a-ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3
vm_check a-limit-class-1024kbit wait_for 20 sh -c "ip netns exec broker tc class show dev l2tp100-100 | grep -q 'rate 1024Kbit'"
vm_check a-broker-mtu-1326 wait_for 60 mtu_is broker l2tp100-100 1326
vm_check a-client-mtu-1326 wait_for 45 mtu_is client l2tp0 1326
echo "FIGURE mtu ipv6-underlay-1400: broker l2tp100-100 $(td_link_mtu broker l2tp100-100), client l2tp0 $(td_link_mtu client l2tp0)"
vm_check a-client-hook-mtu-changed td_hook_wait 10 "$W/client-hooks.log" '^client-hook session.mtu-changed l2tp0 [0-9]+ 1326$'
td_check a-client-sigterm-exit-0 td_stop_client
vm_check a-client-kernel-state-gone no_client_state
vm_check a-broker-got-error-11 wait_for 10 grep -q 'client shutdown (0x11)' "$W/broker.log"
vm_check a-broker-kernel-state-gone wait_for 10 no_broker_state
td_check a-broker-stop td_stop_broker
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client.log" "$W/broker.log" "$W/client-hooks.log"

# --- b) dual stack -----------------------------------------------------------------------------
vm_check b-topo topo_dual
td_broker_cfg "$W/broker-b.cfg" address="$VM_BROKER_IP,$B6" port=8942,53 &&
  td_check b-broker-start start_broker broker "$W/broker-b.cfg" "$W/broker-b.log"
vm_check b-listens-on-both listens_on_both
td_hook_script "$W/hook-b.sh" "$W/hooks-b.log"
B_PIDS=
start_b() {
  ip netns exec client "$TD_CLIENT_BIN" -f -u "$1" -i "$2" -t "$3" -s "$W/hook-b.sh" -b "$4" > "$W/$1.log" 2>&1 &
  B_PIDS="$B_PIDS $!"
}
T0=$(ms); start_b v4client l2tp1 1 "$VM_BROKER_IP:8942"
vm_check b-v4-client-up setup_time "$W/v4client.log" 1 l2tp1 4 "$T0" "dual-stack-ipv4-literal"
T0=$(ms); start_b v6client l2tp2 2 "[$B6]:8942"
vm_check b-v6-client-up setup_time "$W/v6client.log" 2 l2tp2 6 "$T0" "dual-stack-ipv6-literal"
vm_check b-both-tunnels-at-once tunnel_count 2
vm_check b-broker-sees-v4-and-v6 sh -c "ip -n broker l2tp show tunnel | grep -q 'From $VM_BROKER_IP to $VM_CLIENT_IP' && ip -n broker l2tp show tunnel | grep -q 'From $B6 to $C6'"
# a name with A and AAAA; IPv6 to port 53 is dropped (the v6 client on 8942 keeps working)
mkdir -p /etc/netns/client
printf '%s broker.test\n%s broker.test\n' "$B6" "$VM_BROKER_IP" > /etc/netns/client/hosts
vm_check b-name-has-a-and-aaaa sh -c "ip netns exec client getent ahosts broker.test | grep -q '$B6' && ip netns exec client getent ahosts broker.test | grep -q '$VM_BROKER_IP'"
drop_ipv6_to_53() {
  ip netns exec client nft -f - <<EOF
table ip6 drop6 {
  chain out {
    type filter hook output priority 0; policy accept;
    udp dport 53 counter drop
  }
}
EOF
}
vm_check b-drop-ipv6-to-53 drop_ipv6_to_53
T0=$(ms); start_b nameclient l2tp3 3 broker.test:53
vm_check b-name-client-up-over-ipv4 setup_time "$W/nameclient.log" 3 l2tp3 4 "$T0" "name-a-aaaa-ipv6-dropped" 15000
vm_check b-ipv6-was-tried-first sh -c "ip netns exec client nft list table ip6 drop6 | grep -q 'packets [1-9]'"
vm_check b-name-client-selected-over-ipv4 grep -q "selected (usage [0-9]*/65535, 1 of 1 answered, over IPv4 $VM_BROKER_IP:53)" "$W/nameclient.log"
vm_check b-name-client-first-attempt sh -c "! grep -q 'new attempt' '$W/nameclient.log'"
vm_check b-three-tunnels tunnel_count 3
# the same name without the drop: IPv6 (first in getaddrinfo's RFC 6724 order) answers first
ip netns exec client nft delete table ip6 drop6
T0=$(ms); start_b nameclient2 l2tp4 4 broker.test:53
vm_check b-name-client-both-open-over-ipv6 setup_time "$W/nameclient2.log" 4 l2tp4 6 "$T0" "name-a-aaaa-both-open"
rm -rf /etc/netns/client
for p in $B_PIDS; do kill -TERM "$p" 2>/dev/null; done
vm_check b-clients-gone wait_for 20 tunnel_count 0
# the two literals again, the other way round (the first setup of a boot may pay for warm-up)
B_PIDS=
T0=$(ms); start_b v6client-2 l2tp2 2 "[$B6]:8942"
vm_check b-v6-client-again setup_time "$W/v6client-2.log" 2 l2tp2 6 "$T0" "dual-stack-ipv6-literal-2nd"
T0=$(ms); start_b v4client-2 l2tp1 1 "$VM_BROKER_IP:8942"
vm_check b-v4-client-again setup_time "$W/v4client-2.log" 1 l2tp1 4 "$T0" "dual-stack-ipv4-literal-2nd"
for p in $B_PIDS; do kill -TERM "$p" 2>/dev/null; done
vm_check b-clients-gone-again wait_for 20 tunnel_count 0
td_check b-broker-stop td_stop_broker
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/v4client.log" "$W/v6client.log" "$W/nameclient.log" "$W/broker-b.log"

# --- c) behind a stateful IPv6 firewall that only allows replies ---------------------------------
L6=2001:db8:200::2
# broker[ul0 B6] <-> fw "nat"[wan0 C6 | lan0 2001:db8:200::1] <-> client[ul0 L6], routed, no NAT
topo_fw() {
  vm_topo_clean
  for n in broker nat client; do ip netns add $n && ip -n $n link set lo up || return 1; done
  ip link add ul0 netns broker type veth peer name wan0 netns nat &&
  ip link add lan0 netns nat type veth peer name ul0 netns client &&
  v6_addr broker $B6 ul0 && v6_addr nat $C6 wan0 && v6_addr nat 2001:db8:200::1 lan0 && v6_addr client $L6 ul0 &&
  for l in broker:ul0 nat:wan0 nat:lan0 client:ul0; do ip -n "${l%%:*}" link set "${l#*:}" up || return 1; done &&
  ip -n client -6 route add default via 2001:db8:200::1 &&
  ip -n broker -6 route add 2001:db8:200::/64 via $C6 &&
  ip netns exec nat sysctl -qw net.ipv6.conf.all.forwarding=1 &&
  ip netns exec nat nft -f - <<EOF
table ip6 fw {
  chain forward_in {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan0" accept
    counter
  }
}
EOF
}
vm_check c-topo topo_fw
vm_check c-firewall-blocks-unsolicited sh -c "! ip netns exec broker busybox ping -c 1 -W 2 $L6"
vm_check c-firewall-lets-client-out sh -c "ip netns exec client busybox ping -c 1 -W 3 $B6"
td_broker_cfg "$W/broker-c.cfg" address=$B6 port=8942 session.up="$W/up.sh" &&
  td_check c-broker-start start_broker broker "$W/broker-c.cfg" "$W/broker-c.log"
: > "$W/client-hooks.log"
td_check c-client-start td_start_client client "$W/client-c.log" -f -u "$TD_UUID-c" -b "[$B6]:8942" -i l2tp0 -t 1 -s "$W/client-hook.sh"
vm_check c-tunnel-up td_wait_link_up client l2tp0 40
vm_check c-up-over-ipv6 grep -q 'tunnel 1 up on l2tp0 over IPv6' "$W/client-c.log"
vm_check c-ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check c-ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3
# broker keepalives keep arriving as replies: still up after the broker's probing and a while
sleep 12
vm_check c-still-up-after-12s sh -c "ip -n client link show dev l2tp0 | grep -q UP && ! grep -q 'no control packet' '$W/client-c.log'"
td_check c-client-stop td_stop_client
td_check c-broker-stop td_stop_broker
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client-c.log" "$W/broker-c.log"
cat "$W/figures.txt"
vm_done
