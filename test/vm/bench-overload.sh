# `make bench-overload` (docs/scaling.md "Overload"; run by test/vm/run-vm.sh, not in make test):
# TD_OV_N (1,000) control-only clients arriving at TD_OV_RATE/s (200; 0: all at once), our
# client's mode or the original's (TD_OV_ORIGINAL=1), up-timeout TD_OV_UP_TIMEOUT (150 s), then
# 5 s held; prints the load generator's result and the broker's counters (table.md). Never fails
# on timing.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/td-lib.sh"
. "$(dirname "$0")/scenarios/fleet-lib.sh"
. "$(dirname "$0")/scenarios/load-lib.sh"
. "$(dirname "$0")/scenarios/scale-lib.sh"
N=${TD_OV_N:-1000}
RATE=${TD_OV_RATE:-200}
UPT=${TD_OV_UP_TIMEOUT:-180}
W=$TD_WORK
ulimit -n 65536
vm_check topo load_topo
fleet_do broker-start load_broker max_tunnels=$((N + 100))
orig=; [ "${TD_OV_ORIGINAL:-0}" = 1 ] && orig=--original
fleet_mark start
load_run_bg ov --clients "$N" --rate "$RATE" $orig --up-timeout "$UPT" --duration 5 --broker-pid "$TD_BROKER_PID" --broker-log "$W/broker.log" --uuid-prefix ov
wait "$LOAD_PID"; rc=$?
fleet_mark end
eval "$(load_vars ov)"; eval "$(scale_vars ov)"
echo "overload: N=$N rate=$RATE rc=$rc all up after ${lg_all_up:-never} s, up at end $lg_up_at_end, never up $lg_never_up, attempts $lg_attempts, created $lg_created, orphans $lg_orphans, handshake p50/p95 $lg_hs_p50/$lg_hs_p95 ms, cpu burst $sc_burst_cpu"
fleet_broker_counters "$TD_BROKER_PID" "$W/broker.log"
{
  echo "Overload bench: $N clients at ${RATE}/s ${orig:-(our client)}, host load ${VM_HOST_LOAD:-?}"
  echo "result: all up after ${lg_all_up:-never} s, up at end $lg_up_at_end, created $lg_created, orphans $lg_orphans, attempts $lg_attempts"
  echo "broker $(grep 'counters: ' "$W/broker.log" | tail -n 1 | sed 's/.* counters: /counters: /')"
} | tee /run/vmout/table.md
grep -v ' INFO ' "$W/broker.log" | tail -n 20
tail -n 3 "$W/ov.err"
vm_check ran [ -n "$lg_found" ]
td_stop_broker
vm_done
