# Broker side of the big-endian full-system test (test/vm-mips/run-scenarios.sh): runs in the
# x86 VM, whose virtio NIC is joined by a qemu socket netdev to the MIPS VM running the router
# client (test/vm-mips/e2e-client.sh). Our Node broker on 198.51.100.1:8942 (NIC MTU 1400) must
# get a tunnel from the MIPS client, shape it with HTB at 1024 kbit/s (-L 1024), settle at tunnel
# MTU 1346, pass pings, and see ERROR 0x11 and a clean kernel when the client gets SIGTERM.
# Big-endian run (mips-e2e) also over IPv6: the broker listens on 198.51.100.1 and
# 2001:db8:100::1; after the IPv4 tunnel is gone the MIPS client comes back over IPv6.
# The two VMs meet through files in /run/vmout/mips/ (= the MIPS VM's /run/vmout):
#   broker-ready, broker-checks-done, broker-ipv4-done, broker-ipv6-checks-done (we write)  client-stopped (the MIPS VM writes).
VMTEST_SCENARIO=${TD_E2E_NAME:-mips-e2e}   # mipsel-e2e: test/vm-mipsel/run-scenarios.sh
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK
SYNC=/run/vmout/mips
mkdir -p "$SYNC"
mark() { touch "$SYNC/$1"; }
if [ "$VMTEST_SCENARIO" = mips-e2e ]; then TD_E2E_IPV6=${TD_E2E_IPV6:-1}; else TD_E2E_IPV6=${TD_E2E_IPV6:-0}; fi
B6=2001:db8:100::1

# The socket NIC (the only one besides lo) goes into ns broker as ul0, MTU 1400 from the start.
nic_setup() {
  # the virtio NIC, not e.g. the dummy0 that the dummy module creates
  dev=
  for d in /sys/class/net/*; do
    case "$(readlink "$d/device/driver" 2>/dev/null)" in */virtio_net) dev=${d##*/}; break ;; esac
  done
  [ -n "$dev" ] || { echo "no virtio NIC (virtio_net loaded? VM_QEMU_EXTRA set?): $(ls /sys/class/net)"; return 1; }
  vm_topo_clean; _vm_ns broker &&
  ip link set "$dev" netns broker && ip -n broker link set "$dev" name ul0 &&
  ip -n broker link set ul0 mtu 1400 && ip -n broker addr add "$VM_BROKER_IP/24" dev ul0 &&
  ip -n broker link set ul0 up &&
  { [ "$TD_E2E_IPV6" != 1 ] || ip -n broker addr add "$B6/64" dev ul0 nodad; }
}
vm_check broker-nic-198.51.100.1-mtu-1400 nic_setup
if [ "$TD_E2E_IPV6" = 1 ]; then td_std_broker address="$VM_BROKER_IP,$B6"; else td_std_broker; fi
mark broker-ready
if ! vm_check broker-l2tp100-100-up td_wait_link_up broker l2tp100-100 240; then
  mark broker-checks-done
  td_dump "$W/broker.log"; ip -n broker -s link show ul0
  vm_done
fi

tunnel_is() { ip -n "$1" l2tp show tunnel | grep -A 2 "^Tunnel $2, encap UDP" | grep -q "Peer tunnel $3\$"; }
session_is() { # ns sid tid peer_sid peer_tid ifname
  ip -n "$1" l2tp show session | grep -A 2 "^Session $2 in tunnel $3\$" > "$W/.s" &&
  grep -q "Peer session $4, tunnel $5\$" "$W/.s" && grep -q "interface name: $6\$" "$W/.s"
}
vm_check broker-hook-session-up-9-args td_hook_wait 10 "$W/broker-hooks.log" \
  "^up 100 100 l2tp100-100 1446 $VM_CLIENT_IP [0-9]+ 8942 $TD_UUID 8942\$"
vm_check broker-kernel-tunnel-100-peer-1 tunnel_is broker 100 1
vm_check broker-kernel-session-100-peer-1 session_is broker 100 100 1 1 l2tp100-100
ip -n broker l2tp show tunnel; ip -n broker l2tp show session
# The client's overlay address is added by its session.up hook on the MIPS side.
vm_check ping-broker-to-mips-client wait_for 60 vm_ping broker "$VM_OVL_CLIENT" 3

has_htb() {
  in_ns broker tc qdisc show dev l2tp100-100 > "$W/.q" &&
  grep -q '^qdisc htb 1: root' "$W/.q" && grep -q '^qdisc fq_codel 10: parent 1:1 ' "$W/.q"
}
vm_check broker-htb-root-and-fq-codel wait_for 60 has_htb
vm_check broker-htb-class-1024kbit sh -c "ip netns exec broker tc class show dev l2tp100-100 | grep -q '^class htb 1:1 root .*rate 1024Kbit ceil 1024Kbit'"
in_ns broker tc class show dev l2tp100-100

mtu_is() { [ "$(td_link_mtu "$1" "$2")" = "$3" ]; }
vm_check broker-mtu-1346 wait_for 120 mtu_is broker l2tp100-100 1346
vm_check broker-hook-mtu-changed td_hook_wait 10 "$W/broker-hooks.log" "^mtu 100 100 l2tp100-100 1446 1346 $TD_UUID\$"
vm_check ping-broker-to-mips-client-after-pmtu vm_ping broker "$VM_OVL_CLIENT" 3
echo "broker l2tp100-100 MTU $(td_link_mtu broker l2tp100-100)"
# Let the MIPS side finish its checks too (its LIMIT retransmissions would show in our log).
mark broker-checks-done

# The MIPS VM now sends SIGTERM to its client: ERROR 0x11 must arrive and the tunnel go away.
vm_check broker-got-error-0x11 wait_for 180 grep -q 'closed: client closed it: client shutdown (0x11)' "$W/broker.log"
vm_check broker-down-hook td_hook_wait 20 "$W/broker-hooks.log" "^down 100 100 l2tp100-100 "
vm_check broker-kernel-clean wait_for 10 sh -c "! ip -n broker l2tp show tunnel | grep -q '^Tunnel' && ! ip -n broker link show dev l2tp100-100"
vm_check limit-applied-once sh -c "[ \$(grep -c 'limiting downstream bandwidth to 1024 kbit/s' '$W/broker.log') = 1 ]"
if [ "$TD_E2E_IPV6" = 1 ]; then
  # the IPv4 tunnel's checks are done: the MIPS client may come back over IPv6 now
  mark broker-ipv4-done
  v6_tunnel() { ip -n broker l2tp show tunnel | grep -q "From $B6 to 2001:db8:100::2"; }
  vm_check broker-ipv6-tunnel-from-mips-client wait_for 240 v6_tunnel
  vm_check ping-broker-to-mips-client-over-ipv6 wait_for 60 vm_ping broker "$VM_OVL_CLIENT" 3
  l2tp_if() { ip -n broker -o link show | sed -n 's/^[0-9]*: \(l2tp[0-9-]*\).*/\1/p' | head -n 1; }
  v6_mtu_is() { mtu_is broker "$(l2tp_if)" "$1"; }
  vm_check broker-ipv6-mtu-1326 wait_for 120 v6_mtu_is 1326
  echo "broker $(l2tp_if) MTU over IPv6 $(td_link_mtu broker "$(l2tp_if)")"
  mark broker-ipv6-checks-done
  vm_check broker-ipv6-got-error-0x11 wait_for 180 sh -c "[ \$(grep -c 'client shutdown (0x11)' '$W/broker.log') -ge 2 ]"
fi
td_hook_calls "$W/broker-hooks.log"
wait_for 60 test -e "$SYNC/client-stopped" || echo "NOTE: no client-stopped mark from the MIPS VM within 60 s"
td_check broker-sigterm-exit-0 td_stop_broker
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker.log" "$W/broker-hooks.log"
vm_done
