# Broker hardening on a real kernel: SIGHUP does not kill the broker (only log.verbosity is
# re-read); a second broker whose tunnel-id range overlaps a running one refuses to start and
# leaves the first one's kernel tunnel alone, a disjoint one starts; the listener's receive
# buffer is logged; a 6-byte keepalive from an unknown endpoint gets no answer (a 12-byte one
# gets a 12-byte ERROR 04).
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK

vm_check topo vm_topo_pair
td_std_broker verbosity=INFO
BPID=$TD_BROKER_PID
td_std_client
vm_check listener-recv-buffer-logged grep -q 'listening on .*8942 .*receive buffer' "$W/broker.log"
grep 'listening on' "$W/broker.log"

# SIGHUP: still running, config re-read (it now says DEBUG)
sed -i 's/^verbosity=.*/verbosity=DEBUG/' "$W/broker.cfg"
kill -HUP "$BPID"
vm_check sighup-logged wait_for 10 grep -q 'reload (SIGHUP): .*log.verbosity [a-z]* -> debug' "$W/broker.log"
vm_check sighup-broker-alive kill -0 "$BPID"
vm_check sighup-tunnel-kept sh -c "ip -n broker l2tp show tunnel | grep -q '^Tunnel 100,'"

# a second broker on ids 110-125 (overlaps 100-115) on other ports: refuses, exit 1
td_broker_cfg "$W/b2.cfg" port=9000 tunnel_id_base=110
ip netns exec broker node "$TD_BROKER_BIN" "$W/b2.cfg" > "$W/b2.log" 2>&1
vm_check overlap-refused-exit-1 [ $? -eq 1 ]
vm_check overlap-message grep -q 'overlap ids 100-115 of the broker running as pid' "$W/b2.log"
vm_check overlap-first-tunnel-kept sh -c "ip -n broker l2tp show tunnel | grep -q '^Tunnel 100,'"
vm_check overlap-ping-still-works vm_ping client "$VM_OVL_BROKER" 2
cat "$W/b2.log"
# disjoint ids 200-215: starts
td_broker_cfg "$W/b3.cfg" port=9001 tunnel_id_base=200
ip netns exec broker node "$TD_BROKER_BIN" "$W/b3.cfg" > "$W/b3.log" 2>&1 &
B3=$!
vm_check disjoint-starts wait_for 30 grep -q 'broker started' "$W/b3.log"
kill -TERM "$B3"; wait "$B3"
vm_check disjoint-exit-0 [ $? -eq 0 ]
vm_check lock-files sh -c "ls /run/tunneldigger/ | grep -qx 'broker-ids-100-115.pid' && ! ls /run/tunneldigger/ | grep -q 200-215"

# reflection: 6 bytes in, nothing out; 12 in, 12 out
short_keepalive_unanswered() { ! td_udp client "$VM_BROKER_IP" 8942 '80 73 a7 01 05 00' 1500; }
vm_check short-keepalive-unanswered short_keepalive_unanswered
r=$(td_udp client "$VM_BROKER_IP" 8942 '80 73 a7 01 05 04 00 00 00 07 00 00' 3000)
vm_check keepalive-12-gets-error-04-12-bytes [ "$r" = '80 73 a7 01 03 01 04 00 00 00 00 00' ]

td_check broker-sigterm-exit-0 td_stop_broker
vm_check lock-file-removed sh -c "! ls /run/tunneldigger/ 2>/dev/null | grep -q broker-ids-100-115"
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker.log" "$W/b2.log" "$W/b3.log"
vm_done
