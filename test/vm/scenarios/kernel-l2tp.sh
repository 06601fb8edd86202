# Harness self-test: the VM kernel does L2TPv3/UDP (static tunnels via iproute2), HTB on an
# l2tpeth interface, underlay MTU changes and MASQUERADE NAT; lib.sh topologies work.
. "$(dirname "$0")/../lib.sh"

# l2tp_static <ns> <tid> <peer_tid> <local> <remote> <sport> <dport> <sid> <peer_sid> <ifname> <addr>
l2tp_static() {
  ip -n "$1" l2tp add tunnel tunnel_id "$2" peer_tunnel_id "$3" encap udp \
    local "$4" remote "$5" udp_sport "$6" udp_dport "$7" &&
  ip -n "$1" l2tp add session name "${10}" tunnel_id "$2" session_id "$8" peer_session_id "$9" &&
  ip -n "$1" addr add "${11}/$VM_OVL_PREFIX" dev "${10}" &&
  ip -n "$1" link set "${10}" up
}

# --- plain pair ---
vm_check topo-pair vm_topo_pair
vm_check underlay-ping vm_ping client "$VM_BROKER_IP"
vm_check l2tp-broker-side l2tp_static broker 1 2 "$VM_BROKER_IP" "$VM_CLIENT_IP" 5001 5002 1 2 l2tp1-1 "$VM_OVL_BROKER"
vm_check l2tp-client-side l2tp_static client 2 1 "$VM_CLIENT_IP" "$VM_BROKER_IP" 5002 5001 2 1 l2tp2-2 "$VM_OVL_CLIENT"
vm_check l2tp-tunnel-listed sh -c "ip -n broker l2tp show tunnel | grep -q 'Tunnel 1, encap UDP'"
vm_check overlay-ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check overlay-ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3

# The broker's LIMIT recipe (spec §6.2): root htb 1: default 1, class 1:1, fq_codel leaf.
htb() {
  in_ns broker tc qdisc add dev l2tp1-1 root handle 1: htb default 1 &&
  in_ns broker tc class add dev l2tp1-1 parent 1: classid 1:1 htb rate 512kbit ceil 512kbit &&
  in_ns broker tc qdisc add dev l2tp1-1 parent 1:1 fq_codel &&
  in_ns broker tc qdisc show dev l2tp1-1 | grep -q 'qdisc htb 1: root' &&
  in_ns broker tc qdisc show dev l2tp1-1 | grep -q 'qdisc fq_codel'
}
vm_check tc-htb-on-l2tpeth htb
vm_check overlay-ping-through-htb vm_ping client "$VM_OVL_BROKER" 2

mtu() {
  vm_set_mtu 1400 &&
  [ "$(vm_link_mtu broker ul0)" = 1400 ] && [ "$(vm_link_mtu client ul0)" = 1400 ] &&
  vm_ping client "$VM_OVL_BROKER" 2 1200
}
vm_check underlay-mtu-1400 mtu

# --- behind NAT ---
vm_check topo-nat vm_topo_nat
# The broker has no route to the client LAN, so a reply proves the source was rewritten.
vm_check nat-masquerade-ping vm_ping client "$VM_BROKER_IP"
# Client side first, as in real life: if the broker sent first (IPv6 ND on its new l2tpeth), the
# NAT would hold a conntrack entry for 198.51.100.1:5001 -> 198.51.100.2:5002 and MASQUERADE would
# move the client's flow to another port.
vm_check nat-l2tp-client-side l2tp_static client 2 1 "$VM_CLIENT_LAN_IP" "$VM_BROKER_IP" 5002 5001 2 1 l2tp2-2 "$VM_OVL_CLIENT"
vm_check nat-l2tp-broker-side l2tp_static broker 1 2 "$VM_BROKER_IP" "$VM_CLIENT_IP" 5001 5002 1 2 l2tp1-1 "$VM_OVL_BROKER"
vm_check nat-overlay-ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check nat-overlay-ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3
[ "$VMTEST_FAILS" -eq 0 ] || in_ns nat cat /proc/net/nf_conntrack
# Negative control: without the MASQUERADE rule the same ping must fail.
no_nat() { ip netns exec nat nft delete table ip vmnat && ! vm_ping client "$VM_BROKER_IP" 1; }
vm_check nat-required-for-reply no_nat

vm_topo_clean
vm_done
