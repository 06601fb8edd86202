# 20 real clients (build/x86_64/tunneldigger) at once on one broker port, with the global
# connection_rate_limit on: every client must come up through its own retries, each broker
# session joins the overlay bridge `digger` (session.up hook, like the original example
# scripts) and every client pings the broker through its tunnel. No client message may land on
# the listener (the connected SO_REUSEPORT socket must win for all 20 tunnels).
#
# Topology: netns broker: bridge ul0 198.51.100.1/24 (underlay) with one veth per client, bridge
# digger 203.0.113.1/24 (overlay); netns c10..c29: ul0 198.51.100.N/24, l2tp0 203.0.113.N/24.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

N=${TD_MANY_CLIENTS:-20}
FIRST=10
LAST=$((FIRST + N - 1))
W=$TD_WORK
# connection_rate_limit: a tunnel setup takes 0.5-1 s in the TCG guest, so 0.2 s would never
# refuse anybody there; 0.5 s does, and the clients must get through with their backoff.
RATE=${TD_MANY_RATE:-0.5}

topo() {
  fleet_topo "$FIRST" "$LAST" && ip -n broker link add digger type bridge &&
  ip -n broker addr add 203.0.113.1/24 dev digger && ip -n broker link set digger up
}
vm_check topo topo

cat > "$W/broker-hook.sh" <<EOF
#!/bin/sh
# session.up/down: tunnel_id session_id interface mtu client_ip client_port local_port uuid port
PATH=/usr/sbin:/usr/bin:/sbin:/bin
echo "\$(basename "\$0") \$*" >> $W/broker-hooks.log
case "\$(basename "\$0")" in
  up.sh) ip link set "\$3" up mtu "\$4" master digger ;;
esac
exit 0
EOF
for h in up down; do cp "$W/broker-hook.sh" "$W/$h.sh"; chmod +x "$W/$h.sh"; done
td_broker_cfg "$W/broker.cfg" port=8942 max_tunnels=32 connection_rate_limit=$RATE verbosity=INFO \
  session.up="$W/up.sh" session.down="$W/down.sh"
# burst 1 = the original minimum interval (the default burst of 1000 would admit all 20 at once)
sed -i '/^connection_rate_limit=/a connection_rate_limit_burst=1' "$W/broker.cfg"
# The clients start first and wait for the broker (as after a broker restart): once it answers,
# their PREPAREs arrive together and the global rate limit has to turn most of them away.
fleet_mark clients-start
t0=$(date +%s)
for i in $(seq "$FIRST" "$LAST"); do fleet_client_hook_text "$W/c$i-hook.sh" "$W/c$i-hooks.log" "203.0.113.$i/24"; done
chmod +x "$W"/c*-hook.sh
for i in $(seq "$FIRST" "$LAST"); do
  ip netns exec "c$i" "$TD_CLIENT_BIN" -f -u "fleet-client-$i" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 \
    -s "$W/c$i-hook.sh" > "$W/c$i.log" 2>&1 &
  echo $! > "$W/c$i.pid"
done
fleet_mark broker-start
fleet_do broker-start td_start_broker broker "$W/broker.cfg" "$W/broker.log"
BPID=$TD_BROKER_PID
# cheap to poll (no process per client): each client hook logs its session.up
hooks_up() { [ "$(cat "$W"/c*-hooks.log 2>/dev/null | grep -c '^session.up l2tp0$')" -eq "$N" ]; }
# "tunnel 1 up on l2tp0 (session 1, broker session <broker tunnel id>)": each client's last one
peer_ids() { awk '/tunnel 1 up on l2tp0/ { id[FILENAME] = $NF } END { for (f in id) print id[f] }' "$W"/c*.log | tr -d ')' | sort; }
tb=$(date +%s)
vm_check all-clients-up fleet_wait 120 hooks_up &&
  echo "all $N clients up $(( $(date +%s) - t0 )) s after the first client started, $(( $(date +%s) - tb )) s after the broker"
fleet_mark all-up

# (few processes: every `ip` costs about a second in the loaded TCG guest)
tunnels=$(ip -n broker l2tp show tunnel)
sessions=$(ip -n broker l2tp show session)
vm_check broker-kernel-tunnels-$N [ "$(echo "$tunnels" | grep -c '^Tunnel ')" -eq "$N" ]
vm_check broker-kernel-sessions-$N [ "$(echo "$sessions" | grep -c '^Session ')" -eq "$N" ]
vm_check distinct-broker-tunnel-ids [ "$(echo "$tunnels" | sed -n 's/^Tunnel \([0-9]*\),.*/\1/p' | sort -u | wc -l)" -eq "$N" ]
ids=$(peer_ids | tr '\n' ' ')
vm_check clients-peer-ids-distinct [ "$(peer_ids | uniq | wc -l)" -eq "$N" ]
vm_check client-and-broker-ids-agree [ "$ids" = "$(echo "$tunnels" | sed -n 's/^Tunnel \([0-9]*\),.*/\1/p' | sort | tr '\n' ' ')" ]
vm_check sessions-in-overlay-bridge [ "$(ip -n broker -o link show master digger | grep -c ' l2tp')" -eq "$N" ]

fleet_mark kernel-checks-done
# every client pings the broker's overlay address, all at once
for i in $(seq "$FIRST" "$LAST"); do
  ( vm_ping "c$i" 203.0.113.1 3 > "$W/c$i-ping.out" 2>&1; echo $? > "$W/c$i-ping.rc" ) &
done
fleet_wait 30 sh -c "[ \$(ls $W/*-ping.rc | wc -l) -eq $N ]"
bad=""
for i in $(seq "$FIRST" "$LAST"); do [ "$(cat "$W/c$i-ping.rc" 2>/dev/null)" = 0 ] || bad="$bad c$i"; done
if [ -z "$bad" ]; then vm_pass all-clients-ping-broker; else vm_fail all-clients-ping-broker "no reply for:$bad"; fi
# and the broker reaches every client
for i in $(seq "$FIRST" "$LAST"); do
  ( vm_ping broker "203.0.113.$i" 2 > /dev/null 2>&1; echo $? > "$W/b$i-ping.rc" ) &
done
fleet_wait 30 sh -c "[ \$(ls $W/b*-ping.rc | wc -l) -eq $N ]"
bad=""
for i in $(seq "$FIRST" "$LAST"); do [ "$(cat "$W/b$i-ping.rc" 2>/dev/null)" = 0 ] || bad="$bad 203.0.113.$i"; done
if [ -z "$bad" ]; then vm_pass broker-pings-all-clients; else vm_fail broker-pings-all-clients "no reply from:$bad"; fi

fleet_mark pings-done
vm_check counters-logged fleet_broker_counters "$BPID" "$W/broker.log"
counters=$(grep 'counters: ' "$W/broker.log" | tail -n 1)
echo "broker $counters"
vm_check no-misdelivery-warning sh -c "! grep -q 'arrive on the listening socket' '$W/broker.log'"
vm_check no-listener-tunnel-messages sh -c "! echo '$counters' | grep -q 'listener-tunnel-message='"
# a new tunnel socket catching another client's handshake between bind() and connect() serves it
echo "handshakes served from a tunnel socket: $(fleet_counter "$W/broker.log" handshake-on-tunnel-socket)"
vm_check no-wrong-source-drops [ "$(fleet_counter "$W/broker.log" drop-wrong-source)" -eq 0 ]
vm_check broker-created-$N sh -c "echo '$counters' | grep -q ' tunnels-created=$N\\b'"

# reconnect behaviour under the rate limit: refusals happened, each one reached its client,
# which retried with backoff (no storm)
refused=$(fleet_counter "$W/broker.log" refused-rate-limit)
told=$(cat "$W"/c*.log | grep -c 'refused the tunnel')
attempts=$(cat "$W"/c*.log | grep -c 'new attempt')
maxatt=0
for i in $(seq "$FIRST" "$LAST"); do
  a=$(grep -c 'new attempt' "$W/c$i.log"); [ "$a" -gt "$maxatt" ] && maxatt=$a
done
echo "rate limit refusals: $refused (clients told: $told); client retries: $attempts in total, at most $maxatt for one client"
vm_check rate-limit-refused-some [ "$refused" -gt 0 ]
# (a client that gave up waiting has closed its socket and misses the ERROR)
vm_check refusals-reached-clients sh -c "[ $told -ge 1 ] && [ $told -le $refused ]"
vm_check no-retry-storm [ "$maxatt" -le 8 ]
fleet_mark checks-done
vm_check clients-running sh -c "for f in $W/c*.pid; do kill -0 \$(cat \$f) || exit 1; done"
vm_check no-client-errors sh -c "! grep -h 'error:' $W/c*.log | grep -v 'refused the tunnel'"

[ "$VMTEST_FAILS" -eq 0 ] || { td_dump "$W/broker.log" "$W/c$FIRST.log" "$W/c$LAST.log"; tail -n 40 "$W/broker-hooks.log"; }
vm_done
