# Broker SIGKILL and restart with 100 load-generator clients (bench-load row F, CI-sized; counts
# only, no timing): the killed broker's sockets take its kernel tunnels with them; the new broker
# tells every client whose keepalive reaches its listener to reconnect (ERROR 0x04), and then
# holds exactly one tunnel per client: exactly N creations, N kernel tunnels with the same ids as
# the broker's own tunnels (none stale), every client up again. Every client must have heard the
# ERROR: before the addon re-armed a socket after an ICMP error, a client whose keepalive hit the
# dead broker read nothing more and kept its dead tunnel until its 60 s liveness timeout (row F
# counted 19 kernel tunnels for 100 clients "up").
# vm-scenario-timeout: 300
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
. "$(dirname "$0")/load-lib.sh"

N=${TD_RESTART_CLIENTS:-100}
W=$TD_WORK
ulimit -n 8192
vm_check topo load_topo
fleet_do broker-start load_broker
SOCK=/run/tunneldigger-broker/broker.sock
ctl() { node "$TD_BROKER_BIN" ctl -s "$SOCK" "$@"; }
# broker_ids / kernel_ids: tunnel ids, one per line, sorted (the broker's own list: ctl tunnels)
broker_ids() { ctl tunnels --json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{for(const r of JSON.parse(s))console.log(r.id)})' | sort -n; }
kernel_ids() { ip -n broker l2tp show tunnel 2>/dev/null | sed -n 's/^Tunnel \([0-9]*\),.*/\1/p' | sort -n; }
kernel_count() { kernel_ids | grep -c .; }
# created: the new broker's tunnels-created counter (ctl status --json)
created() { ctl status --json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).counters["tunnels-created"]??0))'; }
sample() { echo "restart-count: $1: kernel tunnels $(kernel_count); $(tail -n 1 "$W/rc.err" 2>/dev/null)"; }

# the load generator holds its N tunnels 40 s after all are up, then exits (no teardown)
load_run_bg rc --clients "$N" --up-timeout 180 --duration 40 --no-teardown --uuid-prefix rc
lpid=$LOAD_PID
if ! vm_check all-up fleet_wait 180 grep -q "all $N tunnels up" "$W/rc.out"; then
  kill -TERM "$lpid"; td_dump "$W/rc.out" "$W/rc.err" "$W/broker.log"; vm_done
fi
vm_check kernel-tunnels-before [ "$(kernel_count)" = "$N" ]
kill -KILL "$TD_BROKER_PID"; wait "$TD_BROKER_PID" 2>/dev/null
sample killed
sleep 3
sample 'broker restarts'
mv "$W/broker.log" "$W/broker-killed.log"
fleet_do broker-restart load_broker
i=0
while [ $i -lt 60 ] && [ "$(kernel_count)" != "$N" ]; do sleep 1; i=$((i + 1)); done
sample "restarted +${i}s"
sleep 6 # a keepalive period: nothing more may change
broker_ids > "$W/b.ids"; kernel_ids > "$W/k.ids"
vm_check broker-holds-$N [ "$(grep -c . "$W/b.ids")" = "$N" ]
vm_check created-exactly-$N [ "$(created)" = "$N" ]
vm_check kernel-tunnels-exactly-$N [ "$(grep -c . "$W/k.ids")" = "$N" ]
vm_check no-stale-kernel-tunnel [ -z "$(comm -3 "$W/b.ids" "$W/k.ids")" ]
wait "$lpid"
eval "$(load_vars rc)"
echo "restart-count: load generator: lost $lg_lost, up at the end $lg_up_at_end, told while up $lg_told, attempts $lg_attempts; new broker: $(grep -c 'told it to reconnect' "$W/broker.log") told, $(grep -c 'stale kernel' "$W/broker.log") stale kernel objects deleted at start"
vm_check every-client-told-by-new-broker [ "lost=$lg_lost told=$lg_told" = "lost=$N told=$N" ]
vm_check all-up-at-end [ "$lg_up_at_end" = "$N" ]
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/rc.out" "$W/rc.err"
vm_done
