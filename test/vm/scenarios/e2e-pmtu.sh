# End to end path MTU discovery: with a 1400-byte underlay both ends measure 1400 - 54 = 1346,
# set it on their interfaces (broker hook `session.mtu-changed ... 1446 1346 uuid`, client hook
# `session.mtu-changed l2tp0 <old> 1346`), and a 1346-byte packet with DF crosses the tunnel.
# Timing: the broker probes 0-4 s after TUNNEL (1500/1492/1476/1450 x 4 at 1/s before 1400);
# the client's first round is 15 s after setup (+5 s evaluation); a path MTU below the largest
# probe is only taken once a confirmation round (+25 s, evaluated at +30 s) agrees.
# The kernel sizes a new l2tp_eth interface from the route MTU (1400 - 54 = 1346), so with the
# client's end already at 1400 l2tp0 would be born at 1346 and the client would have no change
# to report: the client's end goes to 1400 right after its tunnel exists (before any probe).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK

vm_check topo vm_topo_pair
vm_check underlay-mtu-1400-broker vm_set_mtu 1400 broker
td_std_broker
td_std_client -m # -m: the client hook gets session.mtu-changed (opt-in)
vm_check underlay-mtu-1400-client vm_set_mtu 1400 client
echo "MTU after setup: broker l2tp100-100 $(td_link_mtu broker l2tp100-100), client l2tp0 $(td_link_mtu client l2tp0)"
mtu_is() { [ "$(td_link_mtu "$1" "$2")" = "$3" ]; }
vm_check broker-mtu-1346 wait_for 45 mtu_is broker l2tp100-100 1346
vm_check client-mtu-1346 wait_for 30 mtu_is client l2tp0 1346
echo "MTU broker l2tp100-100: $(td_link_mtu broker l2tp100-100), client l2tp0: $(td_link_mtu client l2tp0)"
vm_check broker-hook-mtu-changed td_hook_wait 10 "$W/broker-hooks.log" "^mtu 100 100 l2tp100-100 1446 1346 $TD_UUID\$"
vm_check client-hook-mtu-changed td_hook_wait 10 "$W/client-hooks.log" '^client-hook session.mtu-changed l2tp0 1446 1346$'
td_hook_calls "$W/broker-hooks.log"; td_hook_calls "$W/client-hooks.log"
# Nothing else moved the MTU after that (the broker would re-run its hook on each change).
vm_check broker-mtu-changed-once sh -c "[ \$(grep -c '^@@ mtu ' '$W/broker-hooks.log') = 1 ]"
vm_check client-mtu-changed-once sh -c "[ \$(grep -c '^session.mtu-changed' '$W/client-hooks.log') = 1 ]"

# A full-size packet with DF through the tunnel: 1346 bytes IP inside = 1400 on the underlay.
# busybox ping cannot set DF; iputils `ping -M do` if present, else a raw-socket ping in python3.
cat > "$W/dfping.py" <<'EOF'
# dfping.py <dst> <ip_size>: one ICMP echo of <ip_size> bytes (IP header included) with DF set;
# exit 0 on a reply within 3 s, 1 on timeout, 2 if the kernel refused to send (EMSGSIZE).
import os, socket, struct, sys, time
dst, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER = IP_PMTUDISC_DO
ident = os.getpid() & 0xffff
def csum(b):
    if len(b) % 2: b += b'\0'
    t = sum(struct.unpack('!%dH' % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
body = bytes(size - 28)
pkt = struct.pack('!BBHHH', 8, 0, 0, ident, 1) + body
pkt = pkt[:2] + struct.pack('!H', csum(pkt)) + pkt[4:]
try:
    s.sendto(pkt, (dst, 0))
except OSError as e:
    print('send %d bytes with DF: %s' % (size, e.strerror)); sys.exit(2)
s.settimeout(0.5); end = time.time() + 3
while time.time() < end:
    try: r, _ = s.recvfrom(4096)
    except socket.timeout: continue
    ihl = (r[0] & 15) * 4
    if r[ihl] == 0 and struct.unpack('!H', r[ihl + 4:ihl + 6])[0] == ident:
        print('reply from %s: %d bytes (IP %d)' % (dst, len(r) - ihl, len(r))); sys.exit(0)
print('no reply'); sys.exit(1)
EOF
if command -v ping >/dev/null 2>&1 && ping -V 2>&1 | grep -q iputils; then
  dfping() { in_ns "$1" ping -M do -c 1 -W 3 -s $(( $3 - 28 )) "$2"; }
elif command -v python3 >/dev/null 2>&1; then
  dfping() { in_ns "$1" python3 "$W/dfping.py" "$2" "$3"; }
else
  dfping=""
fi
if command -v python3 >/dev/null 2>&1 || command -v ping >/dev/null 2>&1; then
  vm_check df-ping-1346-client-to-broker dfping client "$VM_OVL_BROKER" 1346
  vm_check df-ping-1346-broker-to-client dfping broker "$VM_OVL_CLIENT" 1346
  # Control: one byte more does not fit the tunnel MTU.
  vm_check df-ping-1347-refused sh -c "! ip netns exec client python3 '$W/dfping.py' $VM_OVL_BROKER 1347"
else
  echo "NOTE: no iputils ping and no python3: DF ping sub-check skipped"
fi
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client.log" "$W/broker.log" "$W/broker-hooks.log" "$W/client-hooks.log"
vm_done
