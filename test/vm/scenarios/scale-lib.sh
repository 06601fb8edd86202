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

# --- the load generator on the host (make bench-scale-host: test/vm/bench-scale-host.sh) ---
# The guest's eth0 is a tap device whose other end is in a network namespace of the host's, where
# the load generator runs at native speed: the guest's two TCG vCPUs are left to the broker and
# its kernel (in the guest, 10,000 simulated clients cost the load generator more than the
# broker: docs/scaling.md).
SCALE_AGENT_PORT=9100

# scale_host_topo: netns broker with the guest's eth0 renamed ul0, $VM_BROKER_IP/24 (as
# vm_topo_pair leaves it; the broker config binds ul0); the host's tap holds $VM_CLIENT_IP and
# the load generator's sources 198.51.100.10-(9 + LOAD_SOURCES)
scale_host_topo() {
  ip link show eth0 >/dev/null 2>&1 || { echo "scale_host_topo: no eth0 (a VM linked to the host's tap: make bench-scale-host)"; return 1; }
  vm_topo_clean
  _vm_ns broker && ip link set eth0 netns broker && ip -n broker link set eth0 name ul0 &&
    ip -n broker addr add "$VM_BROKER_IP/24" dev ul0 && ip -n broker link set ul0 up
}

# scale_host_run <name> <loadgen args...>: load_run_b's run, by the host: a broker-agent for
# $TD_BROKER_PID in netns broker, the arguments to /run/vmout/<name>.args (one per line) for
# bench-scale-host.sh, which runs the load generator and writes <name>.out, .err and .rc there;
# they are copied to $TD_WORK, where load_run_b leaves them. Its exit status.
scale_host_run() {
  _hn=$1; shift
  ip netns exec broker node build/js/bench/loadgen/broker-agent.js --listen "$VM_BROKER_IP:$SCALE_AGENT_PORT" \
    --broker-pid "$TD_BROKER_PID" --broker-log "$TD_WORK/broker.log" --max-s 7200 > "$TD_WORK/$_hn.agent" 2>&1 &
  _hap=$!
  if ! wait_for 90 grep -q 'serving broker pid' "$TD_WORK/$_hn.agent"; then
    cat "$TD_WORK/$_hn.agent"; kill "$_hap" 2>/dev/null; return 1
  fi
  rm -f "/run/vmout/$_hn.rc" "/run/vmout/$_hn.out" "/run/vmout/$_hn.err"
  printf '%s\n' $(load_target) --progress 5 \
    --broker-agent "http://$VM_BROKER_IP:$SCALE_AGENT_PORT" "$@" > "/run/vmout/$_hn.args.tmp" &&
    mv "/run/vmout/$_hn.args.tmp" "/run/vmout/$_hn.args"
  # the load generator bounds itself; this only guards against a host side that never answers
  fleet_wait "${TD_SCALE_HOST_WAIT:-7200}" test -e "/run/vmout/$_hn.rc"
  _hrc=$(cat "/run/vmout/$_hn.rc" 2>/dev/null || echo 1)
  cp "/run/vmout/$_hn.out" "/run/vmout/$_hn.err" "$TD_WORK/" 2>/dev/null
  kill "$_hap" 2>/dev/null; wait "$_hap" 2>/dev/null
  return "$_hrc"
}
