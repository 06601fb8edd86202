# Helpers for the load scenarios (load-*.sh) and test/vm/bench-load.sh: the load generator
# (bench/loadgen, built to build/js/bench/loadgen/main.js) in netns client against a broker in
# netns broker. Source after lib.sh and td-lib.sh. run-scenarios.sh runs every scenarios/*.sh,
# this file included: run directly (not sourced, so $0 is this file) it does nothing.
case "$(basename "$0")" in load-lib.sh) exit 0 ;; esac

LOAD_JS=${LOAD_JS:-$TD_ROOT/build/js/bench/loadgen/main.js}
# client i binds 198.51.100.(10 + i % LOAD_SOURCES): several source addresses, as many routers
LOAD_SOURCES=${LOAD_SOURCES:-10}
# load_target: the broker and source arguments every load generator run here gives (one word
# each, for an unquoted $(load_target)); scale-lib.sh's host runs give the same
load_target() { echo "--broker $VM_BROKER_IP:8942 --source 198.51.100.10-$((9 + LOAD_SOURCES))"; }

# load_topo: vm_topo_pair plus the load generator's source addresses in netns client
load_topo() {
  vm_topo_pair || return 1
  for _i in $(seq 10 $((9 + LOAD_SOURCES))); do echo "addr add 198.51.100.$_i/24 dev ul0"; done | ip -n client -batch -
}

# load_broker [key=value ...]: broker.cfg for many tunnels (no rate limit, INFO logs), broker in
# netns broker (log $TD_WORK/broker.log, pid $TD_BROKER_PID)
load_broker() {
  td_broker_cfg "$TD_WORK/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO "$@" || return 1
  # td_start_broker waits 30 s; Node's start in a TCG guest on a loaded host has taken longer
  td_start_broker broker "$TD_WORK/broker.cfg" "$TD_WORK/broker.log" 2>/dev/null ||
    wait_for 90 grep -q 'broker started' "$TD_WORK/broker.log"
}

# load_run <name> <loadgen args...>: the load generator in netns client; stdout (report and the
# LOADGEN-RESULT json line) in $TD_WORK/<name>.out, progress in <name>.err; its exit status.
load_run() {
  _ln=$1; shift
  ip netns exec client node "$LOAD_JS" $(load_target) --progress 5 "$@" > "$TD_WORK/$_ln.out" 2> "$TD_WORK/$_ln.err"
}

# load_run_b <name> <loadgen args...>: load_run with the broker's pid and log (creations, CPU, RSS)
load_run_b() {
  _ln=$1; shift
  load_run "$_ln" --broker-pid "$TD_BROKER_PID" --broker-log "$TD_WORK/broker.log" "$@"
}

# load_vars <name>: shell assignments (lg_<key>=value) of the figures in <name>.out's result line,
# for `eval "$(load_vars run1)"`; missing figures are empty.
load_vars() {
  node -e '
    const fs = require("fs");
    const line = fs.readFileSync(process.argv[1], "utf8").split("\n").find((x) => x.startsWith("LOADGEN-RESULT "));
    const r = line ? JSON.parse(line.slice(15)) : {};
    const b = r.broker || {};
    const v = {
      found: line ? 1 : 0, all_up: r.allUpS, never_up: r.neverUp, up_at_end: r.upAtEnd, lost: r.lost,
      attempts: r.attempts, silent: r.silentGiveUps, hs_p50: r.handshakeMs && r.handshakeMs.p50,
      hs_p95: r.handshakeMs && r.handshakeMs.p95, hs_p99: r.handshakeMs && r.handshakeMs.p99,
      created: b.createdTotal, created_burst: b.createdInBurst, held: b.tunnelsAtEnd, orphans: b.orphans,
      left: b.tunnelsAfterTeardown, cpu_per: b.cpuPerCreatedMs, idle_per_min: b.holdCpuPerMinS,
      // --windows: the parts of the hold, first and last (steady state)
      idle_first: b.holdWindowsCpuPerMinS && b.holdWindowsCpuPerMinS[0],
      idle_last: b.holdWindowsCpuPerMinS && b.holdWindowsCpuPerMinS[b.holdWindowsCpuPerMinS.length - 1],
      cpu_own: b.cpuPerCreatedOwnMs, cpu_children: b.cpuPerCreatedChildrenMs,
      rss0: b.rssKiB && b.rssKiB.before, rss_burst: b.rssKiB && b.rssKiB.burst, rss_hold: b.rssKiB && b.rssKiB.holdEnd,
      told: Object.values(r.toldWhileUp || {}).reduce((a, x) => a + x, 0),
      recovery: r.recoveries && r.recoveries.length ? r.recoveries[r.recoveries.length - 1].allBackAfterS : "",
      // the load generator itself (it shares the guest with the broker)
      self_arrival_cpu: r.loadgen && r.loadgen.arrivalCpuS, self_hold_per_min: r.loadgen && r.loadgen.holdCpuPerMinS,
      self_lag_arrival: r.loadgen && r.loadgen.maxLagMs.arrival, self_lag_hold: r.loadgen && r.loadgen.maxLagMs.hold,
    };
    for (const [k, x] of Object.entries(v)) console.log(`lg_${k}=${x === undefined || x === null ? "" : typeof x === "number" ? Math.round(x * 1000) / 1000 : x}`);
  ' "$TD_WORK/$1.out"
}

# load_kernel_tunnels <ns>: number of kernel L2TP tunnels in a namespace
load_kernel_tunnels() { ip -n "$1" l2tp show tunnel 2>/dev/null | grep -c '^Tunnel '; }
# load_kernel_holds <ns> <n>: whether the namespace's kernel holds exactly n L2TP tunnels (a
# command for wait_for/fleet_wait, which re-run it: a "$(load_kernel_tunnels ...)" in their
# arguments would be counted once, before the wait)
load_kernel_holds() { [ "$(load_kernel_tunnels "$1")" = "$2" ]; }
# load_kernel_emptied <ns> <seconds>: waits up to that long for the namespace's kernel to hold
# no L2TP tunnel and says how long it took: the broker forgets a closed tunnel at once, its
# SESSION_DELETE and TUNNEL_DELETE run on its netlink thread after it (seconds for 100 in TCG)
load_kernel_emptied() {
  _ke0=$(date +%s.%N)
  wait_for "$2" load_kernel_holds "$1" 0; _kerc=$?
  echo "kernel L2TP tunnels in $1: $(load_kernel_tunnels "$1") after $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $_ke0}") s"
  return $_kerc
}

# load_run_bg <name> <loadgen args...>: load_run in the background; LOAD_PID is the load
# generator itself (ip netns exec execs node), so `kill $LOAD_PID` stops it.
load_run_bg() {
  _ln=$1; shift
  ip netns exec client node "$LOAD_JS" $(load_target) --progress 5 "$@" > "$TD_WORK/$_ln.out" 2> "$TD_WORK/$_ln.err" &
  LOAD_PID=$!
}

# bench_calibrate: CPU (ms, shell + children) of one fork+exec of /bin/true from dash, over 100
# runs: the unit of the benches' CPU figures. dash `times`: "0m0.01s 0m0.02s" (shell) and
# "0m1.20s 0m2.30s" (children); m/s stripped before summing.
bench_calibrate() {
  sh -c 'i=0; while [ $i -lt 100 ]; do /bin/true; i=$((i + 1)); done; times' | sed 's/\([0-9]*\)m\([0-9.]*\)s/\1 \2/g' |
    awk '{ for (k = 1; k + 1 <= NF; k += 2) v += $k * 60 + $(k + 1) } END { printf "%.3f", v / 100 * 1000 }'
}

# load_sigterm_wait <pid>: SIGTERM to pid; LOAD_EXIT_S = the seconds ("%.2f") until it exited,
# empty (and status 1) when it still runs after 90 s. Call it in the shell that started pid, not
# in $(...): it waits with the shell's own `wait`, so nothing forks while the process shuts down
# (the former /proc poll forked sed, cut and sleep every 0.1 s, which in a TCG guest took a good
# part of a vCPU from the shutdown it timed). A pid that is not this shell's child (`wait`: 127)
# is polled instead: /proc/<pid>/stat read by the shell, only sleep forks.
load_sigterm_wait() {
  LOAD_EXIT_S=
  _t0=$(date +%s.%N)
  kill -TERM "$1" || return 1
  wait "$1" 2>/dev/null
  if [ $? -eq 127 ]; then
    _i=0
    while :; do
      _st=
      read -r _st 2>/dev/null < "/proc/$1/stat"
      _st=${_st##*) }
      _st=${_st%% *}
      [ -z "$_st" ] || [ "$_st" = Z ] && break
      [ $_i -ge 900 ] && return 1
      sleep 0.1; _i=$((_i + 1))
    done
  fi
  LOAD_EXIT_S=$(awk -v a="$_t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
}

# load_sigterm_when_up <run> <n> <timeout_s> <pid>: once run <run> has all <n> tunnels up (its
# .out, within timeout_s) and 3 s more, load_sigterm_wait <pid> (LOAD_EXIT_S); fails when they
# never were
load_sigterm_when_up() {
  LOAD_EXIT_S=
  fleet_wait "$3" grep -q "all $2 tunnels up" "$TD_WORK/$1.out" || return 1
  sleep 3
  load_sigterm_wait "$4"
}
