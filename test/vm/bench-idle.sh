# Idle cost of brokers side by side in one x86 VM boot: each broker of TD_IDLE_BINS
# ("name=path name=path ...", default "this=bin/tunneldigger-broker"; "name=K=V,K2=V2@path" runs
# path with those environment variables; NODE_FLAGS=--a+--b among them are node's own flags) in turn holds 100 tunnels of
# the load generator (no hooks, INFO); after 30 s of settling its CPU (utime+stime, /proc) over
# TD_BENCH_IDLE_S (60) s (TD_IDLE_WINDOWS of them, one after the other), then (TD_IDLE_TRACE=1, default) `strace -c -f` for 20 s: syscalls and
# epoll_wait returns (= wake-ups) per minute, a 5 s `strace -tt` timeline (timeline-<name>-<round>.txt), and `perf record -a` (cpu-clock) for 20 s when perf
# works in the guest: where the guest's CPU went (kernel/user, by symbol). Rounds: TD_IDLE_ROUNDS
# (1): the brokers alternate, round after round, so a drift of the host load hits all of them.
#   VM_NAME=broker-idle-x TD_IDLE_BINS="base=build/base/bin/tunneldigger-broker this=bin/tunneldigger-broker" \
#     test/vm/run-vm.sh test/vm/bench-idle.sh
# Point TD_IDLE_BINS (and TD_LOAD_JS) at copies of the builds (e.g. build/base/: bin/ and
# lib/tunneldigger-broker/{js,node}/, the installed layout) if the tree is rebuilt meanwhile.
# The floor (docs/performance.md "Broker idle"), as entries of TD_IDLE_BINS: "name=@floor" and
# "name=@floor-grid": TD_IDLE_FLOOR_BROKER (default bin/tunneldigger-broker) brings the 100
# tunnels up, is killed (SIGKILL), and build/bench/idle-floor (bench/idle-floor.c; compiled here
# when missing) takes over their sockets: the same keepalives and PMTU ACKs with no other work
# (@floor-grid: keepalives on a 1 s grid, one sendmmsg per slot); "name=@node-idle": a Node
# process with one 250 ms timer and nothing else, no tunnels (V8's fixed cost).
# Output: one `bench-idle: <name> round <r>: ...` line per run, /run/vmout/bench-idle/ (= build/vm/out/<VM_NAME>/).
# vm-scenario-timeout: 1800
VMTEST_SCENARIO=bench-idle
# TD_LOAD_JS: the load generator to use (a copy, so that rebuilding the tree during a run changes nothing)
LOAD_JS=${TD_LOAD_JS:-}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/td-lib.sh"
. "$(dirname "$0")/scenarios/fleet-lib.sh"
. "$(dirname "$0")/scenarios/load-lib.sh"
ulimit -n 65536
W=$TD_WORK
IDLE=${TD_BENCH_IDLE_S:-60}
BINS=${TD_IDLE_BINS:-this=bin/tunneldigger-broker}
ROUNDS=${TD_IDLE_ROUNDS:-1}
# TD_IDLE_LG_ARGS: more load generator options, e.g. "--rate 20 --spread": the clients' keepalives
# reach the broker one by one (a real fleet) instead of in the bursts of one shared tick
LG_ARGS=${TD_IDLE_LG_ARGS:-}
TRACE=${TD_IDLE_TRACE:-1}
# TD_IDLE_WINDOWS: consecutive measuring windows of TD_BENCH_IDLE_S each (1): how the idle minute
# changes while V8's compiler warms up and the clients' PMTU rounds space out
WINDOWS=${TD_IDLE_WINDOWS:-1}
FLOOR_BROKER=${TD_IDLE_FLOOR_BROKER:-bin/tunneldigger-broker}
FLOOR_BIN=$TD_ROOT/build/bench/idle-floor
case " $BINS" in *=@floor*)
  [ -x "$FLOOR_BIN" ] || { FLOOR_BIN=$W/idle-floor; gcc -std=gnu11 -O2 -o "$FLOOR_BIN" "$TD_ROOT/bench/idle-floor.c"; } ;;
esac
cpu_ticks() { awk '{ s = substr($0, index($0, ") ") + 2); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat" 2>/dev/null; }
# cpu_split PID: "user system main-thread" ticks (main thread: the task whose tid is the pid, where
# the event loop and JavaScript run; the rest is V8's and libuv's worker threads)
cpu_split() {
  awk '{ s = substr($0, index($0, ") ") + 2); split(s, f, " "); printf "%d %d ", f[12], f[13] }' "/proc/$1/stat" 2>/dev/null
  awk '{ s = substr($0, index($0, ") ") + 2); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/task/$1/stat" 2>/dev/null
}
# split_line "u0 s0 m0" "u1 s1 m1" SECONDS: user / system / main thread, s per minute
split_line() {
  echo "$1 $2 $3" | awk '{ d = $7 * 100 / 60; printf "user %.3f s, system %.3f s, main thread %.3f s, other threads %.3f s", ($4 - $1) / d, ($5 - $2) / d, ($6 - $3) / d, ($4 + $5 - $6 - $1 - $2 + $3) / d }'
}
echo "bench-idle: machine load (host) ${VM_HOST_LOAD:-unknown}; guest $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) vCPUs"
vm_check topo load_topo
cal=$(bench_calibrate)
echo "bench-idle: calibration: one fork+exec of /bin/true = $cal ms CPU"
perf_ok=0
if [ "$TRACE" = 1 ] && command -v perf > /dev/null && perf record -q -a -e cpu-clock -o "$W/perf-probe.data" -- sleep 0.2 > /dev/null 2>&1; then perf_ok=1; fi
r=1
while [ "$r" -le "$ROUNDS" ]; do
  for nb in $BINS; do
    name=${nb%%=*}; bin=${nb#*=}; envs=
    case "$bin" in @*) ;; *@*) envs=$(echo "${bin%%@*}" | tr ',' ' '); bin=${bin#*@} ;; esac
    # NODE_FLAGS=--a+--b among the variables: flags for node itself (V8 flags such as
    # --single-threaded are refused in NODE_OPTIONS)
    nflags=
    for e in $envs; do case "$e" in NODE_FLAGS=*) nflags=$(echo "${e#NODE_FLAGS=}" | tr '+' ' ') ;; esac; done
    if [ "$bin" = @node-idle ]; then
      ip netns exec broker node -e 'setInterval(() => {}, 250)' &
      TD_BROKER_PID=$!
      sleep 10
      c0=$(cpu_ticks "$TD_BROKER_PID"); t0=$(date +%s.%N)
      sleep "$IDLE"
      c1=$(cpu_ticks "$TD_BROKER_PID"); t1=$(date +%s.%N)
      per=$(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", c / 100 / (b - a) * 60 }')
      echo "bench-idle: $name round $r: idle node, one 250 ms timer, no tunnels: $per s CPU per minute (guest load $(cut -d' ' -f1-3 /proc/loadavg))"
      vm_pass "idle-$name-$r"
      kill -TERM "$TD_BROKER_PID"; wait "$TD_BROKER_PID" 2> /dev/null; TD_BROKER_PID=
      continue
    fi
    floor=
    case "$bin" in @floor) floor=" " ;; @floor-grid) floor=--grid ;; esac
    what=broker
    [ -n "$floor" ] && { bin=$FLOOR_BROKER; what="floor (idle-floor$floor)"; }
    td_broker_cfg "$W/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO
    log=$W/broker-$name-$r.log
    # shellcheck disable=SC2086
    ip netns exec broker env $envs node $nflags "$bin" "$W/broker.cfg" > "$log" 2>&1 &
    TD_BROKER_PID=$!
    if ! wait_for 90 grep -q 'broker started' "$log"; then vm_fail "start-$name-$r" "broker did not start (see $log)"; continue; fi
    out=$W/lg-$name-$r
    hold=$((30 + IDLE * WINDOWS + 20 * TRACE * 2 + 10))
    # shellcheck disable=SC2086
    load_run_bg "lg-$name-$r" --clients 100 --duration "$hold" --up-timeout 120 --uuid-prefix "$name$r" $LG_ARGS
    lpid=$LOAD_PID
    if fleet_wait 150 grep -q 'all 100 tunnels up' "$out.out"; then
      if [ -n "$floor" ]; then
        # the tunnel sockets (connected: ESTAB) of the broker: "local_ip port peer_ip port"
        ip netns exec broker ss -Huan | awk '$1 == "ESTAB" { l = $4; p = $5; gsub(/[][]/, "", l); gsub(/[][]/, "", p)
          i = match(l, /:[0-9]+$/); j = match(p, /:[0-9]+$/)
          print substr(l, 1, i - 1), substr(l, i + 1), substr(p, 1, j - 1), substr(p, j + 1) }' > "$W/tunnels-$name-$r.txt"
        kill -KILL "$TD_BROKER_PID"; wait "$TD_BROKER_PID" 2> /dev/null
        # shellcheck disable=SC2086
        ip netns exec broker "$FLOOR_BIN" $floor < "$W/tunnels-$name-$r.txt" 2> "$W/floor-$name-$r.log" &
        TD_BROKER_PID=$!
        echo "bench-idle: $name round $r: idle-floor $floor took over $(wc -l < "$W/tunnels-$name-$r.txt") tunnel sockets"
      fi
      sleep 30
      w=1; since=30
      while [ "$w" -le "$WINDOWS" ]; do
        c0=$(cpu_ticks "$TD_BROKER_PID"); s0=$(cpu_split "$TD_BROKER_PID"); t0=$(date +%s.%N)
        sleep "$IDLE"
        c1=$(cpu_ticks "$TD_BROKER_PID"); s1=$(cpu_split "$TD_BROKER_PID"); t1=$(date +%s.%N)
        per=$(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", c / 100 / (b - a) * 60 }')
        units=$(awk -v p="$per" -v u="$cal" 'BEGIN { printf "%.1f", p * 1000 / u }')
        at=; [ "$WINDOWS" -gt 1 ] && at=" (window $w: $since-$((since + IDLE)) s after all up)"
        echo "bench-idle: $name round $r: idle $what, 100 tunnels: $per s CPU per minute = $units fork+exec per minute$at (guest load $(cut -d' ' -f1-3 /proc/loadavg))"
        echo "bench-idle: $name round $r: per minute$at: $(split_line "$s0" "$s1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
        w=$((w + 1)); since=$((since + IDLE))
      done
      vm_pass "idle-$name-$r"
      if [ "$TRACE" = 1 ]; then
        timeout -s INT 20 strace -c -f -qq -p "$TD_BROKER_PID" -o "$W/strace-$name-$r.txt" > /dev/null 2>&1
        echo "bench-idle: $name round $r: syscalls in 20 s (strace -c -f; x3 = per minute):"
        sed -n '1,/^----.*total/p' "$W/strace-$name-$r.txt" | head -n 20
        grep total "$W/strace-$name-$r.txt"
        # a timeline of 5 s (strace -tt): which wake-up comes from what (timers, reads, sends)
        timeout -s INT 5 strace -f -tt -qq -p "$TD_BROKER_PID" -o "$W/timeline-$name-$r.txt" > /dev/null 2>&1
        echo "bench-idle: $name round $r: 5 s timeline of syscalls in $W/timeline-$name-$r.txt ($(wc -l < "$W/timeline-$name-$r.txt") lines)"
        if [ "$perf_ok" = 1 ]; then
          perf record -q -a -e cpu-clock -F 499 -o "$W/perf-$name-$r.data" -- sleep 20 > /dev/null 2>&1
          echo "bench-idle: $name round $r: perf, whole guest, 20 s, by process and dso:"
          perf report -q -i "$W/perf-$name-$r.data" --sort pid,dso --stdio 2> /dev/null | grep -v '^$' | head -n 12
          echo "bench-idle: $name round $r: perf, the broker (pid $TD_BROKER_PID), top symbols:"
          perf report -q -i "$W/perf-$name-$r.data" --pid "$TD_BROKER_PID" --sort dso,sym --stdio 2> /dev/null | grep -v '^$' | head -n 40
        fi
      fi
    else
      vm_fail "idle-$name-$r" "not all 100 tunnels up (see $out.out)"
    fi
    kill -TERM "$lpid" 2> /dev/null; wait "$lpid" 2> /dev/null
    td_stop_broker
    if [ -n "$floor" ]; then sed 's/^/bench-idle: '"$name round $r"': /' "$W/floor-$name-$r.log"; fi
  done
  r=$((r + 1))
done
vm_done
