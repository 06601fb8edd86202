# Bad input end to end: thousands of random, truncated, lying and oversized datagrams
# (test/vm/fuzz-udp.mjs) at every broker listener, at the client's tunnel socket (sent from the
# broker's own address:port through a SO_REUSEPORT socket, since the client's socket is
# connected) and at the broker's tunnel socket (sent from the client's address with the source
# port rewritten to the client's by nftables). Afterwards broker and client still run, no tunnel
# was created, the tunnel still carries traffic and the broker's drop counters grew.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

W=$TD_WORK
FUZZ="node $TD_ROOT/test/vm/fuzz-udp.mjs"
COUNT=${TD_FUZZ_COUNT:-3000}
SEED=${TD_FUZZ_SEED:-$(date +%s)}

vm_check topo vm_topo_pair
td_hook_script "$W/bup.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
td_broker_cfg "$W/broker.cfg" port=8942,53,123 verbosity=INFO session.up="$W/bup.sh"
fleet_do broker-start td_start_broker broker "$W/broker.cfg" "$W/broker.log"
BPID=$TD_BROKER_PID
fleet_client_hook "$W/chook.sh" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
fleet_do client-start td_start_client client "$W/client.log" -f -u fuzz-client -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$W/chook.sh"
CPID=$TD_CLIENT_PID
vm_check tunnel-up wait_for 40 sh -c "ip -n client -o addr show dev l2tp0 | grep -q '$VM_OVL_CLIENT/'"
vm_check ping-before vm_ping client "$VM_OVL_BROKER" 3

tunnels_before=$(ip -n broker l2tp show tunnel | grep '^Tunnel ' | tr '\n' ' ')
vm_check counters-before fleet_broker_counters "$BPID" "$W/broker.log"
created0=$(fleet_counter "$W/broker.log" tunnels-created)
drops_sum() { grep 'counters: ' "$W/broker.log" | tail -n 1 | tr ' ' '\n' | sed -n 's/^drop-[a-z-]*=\([0-9]*\)$/\1/p' | awk '{s += $1} END {print s + 0}'; }
drops0=$(drops_sum)
unhandled0=$(fleet_counter "$W/broker.log" tunnel-unhandled-type)
echo "before: tunnels [$tunnels_before] created=$created0 drops=$drops0 (seed $SEED)"

# 1. every listener, from the client's address (a port the broker has no tunnel for)
t0=$(date +%s)
for p in 8942 53 123; do
  vm_check "fuzz-listener-$p" in_ns client $FUZZ --to "$VM_BROKER_IP:$p" --count "$COUNT" --seed "$((SEED + p))"
done

# 2. the client's tunnel socket: only datagrams from the broker's address:port get through
CPORT=$(ip -n client l2tp show tunnel | sed -n 's/.*UDP source \/ dest ports: \([0-9]*\)\/.*/\1/p' | head -n 1)
echo "client tunnel socket: $VM_CLIENT_IP:$CPORT"
# the client's own PMTU measurement caps what a (fuzzed) broker NTFY can set; wait for it
vm_check client-pmtu-measured wait_for 30 grep -q 'path MTU' "$W/client.log"
# ERROR (3) from the broker's address would rightly close the tunnel: sent with bad headers only
vm_check fuzz-client-socket in_ns broker $FUZZ --to "$VM_CLIENT_IP:$CPORT" --count "$COUNT" --seed "$((SEED + 1))" \
  --bind "$VM_BROKER_IP:8942" --reuseport --dev ul0 --connect 198.51.100.77:9 --skip-types 3

# 3. the broker's tunnel socket: rewrite the fuzzer's source port to the client's, so the
# datagrams match the broker's connected tunnel socket (ERROR and LIMIT would act, so skipped)
nat() {
  in_ns client nft -f - <<EOF
table ip fuzz {
  chain out {
    type filter hook output priority 0; policy accept;
    udp sport 40999 udp sport set $CPORT
  }
}
EOF
}
vm_check nft-source-port-rewrite nat
vm_check fuzz-broker-tunnel-socket in_ns client $FUZZ --to "$VM_BROKER_IP:8942" --count "$COUNT" --seed "$((SEED + 2))" \
  --bind "$VM_CLIENT_IP:40999" --skip-types 3,128
in_ns client nft delete table ip fuzz
echo "fuzzing took $(( $(date +%s) - t0 )) s"
sleep 2   # let both drain their sockets

vm_check broker-still-running kill -0 "$BPID"
vm_check client-still-running kill -0 "$CPID"
vm_check counters-after fleet_broker_counters "$BPID" "$W/broker.log"
grep 'counters: ' "$W/broker.log" | tail -n 1
created1=$(fleet_counter "$W/broker.log" tunnels-created)
drops1=$(drops_sum)
unhandled1=$(fleet_counter "$W/broker.log" tunnel-unhandled-type)
tunnels_after=$(ip -n broker l2tp show tunnel | grep '^Tunnel ' | tr '\n' ' ')
echo "after: tunnels [$tunnels_after] created=$created1 drops=$drops1 tunnel-unhandled-type=$unhandled1"
vm_check no-tunnel-created [ "$created1" = "$created0" ]
vm_check same-kernel-tunnels [ "$tunnels_after" = "$tunnels_before" ]
vm_check broker-drop-counters-grew [ "$drops1" -gt "$drops0" ]
for c in drop-magic drop-length drop-short drop-bad-cookie; do
  vm_check "counter-$c" [ "$(fleet_counter "$W/broker.log" $c)" -gt 0 ]
done
vm_check tunnel-socket-path-hit [ "$unhandled1" -gt "$unhandled0" ]
vm_check tunnel-still-listed sh -c "ip -n client l2tp show tunnel | grep -q 'Tunnel 1,'"
vm_check ping-after vm_ping client "$VM_OVL_BROKER" 3
vm_check no-internal-errors sh -c "! grep -i 'internal error' '$W/broker.log' '$W/client.log'"
vm_check client-did-not-reconnect sh -c "! grep -q 'new attempt' '$W/client.log'"
# the client's counters (SIGUSR1, like the broker): its malformed-datagram count grew
client_counters() { kill -USR1 "$CPID" && wait_for 5 grep -q 'counters: ' "$W/client.log"; }
vm_check client-counters client_counters
grep 'counters: ' "$W/client.log" | tail -n 1
cdrops=$(grep 'counters: ' "$W/client.log" | tail -n 1 | sed -n 's/.*drop-malformed=\([0-9]*\).*/\1/p')
vm_check client-drop-counter-grew [ "${cdrops:-0}" -gt 0 ]
# a fuzzed ACK claiming a probe bigger than 1500 bytes must not raise the MTU above the path's
mtu=$(vm_link_mtu client l2tp0)
echo "client l2tp0 mtu after fuzzing: $mtu"
vm_check client-mtu-sane sh -c "[ '$mtu' -ge 1280 ] && [ '$mtu' -le 1446 ]"
lines=$(wc -l < "$W/client.log")
echo "client log: $lines lines"
vm_check client-log-quiet [ "$lines" -lt 60 ]

[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker.log" "$W/client.log"
vm_done
