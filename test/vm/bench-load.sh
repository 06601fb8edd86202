# `make bench-load` (mk/bench.mk): one x86 VM boot measuring the broker and clients under load
# (bench/README.md "Load"). Runs inside the VM (test/vm/run-vm.sh, dash, as root, cwd = repo).
# Every step is bounded in count and time; nothing here fails on timing: each figure is printed
# next to its target (met / not met). Writes the table to /run/vmout/table.md (build/vm/out/<name>/
# on the host) and CPU profiles of the broker to /run/vmout/prof/.
# Knobs (env): TD_BENCH_REAL_CLIENTS (500, real QuickJS clients for the 4 GiB test, 0 = skip),
# TD_BENCH_BIG (1000, load generator clients for the RSS figure), TD_BENCH_IDLE_S (60),
# TD_BENCH_PROFILE (1), VM_HOST_LOAD (the build machine's /proc/loadavg, set by mk/bench.mk).
VMTEST_SCENARIO=bench-load
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/td-lib.sh"
. "$(dirname "$0")/scenarios/fleet-lib.sh"
. "$(dirname "$0")/scenarios/load-lib.sh"

W=$TD_WORK
REAL=${TD_BENCH_REAL_CLIENTS:-500}
BIG=${TD_BENCH_BIG:-1000}
IDLE=${TD_BENCH_IDLE_S:-60}
PROFILE=${TD_BENCH_PROFILE:-1}
T=/run/vmout/table.md
ROWS=$W/rows.txt
: > "$ROWS"
ulimit -n 65536
guest_load() { cut -d' ' -f1-3 /proc/loadavg; }
# row <what> <figure> <target> <met|not met|-> : one table row
row() { printf '| %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" >> "$ROWS"; echo "bench: $1: $2 (target $3: $4)"; }
# le/ge/eq <a> <b>: "met" / "not met" ("-" when a figure is missing)
cmp_() { [ -n "$2" ] && [ -n "$3" ] || { echo '-'; return; }; awk -v a="$2" -v b="$3" -v op="$1" 'BEGIN { r = op == "le" ? a <= b : op == "ge" ? a >= b : a == b; print r ? "met" : "NOT met" }'; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
cpu_of() { awk '{ s = substr($0, index($0, ") ") + 2); split(s, f, " "); print (f[12] + f[13]) / 100 }' "/proc/$1/stat" 2>/dev/null; }
rss_of() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

echo "bench: machine load (host) ${VM_HOST_LOAD:-unknown}; guest $(guest_load); $(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
vm_check topo load_topo

# --- calibration: one fork+exec of /bin/true from a small process (dash), CPU of parent + child
cal=$(bench_calibrate)
echo "bench: fork+exec of /bin/true: $cal ms CPU (100 runs, shell + children)"
row "calibration: one fork+exec of /bin/true (CPU, this boot)" "$cal ms" "(unit)" "-"
# the same from a Node process (a large one, as the broker forking a hook): CPU of parent + child
calnode=$(node -e '
  const { spawnSync } = require("child_process"); const fs = require("fs");
  const cpu = () => { const f = fs.readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / 100; };
  spawnSync("/bin/true"); const c0 = cpu(); for (let i = 0; i < 100; i++) spawnSync("/bin/true");
  console.log(((cpu() - c0) * 10).toFixed(3));')
row "  the same from a Node process (spawnSync, 100 runs)" "$calnode ms" "-" "-"

# the standard hook: one line to hooks.log per run, from the shell alone (its name by parameter
# expansion: a $(basename ...) would fork a subshell and exec basename, twice the hook's own cost)
hooks() {
  cat > "$W/hook.sh" <<EOF
#!/bin/sh
echo "\${0##*/} \$1 \$3" >> $W/hooks.log
exit 0
EOF
  chmod +x "$W/hook.sh"; cp "$W/hook.sh" "$W/up.sh"; cp "$W/hook.sh" "$W/down.sh"
}
hooks
# bench_broker [key=value ...]: a fresh broker (no hooks unless given)
bench_broker() {
  rm -f "$W/hooks.log"
  load_broker "$@"
}
HOOKS="session.up=$W/up.sh session.down=$W/down.sh"
down_hooks() { grep -c '^down.sh ' "$W/hooks.log" 2>/dev/null || echo 0; }
both() { [ "$1" = "$2" ] && echo met || echo 'NOT met'; }
units() { [ -n "$1" ] && calc "$1 / $cal" 2; }

# --- A0: 100 at once (our client), broker without hooks; then idle with 100 tunnels
fleet_do broker-a0 bench_broker
rss0=$(rss_of "$TD_BROKER_PID")
echo "bench: guest load before A0: $(guest_load)"
# the hold in three windows of IDLE s: the first still has V8 compiling the broker's hot paths on
# its worker threads and every client's first PMTU rounds (15, 45, 105 s after TUNNEL); the
# third, 30 + 2 IDLE s after all were up, is the steady state an operator's broker runs in
load_run_b a0 --clients 100 --settle 30 --duration "$((IDLE * 3))" --windows 3 --uuid-prefix a0; eval "$(load_vars a0)"
grep -v '^LOADGEN' "$W/a0.out"
rss100=$lg_rss_hold
row "100 at once (load generator, our client), broker without hooks: time to all up" "${lg_all_up:-never} s" "≤ 10 s" "$(cmp_ le "$lg_all_up" 10)"
row "  creations / orphans" "$lg_created / $lg_orphans" "100 / 0" "$(both "$lg_created:$lg_orphans" 100:0)"
row "  handshake p50 / p95 / p99" "$lg_hs_p50 / $lg_hs_p95 / $lg_hs_p99 ms" "-" "-"
row "  broker CPU per created tunnel" "$lg_cpu_per ms = $(units "$lg_cpu_per") fork+exec" "≤ 1 fork+exec" "$(cmp_ le "$(units "$lg_cpu_per")" 1)"
row "idle broker, 100 tunnels: CPU per minute, steady ($((30 + 2 * IDLE))-$((30 + 3 * IDLE)) s after all up)" "$lg_idle_last s" "≤ 1 s" "$(cmp_ le "$lg_idle_last" 1)"
row "  the first minute of the hold (30-$((30 + IDLE)) s after all up: V8 compiling, first PMTU rounds) / all $((3 * IDLE)) s" "$lg_idle_first s / $lg_idle_per_min s" "-" "-"
td_stop_broker

# --- A: the same with session.up/session.down hooks (production-like); an unprofiled broker (the
#     target row), then the same burst again under node --cpu-prof (A', the profile below: a
#     sampling profiler costs the broker CPU of its own, so its figure is not the target's)
fleet_do broker-a bench_broker $HOOKS
echo "bench: guest load before A: $(guest_load)"
load_run_b a --clients 100 --up-timeout 150 --settle 30 --duration 30 --uuid-prefix a; eval "$(load_vars a)"
grep -v '^LOADGEN' "$W/a.out"
row "100 at once (our client), broker with up/down hooks: time to all up" "${lg_all_up:-never} s (never up: $lg_never_up)" "≤ 10 s" "$(cmp_ le "$lg_all_up" 10)"
row "  creations / orphans / lost" "$lg_created / $lg_orphans / $lg_lost" "100 / 0 / 0" "$(both "$lg_created:$lg_orphans:$lg_lost" 100:0:0)"
row "  handshake p50 / p95 / p99" "$lg_hs_p50 / $lg_hs_p95 / $lg_hs_p99 ms" "-" "-"
# the target is the broker's own CPU (utime+stime, /proc/PID/stat); its reaped hooks (cutime+cstime)
# are the hooks' own CPU, shown next to it, and the total as before
row "  broker CPU per created tunnel, hooks' own CPU excluded (broker utime+stime)" "$lg_cpu_own ms = $(units "$lg_cpu_own") fork+exec" "≤ 1 fork+exec" "$(cmp_ le "$(units "$lg_cpu_own")" 1)"
row "  the hooks it reaped (cutime+cstime) / total, per created tunnel" "$lg_cpu_children ms / $lg_cpu_per ms = $(units "$lg_cpu_per") fork+exec" "-" "-"
td_stop_broker
if [ "$PROFILE" = 1 ]; then
  mkdir -p /run/vmout/prof
  td_broker_cfg "$W/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO $HOOKS
  rm -f "$W/hooks.log"
  ip netns exec broker node --cpu-prof --cpu-prof-dir=/run/vmout/prof "$TD_BROKER_BIN" "$W/broker.cfg" > "$W/broker.log" 2>&1 &
  TD_BROKER_PID=$!
  fleet_do broker-a-prof wait_for 90 grep -q 'broker started' "$W/broker.log"
  load_run_b ap --clients 100 --up-timeout 150 --settle 30 --duration 30 --uuid-prefix ap; eval "$(load_vars ap)"
  grep -v '^LOADGEN' "$W/ap.out"
  row "  A' (the profile's run): the same burst, broker under node --cpu-prof: own CPU per created tunnel" "$lg_cpu_own ms = $(units "$lg_cpu_own") fork+exec (all up ${lg_all_up:-never} s)" "-" "-"
  grep -o '"monotonicUs":{[^}]*}' "$W/ap.out" | sed 's/.*{//; s/}//; s/"//g; s/:/=/g; s/,/ /g' > "$W/a.marks"
  td_stop_broker
fi

# --- B: 100 at once, original-client mode (gives up silently after 15 s), hooks as A
fleet_do broker-b bench_broker $HOOKS
load_run_b b --clients 100 --original --up-timeout 150 --duration 5 --uuid-prefix b; eval "$(load_vars b)"
grep -v '^LOADGEN' "$W/b.out"
row "100 at once (load generator, original client), hooks: time to all up" "${lg_all_up:-never} s (never up: $lg_never_up)" "≤ 10 s" "$(cmp_ le "$lg_all_up" 10)"
row "  creations / orphans / silent give-ups" "$lg_created / $lg_orphans / $lg_silent" "100 / 0 / -" "$(both "$lg_created:$lg_orphans" 100:0)"
td_stop_broker

# --- C: 500 at once (load generator), no hooks
fleet_do broker-c bench_broker
load_run_b c --clients 500 --duration 5 --up-timeout 150 --uuid-prefix c; eval "$(load_vars c)"
grep -v '^LOADGEN' "$W/c.out"
row "500 at once (load generator), no hooks: all up, creations" "${lg_all_up:-never} s, $lg_created (never up: $lg_never_up)" "all up, 500" "$(both "$lg_never_up:$lg_created" 0:500)"
row "  handshake p50 / p95 / p99" "$lg_hs_p50 / $lg_hs_p95 / $lg_hs_p99 ms" "-" "-"
td_stop_broker

# --- D: memory: broker VmRSS at 0 (fresh), then warmed by 100 tunnels (closed again), then
#     holding BIG: growth per tunnel held on the warmed broker (JIT and heap warm-up excluded)
fleet_do broker-d bench_broker
rssd0=$(rss_of "$TD_BROKER_PID")
load_run_b d0 --clients 100 --duration 2 --uuid-prefix d0
load_run_b d --clients "$BIG" --rate 10 --duration 5 --up-timeout 240 --uuid-prefix d; eval "$(load_vars d)"
grep -v '^LOADGEN' "$W/d.out"
rssbig=$lg_rss_hold
per=$( [ -n "$rssbig" ] && [ -n "$lg_rss0" ] && [ "${lg_held:-0}" -gt 0 ] && calc "($rssbig - $lg_rss0) / $lg_held" 2)
row "broker VmRSS: fresh / after 100 tunnels came and went / holding $lg_held" "$(( ${rssd0:-0} / 1024 )) / $(( ${lg_rss0:-0} / 1024 )) / $(( ${rssbig:-0} / 1024 )) MiB" "-" "-"
row "  growth per tunnel held (warmed broker)" "$per KiB" "≤ 8 KiB" "$(cmp_ le "$per" 8)"
row "  $BIG at 10/s, no hooks: all up, creations" "${lg_all_up:-never} s, $lg_created (never up: $lg_never_up)" "all up, $BIG" "$(both "$lg_never_up:$lg_created" "0:$BIG")"
td_stop_broker

# --- E: SIGTERM with 100 tunnels (session.down hook only): every client told, every down hook
#     run, exit within 5 s
fleet_do broker-e bench_broker session.down="$W/down.sh"
bpid=$TD_BROKER_PID
load_run_bg e --clients 100 --duration 40 --no-teardown --uuid-prefix e
lpid=$LOAD_PID
load_sigterm_when_up e 100 120 "$bpid"; exit_s=$LOAD_EXIT_S
TD_BROKER_PID=$bpid; td_stop_broker
wait "$lpid"; eval "$(load_vars e)"
grep -v '^LOADGEN' "$W/e.out"
dh=$(down_hooks)
grep -E 'SIGTERM received|shutdown' "$W/broker.log" | sed 's/^/bench: E broker: /' | cut -c1-400
row "SIGTERM, 100 tunnels (down hook): clients told / down hooks run / exit after" "$lg_told / $dh / ${exit_s:-> 90} s" "100 / 100 / ≤ 5 s" "$( [ "$lg_told:$dh" = 100:100 ] && [ "$(cmp_ le "${exit_s:-}" 5)" = met ] && echo met || echo 'NOT met')"
# what the same 100 down hooks take by themselves in this boot, as many at once as the broker
# runs them (hooks.max_concurrent, 32): the part of the exit that is the hook's own cost (one
# exec of dash and a write), not the broker's
mkdir -p "$W/hooks-alone"; sed "s|$W/hooks.log|$W/hooks-alone/log|" "$W/down.sh" > "$W/hooks-alone/down.sh"; chmod +x "$W/hooks-alone/down.sh"
h0=$(date +%s.%N)
seq 100 | xargs -P 32 -I{} "$W/hooks-alone/down.sh" session.down lg{} 100{} 1446
h1=$(date +%s.%N)
row "  the 100 down hooks alone, 32 at once (no broker, no clients): wall time / runs" "$(calc "$h1 - $h0" 2) s / $(wc -l < "$W/hooks-alone/log")" "-" "-"

# --- F: SIGKILL, restart after 3 s, 100 clients (no hooks): all back within 30 s, exactly 100
#     kernel tunnels afterwards
fleet_do broker-f bench_broker
bpid=$TD_BROKER_PID
load_run_bg f --clients 100 --duration 100 --no-teardown --uuid-prefix f
lpid=$LOAD_PID
back=""; kt=""
if fleet_wait 120 grep -q 'all 100 tunnels up' "$W/f.out"; then
  sleep 3
  kill -KILL "$bpid"; wait "$bpid" 2>/dev/null
  sleep 3
  fleet_do broker-f-restart td_start_broker broker "$W/broker.cfg" "$W/broker-f2.log"
  # back = the broker's kernel holds a tunnel per client again (the load generator's "up
  # again" also counts clients that have not noticed the restart yet)
  t0=$(date +%s)
  if fleet_wait 60 load_kernel_holds broker 100; then back=$(( $(date +%s) - t0 )); fi
  sleep 5
  kt=$(load_kernel_tunnels broker)
fi
kill -TERM "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
grep -v '^LOADGEN' "$W/f.out"
row "SIGKILL + restart after 3 s, 100 clients: all back after / broker kernel tunnels" "${back:-> 60} s / ${kt:-?}" "≤ 30 s / 100" "$( [ "$(cmp_ le "${back:-}" 30)" = met ] && [ "${kt:-}" = 100 ] && echo met || echo 'NOT met')"
td_stop_broker

# --- G: real clients (build/x86_64/tunneldigger, QuickJS) in netns client, kernel tunnels
if [ "$REAL" -gt 0 ]; then
  fleet_do broker-g bench_broker
  echo "bench: guest load before G: $(guest_load)"
  : > "$W/g.pids"
  # in batches of 50, each given up to 120 s to come up before the next starts: a process start
  # costs about a second of guest CPU under TCG, and 500 starts at once starve the broker (in the
  # baseline run no real client got an answer within its 10 s selection window)
  tg0=$(date +%s.%N)
  i=0
  while [ $i -lt "$REAL" ]; do
    src=198.51.100.$((10 + i % LOAD_SOURCES))
    ip netns exec client "$TD_CLIENT_BIN" -f -u "real-$i" -l "$src" -b "$VM_BROKER_IP:8942" -i "td$i" -t $((2000 + i)) > "$W/g-$i.log" 2>&1 &
    echo $! >> "$W/g.pids"
    i=$((i + 1))
    if [ $((i % 50)) -eq 0 ] || [ $i -eq "$REAL" ]; then
      fleet_wait 120 sh -c "[ \$(cat $W/g-*.log | grep -c ' up on td') -ge $i ]"
      echo "bench: $(cat "$W"/g-*.log | grep -c ' up on td') of $i real clients up after $(calc "$(date +%s.%N) - $tg0" 0) s"
    fi
  done
  tg1=$(date +%s.%N)
  tg2=$tg1
  n_up=$(cat "$W"/g-*.log | grep -c ' up on td')
  echo "bench: $REAL real clients started in $(calc "$tg1 - $tg0" 1) s, $n_up up after $(calc "$tg2 - $tg0" 1) s"
  cu=0; for p in $(cat "$W/g.pids"); do cu=$(calc "$cu + $(cpu_of "$p")" 2); done
  sleep 30   # the broker's PMTU discovery, then the idle minute
  c0=0; for p in $(cat "$W/g.pids"); do c0=$(calc "$c0 + $(cpu_of "$p")" 2); done
  b0=$(cpu_of "$TD_BROKER_PID"); s0=$(date +%s.%N)
  k=0
  while [ $k -lt 4 ]; do
    sleep $((IDLE / 4))
    fleet_broker_counters "$TD_BROKER_PID" "$W/broker.log"
    k=$((k + 1))
  done
  # idle column (s since the tunnel's last control packet) of every status table row
  maxidle=$(awk '/status: / && $NF ~ /^[0-9]+s$/ { v = $NF + 0; if (v > mx) mx = v } END { print mx + 0 }' "$W/broker.log")
  c1=0; for p in $(cat "$W/g.pids"); do c1=$(calc "$c1 + $(cpu_of "$p")" 2); done
  b1=$(cpu_of "$TD_BROKER_PID"); s1=$(date +%s.%N)
  mins=$(calc "($s1 - $s0) / 60" 3)
  per_client=$(calc "($c1 - $c0) / $REAL / $mins" 4)
  rss_real=$(rss_of "$(head -n 1 "$W/g.pids")")
  timeouts=$(cat "$W"/g-*.log | grep -c 'no control packet')
  held=$(grep 'status: ' "$W/broker.log" | grep ' tunnels, ' | tail -n 1 | sed -n 's/.*status: \([0-9]*\)\/.*/\1/p')
  row "$REAL real clients (QuickJS, kernel tunnels) + broker (no hooks), $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB VM: up / held / client timeouts / max broker idle" \
    "$n_up / $held / $timeouts / ${maxidle} s" "$REAL / $REAL / 0 / ≤ 10 s (no missed keepalive)" \
    "$( [ "$n_up:$held:$timeouts" = "$REAL:$REAL:0" ] && [ "$maxidle" -le 10 ] && echo met || echo 'NOT met')"
  row "  time to all up (started in batches of 50, each waited for)" "$(calc "$tg2 - $tg0" 1) s" "-" "-"
  row "  each real client, tunnel up: CPU per minute" "$per_client s" "≤ 0.05 s" "$(cmp_ le "$per_client" 0.05)"
  row "  real client VmRSS (x86_64)" "$rss_real KiB" "-" "-"
  row "  each real client: CPU from start to tunnel up" "$(calc "$cu / $REAL * 1000" 0) ms = $(units "$(calc "$cu / $REAL * 1000" 1)") fork+exec" "-" "-"
  row "  broker with $REAL real clients: idle CPU per minute" "$(calc "($b1 - $b0) / $mins" 3) s" "-" "-"
  for p in $(cat "$W/g.pids"); do kill -TERM "$p" 2>/dev/null; done
  for p in $(cat "$W/g.pids"); do wait "$p" 2>/dev/null; done
  td_stop_broker
fi

{
  echo "Load bench, one VM boot ($(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB, TCG), $(date -u +%Y-%m-%dT%H:%MZ);"
  echo "machine load (host loadavg) at start: ${VM_HOST_LOAD:-unknown}; guest loadavg at end: $(guest_load)."
  echo
  echo "| figure | measured | target | |"
  echo "|---|---|---|---|"
  cat "$ROWS"
} > "$T"
cat "$T"
# where the profiled broker of A' spent its CPU: the burst (start → all up + 2 s) and the idle hold
prof=$(ls /run/vmout/prof/*.cpuprofile 2>/dev/null | head -n 1)
if [ -n "$prof" ] && [ -s "$W/a.marks" ]; then
  . "$W/a.marks"
  {
    echo "== broker profile (up/down hooks), burst of 100 (A', profiled repeat of A): start -> all up + 2 s"; node "$TD_ROOT/build/js/bench/profile-summary.js" "$prof" --from "$start" --to "$burstEnd"
    echo; echo "== broker profile (up/down hooks), idle hold with the tunnels of A' (30 s after settling)"; node "$TD_ROOT/build/js/bench/profile-summary.js" "$prof" --from "$holdStart" --to "$holdEnd"
    echo; echo "== the whole profile of A' (startup, burst, teardown by the clients, shutdown)"; node "$TD_ROOT/build/js/bench/profile-summary.js" "$prof"
  } > /run/vmout/profile.txt 2>&1
  cat /run/vmout/profile.txt
fi
[ "$PROFILE" = 1 ] && . "$(dirname "$0")/bench-profile.sh"
vm_done
