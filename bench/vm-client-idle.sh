# Client idle cost and start-up in the x86 VM (a benchmark, not part of `make test`):
#   VM_NAME=client-idle test/vm/run-scenarios.sh bench/vm-client-idle.sh
# Optional TD_BASE_BIN=<path under the repository> runs a second (older) client next to ours,
# under the same guest load, so the two can be compared by ratio.
# Per client: CPU (utime+stime from /proc/<pid>/stat, 10 ms ticks) with the tunnel up, scaled to
# one minute, in two windows of TD_IDLE_S seconds (default 120): "early" from 20 s after setup
# (PMTU rounds at 30, 60 and 120 s fall into it) and "steady" from 250 s (no round until 480 s:
# keepalives only, as for the rest of the tunnel's life but one round per 600 s);
# poll() calls per minute (strace -c over 30 s in the steady phase: the wake-ups, independent
# of the guest's speed); start-up: exec to the first USAGE request (strace -tt, first 18-byte
# send), in ms of guest wall time. TD_IDLE_STEADY=0 skips the steady window.
VM_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$VM_ROOT/test/vm/lib.sh"
. "$VM_ROOT/test/vm/td-lib.sh"
. "$VM_ROOT/test/vm/scenarios/fleet-lib.sh"
W=$TD_WORK
IDLE_S=${TD_IDLE_S:-120}
NEW=$TD_CLIENT_BIN
BASE=${TD_BASE_BIN:+$VM_ROOT/$TD_BASE_BIN}

vm_check topo fleet_topo 10 13
td_broker_cfg "$W/broker.cfg" port=8942 verbosity=INFO
# not td_start_broker: under a loaded host the TCG guest may need more than its 30 s
ip netns exec broker node "$TD_BROKER_BIN" "$W/broker.cfg" > "$W/broker.log" 2>&1 &
vm_check broker-start fleet_wait 180 grep -q 'broker started' "$W/broker.log" || vm_done

# start <i> <binary>: client in netns c<i>, hook log c<i>-hooks.log, pid in c<i>.pid
start() {
  fleet_client_hook "$W/c$1-hook.sh" "$W/c$1-hooks.log" "203.0.113.$1/24"
  ip netns exec "c$1" "$2" -f -u "idle-$1" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$W/c$1-hook.sh" > "$W/c$1.log" 2>&1 &
  echo $! > "$W/c$1.pid"
}
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# utime and stime apart (user space: JS and the engine; system: the syscalls under TCG)
split_ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
start 10 "$NEW"
[ -n "$BASE" ] && start 11 "$BASE"
up() { grep -q '^session.up l2tp0$' "$W/c$1-hooks.log" 2>/dev/null; }
vm_check new-client-up fleet_wait 120 up 10
[ -n "$BASE" ] && vm_check base-client-up fleet_wait 120 up 11
per_min() { awk -v t="$1" -v s="$IDLE_S" 'BEGIN { printf "%.3f", t / 100 * 60 / s }'; }
t_up=$(date +%s)
# window <name> <start s after setup>: CPU of each client over IDLE_S seconds
window() {
  _w=$(( t_up + $2 - $(date +%s) )); [ "$_w" -gt 0 ] && sleep "$_w"
  _p10=$(cat "$W/c10.pid"); _a10=$(ticks "$_p10"); _s10=$(split_ticks "$_p10")
  [ -n "$BASE" ] && { _p11=$(cat "$W/c11.pid"); _a11=$(ticks "$_p11"); _s11=$(split_ticks "$_p11"); }
  fleet_mark "$1-start"
  sleep "$IDLE_S"
  fleet_mark "$1-end"
  _b10=$(ticks "$_p10")
  echo "FIGURE client-cpu-per-minute-$1 new $(per_min $((_b10 - _a10))) s ($((_b10 - _a10)) ticks in $IDLE_S s; user/sys $(echo "$_s10 $(split_ticks "$_p10")" | awk '{ print $3 - $1 "/" $4 - $2 }'))"
  if [ -n "$BASE" ]; then
    _b11=$(ticks "$_p11")
    echo "FIGURE client-cpu-per-minute-$1 base $(per_min $((_b11 - _a11))) s ($((_b11 - _a11)) ticks in $IDLE_S s; user/sys $(echo "$_s11 $(split_ticks "$_p11")" | awk '{ print $3 - $1 "/" $4 - $2 }'))"
  fi
}
window early 20
[ "${TD_IDLE_STEADY:-1}" = 1 ] && window steady 250
p10=$(cat "$W/c10.pid"); [ -n "$BASE" ] && p11=$(cat "$W/c11.pid")
# wake-ups: poll() calls in 30 s, both at once
polls() { timeout -s INT 30 strace -qq -c -e trace=poll,ppoll -p "$1" -o "$W/$2.strace" 2>/dev/null; awk '$NF ~ /^p?poll$/ { n = $4 * 2 } END { print n + 0 }' "$W/$2.strace"; }
polls "$p10" new > "$W/polls-new" &
[ -n "$BASE" ] && polls "$p11" base > "$W/polls-base" &
sleep 32
echo "FIGURE client-polls-per-minute new $(cat "$W/polls-new" 2>/dev/null)"
[ -n "$BASE" ] && echo "FIGURE client-polls-per-minute base $(cat "$W/polls-base" 2>/dev/null)"
vm_check new-client-wakes-at-most-40-times-a-minute [ "$(cat "$W/polls-new" 2>/dev/null || echo 999)" -le 40 ]

# start-up: exec -> first USAGE request (18-byte send), 3 runs each, median
startup() { # <i> <binary> <run>
  rm -f "$W/st$1-$3"
  ip netns exec "c$1" strace -f -tt -e trace=execve,sendto,sendmsg -o "$W/st$1-$3" "$2" -u "st-$1" -b "$VM_BROKER_IP:8942" -i "l2tp$3" -t $((10 + $3)) > /dev/null 2>&1 &
  _sp=$!
  fleet_wait 40 grep -q ', 18, ' "$W/st$1-$3"
  # end the traced client (strace's child), strace then exits by itself
  for _cp in $(pgrep -P "$_sp"); do kill -TERM "$_cp"; done
  wait "$_sp" 2>/dev/null
  awk '/execve\(/ && !e { split($2, t, ":"); e = t[1] * 3600 + t[2] * 60 + t[3] }
       /, 18, / && !s { split($2, t, ":"); s = t[1] * 3600 + t[2] * 60 + t[3] }
       END { if (e && s) printf "%d\n", (s - e) * 1000 }' "$W/st$1-$3"
}
for r in 1 2 3; do startup 12 "$NEW" "$r" >> "$W/startup-new"; [ -n "$BASE" ] && startup 13 "$BASE" "$r" >> "$W/startup-base"; done
echo "FIGURE client-startup-ms new $(sort -n "$W/startup-new" | tr '\n' ' ')"
[ -n "$BASE" ] && echo "FIGURE client-startup-ms base $(sort -n "$W/startup-base" | tr '\n' ' ')"
vm_done
