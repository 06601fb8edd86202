# Broker shutdown and restart in the x86 VM (a benchmark, not part of `make test`; bench-load
# rows E and F, smaller and repeatable):
#   VM_NAME=shutdown-bench [TD_BASE_ROOT=<older tree, built>] test/vm/run-scenarios.sh bench/vm-shutdown.sh
# E: 100 load-generator clients, broker with a session.down hook; SIGTERM; time to exit (kill -0
#    polled every 0.1 s), clients told (tunnels the load generator lost), down hooks run, and the phases the
#    broker logs. F: 100 clients, SIGKILL, restart after 3 s; time from the restart until the
#    kernel holds 100 tunnels again, and the kernel and broker tunnel counts 8 s later.
# With TD_BASE_ROOT, every round runs the older tree's broker and load generator right after
# ours, under the same guest load, so the two compare by ratio. TD_SHUTDOWN_ROUNDS (2).
# The exit time is taken with the shell's `wait` (load_sigterm_wait); TD_SHUTDOWN_POLL_ROW=1 adds
# an E row of ours timed the former way (a /proc poll forking every 0.1 s), to see what it cost.
# vm-scenario-timeout: 1500
VM_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$VM_ROOT/test/vm/lib.sh"
. "$VM_ROOT/test/vm/td-lib.sh"
. "$VM_ROOT/test/vm/scenarios/fleet-lib.sh"
. "$VM_ROOT/test/vm/scenarios/load-lib.sh"
W=$TD_WORK
N=${TD_SHUTDOWN_CLIENTS:-100}
ROUNDS=${TD_SHUTDOWN_ROUNDS:-2}
ulimit -n 8192
vm_check topo load_topo
cat > "$W/down.sh" <<HOOK
#!/bin/sh
echo "down \$1" >> $W/hooks.log
HOOK
chmod +x "$W/down.sh"
NEW_BIN=$TD_BROKER_BIN NEW_JS=$LOAD_JS
kernel_count() { ip -n broker l2tp show tunnel 2>/dev/null | grep -c '^Tunnel '; }
calc() { awk "BEGIN { printf \"%.1f\", $1 }"; }
# sigterm_poll_s <pid>: the exit time as measured before load_sigterm_wait (a /proc poll that
# forks sed, cut and sleep every 0.1 s), for TD_SHUTDOWN_POLL_ROW=1: what that loop cost
sigterm_poll_s() {
  _t0=$(date +%s.%N); kill -TERM "$1"; _i=0
  while [ $_i -lt 900 ]; do
    _st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
    [ -z "$_st" ] || [ "$_st" = Z ] && { awk -v a="$_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; return 0; }
    sleep 0.1; _i=$((_i + 1))
  done
}
# use <new|old|new-poll>: the broker and load generator of that tree
use() {
  if [ "$1" = old ]; then TD_BROKER_BIN=$TD_BASE_ROOT/bin/tunneldigger-broker LOAD_JS=$TD_BASE_ROOT/build/js/bench/loadgen/main.js
  else TD_BROKER_BIN=$NEW_BIN LOAD_JS=$NEW_JS; fi
}
# row_e <tree> <round>
row_e() {
  use "$1"; rm -f "$W/hooks.log"
  load_broker session.down="$W/down.sh" || { echo "bench-shutdown: $1 E$2: broker did not start"; return; }
  bpid=$TD_BROKER_PID
  load_run_bg e --clients "$N" --up-timeout 150 --duration 60 --no-teardown --uuid-prefix e
  lpid=$LOAD_PID
  if [ "$1" = new-poll ]; then
    exit_s=$(fleet_wait 160 grep -q "all $N tunnels up" "$W/e.out" && sleep 3 && sigterm_poll_s "$bpid")
  else
    load_sigterm_when_up e "$N" 160 "$bpid"; exit_s=$LOAD_EXIT_S
  fi
  TD_BROKER_PID=$bpid; td_stop_broker
  # clients told = tunnels the load generator lost (its liveness timeout is 60 s: only the
  # ERROR takes them down this fast), from its next progress line
  sleep 6
  kill -TERM "$lpid" 2>/dev/null; wait "$lpid"
  told=$(tail -n 1 "$W/e.err" | sed -n 's/.*, lost \([0-9]*\),.*/\1/p')
  echo "bench-shutdown: $1 E$2: SIGTERM with $N tunnels: exit after ${exit_s:-> 90} s; clients told ${told:-?}; down hooks run $(grep -c '^down ' "$W/hooks.log" 2>/dev/null); guest load $(cut -d' ' -f1 /proc/loadavg)"
  grep -E 'SIGTERM received|shutdown' "$W/broker.log" | sed "s/^/bench-shutdown: $1 E$2 log: /" | cut -c1-400
  cp "$W/broker.log" "$W/broker-$1-e$2.log"
}
# row_f <tree> <round>
row_f() {
  use "$1"
  load_broker || { echo "bench-shutdown: $1 F$2: broker did not start"; return; }
  load_run_bg f --clients "$N" --up-timeout 150 --duration 90 --no-teardown --uuid-prefix f
  lpid=$LOAD_PID
  back=""; kt=""; bt=""
  if fleet_wait 160 grep -q "all $N tunnels up" "$W/f.out"; then
    sleep 3
    kill -KILL "$TD_BROKER_PID"; wait "$TD_BROKER_PID" 2>/dev/null
    sleep 3
    mv "$W/broker.log" "$W/broker-$1-f$2-killed.log"
    t0=$(date +%s.%N)
    load_broker
    i=0; while [ "$(kernel_count)" != "$N" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
    [ "$(kernel_count)" = "$N" ] && back=$(calc "$(date +%s.%N) - $t0")
    sleep 8
    kt=$(kernel_count)
    bt=$(node "$TD_BROKER_BIN" ctl -s /run/tunneldigger-broker/broker.sock status --json 2>/dev/null | sed -n 's/^  "tunnels": \([0-9]*\),/\1/p')
  fi
  kill -TERM "$lpid" 2>/dev/null; wait "$lpid"
  echo "bench-shutdown: $1 F$2: SIGKILL + restart after 3 s: $N kernel tunnels again $( [ -n "$back" ] && echo "$back s after the restart" || echo 'not within 60 s'); 8 s later: kernel $kt, broker $bt; guest load $(cut -d' ' -f1 /proc/loadavg)"
  grep -E 'start-up|stale kernel' "$W/broker.log" | head -3 | sed "s/^/bench-shutdown: $1 F$2 log: /" | cut -c1-300
  td_stop_broker
}
r=1
while [ $r -le "$ROUNDS" ]; do
  row_e new $r; [ -n "$TD_BASE_ROOT" ] && row_e old $r
  [ "${TD_SHUTDOWN_POLL_ROW:-0}" = 1 ] && row_e new-poll $r
  row_f new $r; [ -n "$TD_BASE_ROOT" ] && row_f old $r
  r=$((r + 1))
done
vm_done
