# The broker's own CPU per created tunnel with session.up/session.down hooks, in one x86 VM boot
# (bench-load row A; docs/performance.md "Broker CPU per tunnel with hooks"): each broker of
# TD_HOOKS_BINS ("name=path ...", default "this=bin/tunneldigger-broker") takes a burst of 100
# load generator clients at once in each mode of TD_HOOKS_MODES (default "nohooks hooks
# hooks-prof": no hooks / up+down hooks / up+down hooks under node --cpu-prof); the modes and
# brokers alternate, round after round (TD_HOOKS_ROUNDS, 2), so a drift of the host load hits all.
# Figures per run: time to all up, creations, broker utime+stime and reaped children
# (cutime+cstime) from the first client's start to all up + 2 s, per created tunnel and in
# calibration units (one fork+exec of /bin/true from dash, this boot).
# TD_HOOKS_TRACE=1 (default) adds, per broker, one hooked burst under `strace -f -ff`
# (syscalls of the broker's threads and of its children, per created tunnel) and one under
# `perf record -a` (the broker's top symbols) when perf works in the guest.
#   VM_NAME=hooks-x TD_HOOKS_BINS="base=build/base/bin/tunneldigger-broker this=bin/tunneldigger-broker" \
#     test/vm/run-vm.sh test/vm/bench-hooks.sh
# build/base/: a copy of an older build in the installed layout (bin/, lib/tunneldigger-broker/
# {js,node}/), as for test/vm/bench-idle.sh. Output: `bench-hooks: ...` lines, /run/vmout/ files.
# vm-scenario-timeout: 3000
VMTEST_SCENARIO=bench-hooks
LOAD_JS=${TD_LOAD_JS:-}
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/td-lib.sh"
. "$(dirname "$0")/scenarios/fleet-lib.sh"
. "$(dirname "$0")/scenarios/load-lib.sh"
ulimit -n 65536
W=$TD_WORK
BINS=${TD_HOOKS_BINS:-this=bin/tunneldigger-broker}
MODES=${TD_HOOKS_MODES:-nohooks hooks hooks-prof}
ROUNDS=${TD_HOOKS_ROUNDS:-2}
TRACE=${TD_HOOKS_TRACE:-1}
OUT=/run/vmout/bench-hooks
mkdir -p "$OUT"
say() { echo "bench-hooks: $*"; }
say "machine load (host) ${VM_HOST_LOAD:-unknown}; guest $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) vCPUs"
vm_check topo load_topo
cal=$(bench_calibrate)
say "calibration: one fork+exec of /bin/true = $cal ms CPU"
cat > "$W/hook.sh" <<EOF
#!/bin/sh
echo "\${0##*/} \$1 \$3" >> $W/hooks.log
exit 0
EOF
chmod +x "$W/hook.sh"; cp "$W/hook.sh" "$W/up.sh"; cp "$W/hook.sh" "$W/down.sh"
# how long Native.spawn of the hook script blocks its caller (posix_spawn returns once the child
# has exec'd: the broker's event loop stands still meanwhile) and the caller's CPU per spawn,
# 50 spawns one after another (each reaped before the next), from Node with the broker's addon
node -e '
  const { native: n } = await import(process.argv[1] + "/build/js/src/runtime/node/native.js");
  const { performance } = await import("node:perf_hooks");
  const block = []; let cpu = 0;
  for (let i = 0; i < 51; i++) {
    const c0 = process.cpuUsage(); const t0 = performance.now();
    const s = n.spawn(process.argv[2], ["1", "2", "l2tp1-1", "1446", "198.51.100.2", "1", "8942", "u", "8942"], true);
    const t1 = performance.now(); const c1 = process.cpuUsage(c0);
    if (typeof s === "number") { console.log("bench-hooks: spawn failed " + s); process.exit(1); }
    if (i > 0) { block.push(t1 - t0); cpu += (c1.user + c1.system) / 1000; }
    while (n.waitPid(s.pid) === null) await new Promise((r) => setTimeout(r, 2));
    n.close(s.outFd);
  }
  block.sort((a, b) => a - b);
  const q = (p) => block[Math.min(block.length - 1, Math.floor(p * block.length))].toFixed(1);
  console.log(`bench-hooks: Native.spawn of the hook script blocks the caller p50 ${q(0.5)} / p90 ${q(0.9)} / max ${q(1)} ms (wall), caller CPU ${(cpu / block.length).toFixed(2)} ms per spawn (50 spawns)`);
' --input-type=module "$TD_ROOT" "$W/up.sh"
perf_ok=0
if [ "$TRACE" = 1 ] && command -v perf > /dev/null && perf record -q -a -e cpu-clock -o "$W/perf-probe.data" -- sleep 0.2 > /dev/null 2>&1; then perf_ok=1; fi

# start_broker <name> <bin> <mode> <tag>: a fresh broker ($TD_BROKER_PID, log $W/broker.log)
start_broker() {
  _h=; [ "$3" = nohooks ] || _h="session.up=$W/up.sh session.down=$W/down.sh"
  # shellcheck disable=SC2086
  td_broker_cfg "$W/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO $_h
  rm -f "$W/hooks.log"
  _prof=; [ "$3" = hooks-prof ] && _prof="--cpu-prof --cpu-prof-dir=$OUT/prof-$1-$4"
  # shellcheck disable=SC2086
  ip netns exec broker node $_prof "$2" "$W/broker.cfg" > "$W/broker.log" 2>&1 &
  TD_BROKER_PID=$!
  wait_for 90 grep -q 'broker started' "$W/broker.log"
}

# burst <tag>: 100 at once against $TD_BROKER_PID; prints the run's figures
burst() {
  load_run_b "$1" --clients 100 --up-timeout 150 --settle 0 --duration 0 --uuid-prefix "$1"
  eval "$(load_vars "$1")"
  _u=$( [ -n "$lg_cpu_own" ] && awk -v a="$lg_cpu_own" -v u="$cal" 'BEGIN { printf "%.2f", a / u }')
  echo "all up ${lg_all_up:-never} s, created $lg_created, orphans $lg_orphans; broker own $lg_cpu_own ms = $_u units, hooks reaped $lg_cpu_children ms per created tunnel"
}

r=1
while [ "$r" -le "$ROUNDS" ]; do
  for mode in $MODES; do
    for nb in $BINS; do
      name=${nb%%=*}; bin=${nb#*=}
      if ! start_broker "$name" "$bin" "$mode" "$r"; then vm_fail "start-$name-$mode-$r" "broker did not start"; continue; fi
      say "$name $mode round $r: $(burst "$name-$mode-$r") (guest load $(cut -d' ' -f1-3 /proc/loadavg))"
      sleep 3
      td_stop_broker
      cp "$W/broker.log" "$OUT/broker-$name-$mode-$r.log"
    done
  done
  r=$((r + 1))
done

if [ "$TRACE" = 1 ]; then
  for nb in $BINS; do
    name=${nb%%=*}; bin=${nb#*=}
    start_broker "$name" "$bin" hooks strace || continue
    tdir=$W/strace-$name; rm -rf "$tdir"; mkdir -p "$tdir"
    strace -f -ff -qq -T -o "$tdir/t" -p "$TD_BROKER_PID" 2> /dev/null &
    spid=$!
    sleep 2
    tasks=$(ls "/proc/$TD_BROKER_PID/task" | tr '\n' ' ')
    res=$(burst "$name-strace")
    kill -INT "$spid"; wait "$spid" 2> /dev/null
    created=$(echo "$res" | sed -n 's/.*created \([0-9]*\),.*/\1/p')
    say "$name hooks under strace: $res"
    # files t.<pid>: the broker's threads (tasks listed before the burst) and everything else (its children)
    for f in "$tdir"/t.*; do
      p=${f##*.}; who=child
      case " $tasks " in *" $p "*) who=broker ;; esac
      # "name(args) = result <seconds>": name and the time spent in the call
      sed -n 's/^\([a-z_0-9]*\)(.*<\([0-9.]*\)>$/\1 \2/p' "$f" | sed "s/^/$who /"
    done | awk '{ k = $1 " " $2; c[k]++; t[k] += $3 } END { for (k in c) printf "%d %s %.6f\n", c[k], k, t[k] }' |
      sort -rn > "$OUT/strace-$name.txt"
    say "$name: syscalls per created tunnel ($created), broker threads (top 25: calls, ms in them per tunnel, name):"
    awk -v n="${created:-1}" '$2 == "broker" { printf "  %8.2f %8.3f ms %s\n", $1 / n, $4 * 1000 / n, $3 }' "$OUT/strace-$name.txt" | head -n 25
    awk -v n="${created:-1}" '$2 == "broker" { t += $1 } END { printf "  %8.2f all (broker)\n", t / n }' "$OUT/strace-$name.txt"
    awk -v n="${created:-1}" '$2 == "child" { t += $1 } END { printf "  %8.2f all (hooks and their children)\n", t / n }' "$OUT/strace-$name.txt"
    sleep 3
    td_stop_broker
    if [ "$perf_ok" = 1 ]; then
      start_broker "$name" "$bin" hooks perf || continue
      perf record -q -a -e cpu-clock -F 499 -o "$W/perf-$name.data" > /dev/null 2>&1 &
      ppid=$!
      res=$(burst "$name-perf")
      kill -INT "$ppid"; wait "$ppid" 2> /dev/null
      say "$name hooks under perf: $res"
      say "$name: perf, whole guest during the burst, by command and dso:"
      perf report -q -i "$W/perf-$name.data" --sort comm,dso --stdio 2> /dev/null | grep -v '^$' | head -n 15
      say "$name: perf, the broker (pid $TD_BROKER_PID), top symbols:"
      perf report -q -i "$W/perf-$name.data" --pid "$TD_BROKER_PID" --sort dso,sym --stdio 2> /dev/null | grep -v '^$' | head -n 40
      sleep 3
      td_stop_broker
    fi
  done
fi
vm_done
