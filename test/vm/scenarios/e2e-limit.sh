# End to end with `-L 1024`: the client's reliable LIMIT makes the broker put an HTB root qdisc
# with a 1024 kbit/s class and fq_codel under it on the session interface; REL_ACK stops the
# client's retransmissions.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK

vm_check topo vm_topo_pair
td_std_broker
td_std_client -L 1024
has_htb() {
  in_ns broker tc qdisc show dev l2tp100-100 > "$W/.q" &&
  grep -q '^qdisc htb 1: root' "$W/.q" && grep -q '^qdisc fq_codel 10: parent 1:1 ' "$W/.q"
}
vm_check htb-root-and-fq-codel wait_for 15 has_htb
in_ns broker tc -s qdisc show dev l2tp100-100
in_ns broker tc class show dev l2tp100-100
vm_check class-1-1-rate-1024kbit sh -c "ip netns exec broker tc class show dev l2tp100-100 | grep -q '^class htb 1:1 root .*rate 1024Kbit ceil 1024Kbit'"
vm_check ping-through-shaped-tunnel vm_ping client "$VM_OVL_BROKER" 3
# The client retransmits an unacknowledged LIMIT every 2 s and the broker re-applies every copy:
# one application after 7 s means the REL_ACK arrived.
sleep 7
vm_check limit-applied-once sh -c "[ \$(grep -c 'limiting downstream bandwidth to 1024 kbit/s' '$W/broker.log') = 1 ]"
vm_check client-no-retransmit-give-up sh -c "! grep -q 'giving up' '$W/client.log'"
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client.log" "$W/broker.log"
vm_done
