# End to end behind a MASQUERADE NAT: the client (203.0.113.2) reaches the broker through the nat
# namespace; the tunnel comes up, data flows both ways, and the broker uses the NATed endpoint.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK

vm_check topo vm_topo_nat
td_std_broker
td_std_client
vm_check ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3

# The client's kernel tunnel uses its own LAN address; the broker's one the NAT's public address.
vm_check client-tunnel-from-lan-address sh -c "ip -n client l2tp show tunnel | grep -q 'From $VM_CLIENT_LAN_IP to $VM_BROKER_IP'"
vm_check broker-tunnel-to-nat-address sh -c "ip -n broker l2tp show tunnel | grep -q 'From $VM_BROKER_IP to $VM_CLIENT_IP'"
# The broker's hook saw the NAT's public address and the port the NAT mapped the flow to.
nat_port=$(ip netns exec nat cat /proc/net/nf_conntrack 2>/dev/null |
  sed -n "s/.*src=$VM_CLIENT_LAN_IP dst=$VM_BROKER_IP sport=\([0-9]*\) dport=8942 .*src=$VM_BROKER_IP dst=$VM_CLIENT_IP sport=8942 dport=\([0-9]*\).*/\2/p" | head -n1)
echo "NAT mapping for the tunnel flow: $VM_BROKER_IP:8942 <- $VM_CLIENT_IP:${nat_port:-?}"
hook_endpoint() {
  td_hook_argv "$W/broker-hooks.log" up 1 > "$W/.up"
  ip=$(sed -n 5p "$W/.up"); port=$(sed -n 6p "$W/.up")
  [ "$ip" = "$VM_CLIENT_IP" ] || { echo "client_ip $ip"; return 1; }
  [ -z "$nat_port" ] || [ "$port" = "$nat_port" ] || { echo "client_port $port, NAT mapped $nat_port"; return 1; }
}
vm_check broker-hook-sees-nat-endpoint hook_endpoint
vm_check broker-log-sees-nat-endpoint grep -q "(uuid $TD_UUID, $VM_CLIENT_IP:${nat_port:-[0-9]*}) up: interface l2tp100-100" "$W/broker.log"
[ "$VMTEST_FAILS" -eq 0 ] || { td_dump "$W/client.log" "$W/broker.log" "$W/broker-hooks.log"; ip netns exec nat cat /proc/net/nf_conntrack; }
vm_done
