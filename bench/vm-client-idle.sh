# Client idle cost and start-up in the x86 VM (a benchmark, not part of `make test`):
#   VM_NAME=client-idle test/vm/run-scenarios.sh bench/vm-client-idle.sh
# vm-scenario-timeout: 1500
# Optional TD_BASE_BIN=<path under the repository> runs as many clients of a second (older)
# build next to ours, under the same guest load, so the two can be compared by ratio.
# TD_IDLE_N clients of each build (default 3, namespaces c10.. and c20..) against one broker;
# CPU = utime+stime from /proc/<pid>/stat (10 ms ticks), summed over the N clients (so that a
# window holds N times the ticks) and given per client and minute, in two windows: "early",
# 20-125 s after setup (the PMTU rounds at 30 and 60 s fall into it), and "steady", 250-475 s
# (keepalives only, as for the rest of the tunnel's life but one round per 600 s; the rounds
# are at 15, 30, 60, 120, 240 and 480 s, each over within 5 s). Between them, 130-190 s: every syscall of the first
# client of each build (strace -c -f over 60 s, so per minute; the reference is the protocol's
# 12 keepalives sent and 12 received a minute) and poll() returns = wake-ups. Start-up: exec to
# the first USAGE request (strace -tt, first 18-byte send), in ms of guest wall time.
# TD_IDLE_STEADY=0 skips the steady window.
VM_ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$VM_ROOT/test/vm/lib.sh"
. "$VM_ROOT/test/vm/td-lib.sh"
. "$VM_ROOT/test/vm/scenarios/fleet-lib.sh"
W=$TD_WORK
N=${TD_IDLE_N:-3}
NEW=$TD_CLIENT_BIN
BASE=${TD_BASE_BIN:+$VM_ROOT/$TD_BASE_BIN}
NEWS=$(seq 10 $((9 + N)))
BASES=$([ -n "$BASE" ] && seq 20 $((19 + N)))

vm_check topo fleet_topo 10 31
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
# user and system ticks of the clients <i>...: "user sys"
ticks() { for _i in "$@"; do cat "/proc/$(cat "$W/c$_i.pid")/stat"; done | awk '{ u += $14; s += $15 } END { print u + 0, s + 0 }'; }
for i in $NEWS; do start "$i" "$NEW"; done
for i in $BASES; do start "$i" "$BASE"; done
up() { for _i in "$@"; do grep -q '^session.up l2tp0$' "$W/c$_i-hooks.log" 2>/dev/null || return 1; done; }
vm_check new-clients-up fleet_wait 180 up $NEWS
[ -n "$BASE" ] && vm_check base-clients-up fleet_wait 180 up $BASES
t_up=$(date +%s)
at_s() { _w=$(( t_up + $1 - $(date +%s) )); [ "$_w" -gt 0 ] && sleep "$_w"; }
# figure <window> <name> <seconds> <ticks before> <ticks after>
figure() {
  echo "$4 $5" | awk -v w="$1" -v b="$2" -v s="$3" -v n="$N" '{ u = $3 - $1; y = $4 - $2
    printf "FIGURE client-cpu-per-minute-%s %s %.4f s (%d ticks = %d user + %d sys, %d clients, %d s)\n", w, b, (u + y) / 100 * 60 / s / n, u + y, u, y, n, s }'
}
# window <name> <from> <to> (s after setup): CPU of each build's clients
window() {
  at_s "$2"
  _a=$(ticks $NEWS); [ -n "$BASE" ] && _ab=$(ticks $BASES)
  fleet_mark "$1-start"
  at_s "$3"
  fleet_mark "$1-end"
  figure "$1" new $(($3 - $2)) "$_a" "$(ticks $NEWS)"
  [ -n "$BASE" ] && figure "$1" base $(($3 - $2)) "$_ab" "$(ticks $BASES)"
}
window early 20 125
# syscalls per minute, both builds at once: "FIGURE client-syscalls-per-minute <build> <name> <n>"
syscalls() {
  timeout -s INT 60 strace -qq -c -f -p "$(cat "$W/c$1.pid")" -o "$W/$2.strace" 2>/dev/null
  awk -v b="$2" '$1 ~ /^[0-9.]+$/ && $NF != "total" && NF >= 5 { printf "FIGURE client-syscalls-per-minute %s %s %d\n", b, $NF, $4 }' "$W/$2.strace"
}
at_s 130
syscalls 10 new > "$W/sys-new" &
_sn=$!
[ -n "$BASE" ] && { syscalls 20 base > "$W/sys-base" & _sb=$!; }
wait $_sn ${_sb:-}
cat "$W/sys-new"; [ -n "$BASE" ] && cat "$W/sys-base"
echo "FIGURE client-syscalls-per-minute reference sendto+recv 24 (12 keepalives sent, 12 received)"
polls=$(awk '$4 ~ /^p?poll$/ { n += $5 } END { print n + 0 }' "$W/sys-new")
vm_check new-client-wakes-at-most-20-times-a-minute [ "$polls" -le 20 ]
[ "${TD_IDLE_STEADY:-1}" = 1 ] && window steady 250 475

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
for r in 1 2 3; do startup 30 "$NEW" "$r" >> "$W/startup-new"; [ -n "$BASE" ] && startup 31 "$BASE" "$r" >> "$W/startup-base"; done
echo "FIGURE client-startup-ms new $(sort -n "$W/startup-new" | tr '\n' ' ')"
[ -n "$BASE" ] && echo "FIGURE client-startup-ms base $(sort -n "$W/startup-base" | tr '\n' ' ')"
vm_done
