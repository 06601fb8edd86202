# Helpers for the scale runs (scale-ci.sh, test/vm/bench-scale.sh; issue 7): a broker under a
# file descriptor limit, and the scale figures of a load generator result. Source after
# load-lib.sh. run-scenarios.sh runs every scenarios/*.sh, this file included: run directly
# (not sourced) it does nothing.
case "$(basename "$0")" in scale-lib.sh) exit 0 ;; esac

# scale_broker_fdlimit <nofile> <log> [key=value ...]: load_broker's config (max_concurrent=<n>
# sets [hooks] max_concurrent) with a hard and soft RLIMIT_NOFILE of <nofile> (as under
# systemd's default), broker in netns broker
scale_broker_fdlimit() {
  _nf=$1; _lg=$2; shift 2
  _cap=; _sn=$#
  while [ "$_sn" -gt 0 ]; do
    _a=$1; shift; _sn=$((_sn - 1))
    case $_a in max_concurrent=*) _cap=${_a#*=} ;; *) set -- "$@" "$_a" ;; esac
  done
  td_broker_cfg "$TD_WORK/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO "$@" || return 1
  [ -z "$_cap" ] || scale_max_concurrent "$_cap"
  ip netns exec broker sh -c "ulimit -n $_nf && exec node '$TD_BROKER_BIN' '$TD_WORK/broker.cfg'" > "$_lg" 2>&1 &
  TD_BROKER_PID=$!
  wait_for 90 grep -q 'broker started' "$_lg"
}

# scale_broker_start <log>: the broker on $TD_WORK/broker.cfg in netns broker (td_start_broker,
# given up to 90 s: Node's start in a loaded TCG guest has taken longer than its 30 s)
scale_broker_start() {
  td_start_broker broker "$TD_WORK/broker.cfg" "$1" 2>/dev/null || wait_for 90 grep -q 'broker started' "$1"
}

# scale_max_concurrent <n>: [hooks] max_concurrent in broker.cfg ([hooks] is its last section)
scale_max_concurrent() { echo "max_concurrent=$1" >> "$TD_WORK/broker.cfg"; }

# scale_vars <name>: shell assignments (sc_<key>=value) of the scale figures in <name>.out's
# result line (load_vars has the common ones); missing figures are empty.
scale_vars() {
  node -e '
    const fs = require("fs");
    const line = fs.readFileSync(process.argv[1], "utf8").split("\n").find((x) => x.startsWith("LOADGEN-RESULT "));
    const r = line ? JSON.parse(line.slice(15)) : {};
    const b = r.broker || {};
    const c = b.counters || {};
    const s = r.stop || {};
    const cpu = b.burstCpuS;
    const v = {
      timed_out: c["tunnels-timed-out"] || 0, refused_fd: c["refused-fd-budget"] || 0, setup_failed: c["refused-setup-failed"] || 0,
      emfile: c["setup-emfile"] || 0, burst_cpu: cpu ? cpu.self + cpu.children : "",
      fds_hold: b.fds && b.fds.holdEnd, fds_before: b.fds && b.fds.before,
      stop_exit: s.exitAfterS, stop_told: s.told, stop_up: s.upWhenStopped, stop_children: s.maxChildren, stop_rss: s.maxRssKiB,
      lost_before_stop: s.lostBeforeStop,
    };
    for (const [k, x] of Object.entries(v)) console.log(`sc_${k}=${x === undefined || x === null ? "" : typeof x === "number" ? Math.round(x * 1000) / 1000 : x}`);
  ' "$TD_WORK/$1.out"
}

# scale_room <log>: the tunnels the broker's fd budget has room for (its start-up line)
scale_room() { sed -n 's/.*: room for \([0-9]*\) tunnels.*/\1/p' "$1" | head -n 1; }

# scale_broker_tunnels <pid> <log>: the tunnels the broker holds now (SIGUSR1, its status line)
scale_broker_tunnels() {
  fleet_broker_counters "$1" "$2" >/dev/null 2>&1
  grep 'status: [0-9]*/[0-9]* tunnels' "$2" | tail -n 1 | sed -n 's/.*status: \([0-9]*\)\/.*/\1/p'
}

# scale_broker_empty <pid> <log>: the broker holds no tunnel
scale_broker_empty() { [ "$(scale_broker_tunnels "$1" "$2")" = 0 ]; }

# scale_consistent <pid> <log>: kernel L2TP tunnels in netns broker = the broker's tunnels
# (prints both; the kernel is read between two broker samples that must agree)
scale_consistent() {
  _b1=$(scale_broker_tunnels "$1" "$2"); _k=$(load_kernel_tunnels broker); _b2=$(scale_broker_tunnels "$1" "$2")
  echo "broker $_b1/$_b2, kernel $_k"
  [ -n "$_b1" ] && [ "$_b1" = "$_b2" ] && [ "$_k" = "$_b1" ]
}

# scale_alive <pid>: the process runs (a zombie does not)
scale_alive() { [ -r "/proc/$1/stat" ] && ! sed 's/.*) //' "/proc/$1/stat" | grep -q '^Z'; }
