# `make bench-scale` (mk/bench.mk): one x86 VM boot running the scale scenarios of issue 7 with
# the load generator against one broker (docs/scaling.md). Runs inside the VM (test/vm/run-vm.sh,
# dash, as root, cwd = repo). Every step is bounded in count and time. Checks print VMTEST
# PASS/FAIL lines (counts: all up, exactly N creations, kernel = broker, nothing stale); timings
# are figures next to their targets, never a failure. Writes the table to /run/vmout/table.md
# (build/vm/out/<name>/ on the host) after every scenario, so an interrupted run keeps its rows.
#   A  fd limit TD_SCALE_FD_LIMIT (1,024), TD_SCALE_FD_CLIENTS (2,000) arriving at TD_SCALE_ARRIVAL_RATE/s (20):
#      refusals past the budget, no crash
#   B  TD_SCALE_KERNEL (1,000) at once with client-side kernel tunnels: all up, exactly N
#      creations, 0 stale after the teardown
#   C  SIGKILL + restart with TD_SCALE_RESTART (1,000) tunnels (brought up at
#      TD_SCALE_ARRIVAL_RATE/s): all back within 2 min, exactly N kernel tunnels afterwards
#   D  TD_SCALE_N (10,000) control-only (load generator --deadlines --read-ms TD_SCALE_READ_MS, 100)
#      at TD_SCALE_RATE/s (20), held TD_SCALE_HOLD_S (600):
#      keepalives on time (none timed out at the broker, no client lost), idle CPU per minute,
#      RSS per tunnel; then SIGTERM with a session.down hook under hooks.max_concurrent
#      (TD_SCALE_HOOK_CAP, 32): every client told, child processes under the cap, exit in 60 s;
#      TD_SCALE_HOST_LOADGEN=1 (set by bench-scale-host.sh, `make bench-scale-host`): its load
#      generator runs on the host, linked to the guest by a tap device, the broker here
# Knobs (env): the TD_SCALE_* above, TD_SCALE_STEPS (the scenarios to run, default "A B C D"), TD_SCALE_UP_TIMEOUT (900 s: the wait for all clients after
# the last arrival, in B-D), TD_SCALE_FD_UP_TIMEOUT (300 s, the same in A, where only the budget's
# share can come up); VM_HOST_LOAD (the build machine's /proc/loadavg, from mk/bench.mk).
VMTEST_SCENARIO=bench-scale
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/td-lib.sh"
. "$(dirname "$0")/scenarios/fleet-lib.sh"
. "$(dirname "$0")/scenarios/load-lib.sh"
. "$(dirname "$0")/scenarios/scale-lib.sh"

W=$TD_WORK
N=${TD_SCALE_N:-10000}
RATE=${TD_SCALE_RATE:-20}
ARATE=${TD_SCALE_ARRIVAL_RATE:-20}
# how long a load generator waits for all its clients after the last arrival (s)
UPT=${TD_SCALE_UP_TIMEOUT:-900}
HOLD=${TD_SCALE_HOLD_S:-600}
NFD=${TD_SCALE_FD_CLIENTS:-2000}
FDL=${TD_SCALE_FD_LIMIT:-1024}
NK=${TD_SCALE_KERNEL:-1000}
NR=${TD_SCALE_RESTART:-1000}
CAP=${TD_SCALE_HOOK_CAP:-32}
T=/run/vmout/table.md
ROWS=$W/rows.txt
: > "$ROWS"
ulimit -n 65536
guest_load() { cut -d' ' -f1-3 /proc/loadavg; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
# le <a> <b>: "met" / "NOT met" ("-" when a figure is missing)
le() { [ -n "$1" ] && [ -n "$2" ] || { echo '-'; return; }; awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? "met" : "NOT met" }'; }
table() {
  {
    echo "Scale bench, one VM boot ($(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB, TCG), $(date -u +%Y-%m-%dT%H:%MZ);"
    echo "machine load (host loadavg) at start: ${VM_HOST_LOAD:-unknown}; guest loadavg now: $(guest_load)."
    echo
    echo "| scenario | N | all up after | creations/s | duplicates | CPU during admission | idle CPU per minute | RSS (per tunnel) | fds | result | guest load |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    cat "$ROWS"
  } > "$T"
}
# row <scenario> <N> <all up> <creations/s> <duplicates> <admission CPU> <idle CPU/min> <RSS> <fds> <result>
row() {
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "$(guest_load)" >> "$ROWS"
  echo "bench-scale: $*"
  table
}
# per_s <count> <seconds>; dup <created> <n> <never up>: creations beyond the clients that came up
per_s() { [ -n "$1" ] && [ -n "$2" ] && awk -v c="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", c / s }'; }
dup() { [ -n "$1" ] && echo $(( $1 - ($2 - ${3:-0}) )); }
mib() { [ -n "$1" ] && calc "$1 / 1024" 1; }
# step <X>: whether scenario X is among TD_SCALE_STEPS (default all: "A B C D")
step() { case " ${TD_SCALE_STEPS:-A B C D} " in *" $1 "*) return 0 ;; esac; return 1; }

echo "bench-scale: machine load (host) ${VM_HOST_LOAD:-unknown}; guest $(guest_load); $(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
vm_check topo load_topo
cat > "$W/down.sh" <<EOF
#!/bin/sh
echo "down \$1" >> $W/hooks.log
EOF
chmod +x "$W/down.sh"

# --- A: fd limit 1,024, NFD arriving at 200/s
if step A; then
fleet_do a-broker scale_broker_fdlimit "$FDL" "$W/broker.log" max_tunnels=$((NFD + 100))
room=$(scale_room "$W/broker.log")
load_run_b a --clients "$NFD" --rate "$ARATE" --up-timeout "${TD_SCALE_FD_UP_TIMEOUT:-300}" --duration 10 --uuid-prefix sa
eval "$(load_vars a)"; eval "$(scale_vars a)"
grep -v '^LOADGEN' "$W/a.out"
warn=$(grep -c 'WARNING .*refusing new tunnels' "$W/broker.log")
bad=$(grep -c -e 'Too many open files' -e 'internal error' "$W/broker.log")
vm_check a-broker-alive scale_alive "$TD_BROKER_PID"
vm_check a-up-exactly-the-budget-$room [ "up=$lg_up_at_end held=$lg_held" = "up=$room held=$room" ]
vm_check a-refused-one-warning [ "$warn:$((sc_refused_fd > 0))" = "1:1" ]
vm_check a-no-emfile [ "$bad" = 0 ]
vm_check a-nothing-left [ "$lg_left:$(load_kernel_tunnels broker)" = "0:0" ]
row "A: ulimit -n $FDL, $NFD arriving at $ARATE/s (room for $room)" "$lg_up_at_end of $NFD" "-" "-" "-" "${sc_burst_cpu:-?} s" "-" \
  "$(mib "$lg_rss_hold") MiB" "$sc_fds_hold" "up $lg_up_at_end, held $lg_held, refused $sc_refused_fd, $warn warning, $bad EMFILE"
td_stop_broker

fi

# --- B: NK at once, kernel tunnels on both sides
if step B; then
fleet_do b-broker load_broker max_tunnels=$((NK + 100))
load_run_b b --clients "$NK" --kernel --up-timeout "$UPT" --duration 5 --uuid-prefix sb
eval "$(load_vars b)"; eval "$(scale_vars b)"
grep -v '^LOADGEN' "$W/b.out"
vm_check b-all-up-created-exactly-$NK [ "never-up=$lg_never_up created=$lg_created" = "never-up=0 created=$NK" ]
# the broker's teardowns run on its netlink thread after it forgot the tunnels: the kernel's lag
load_kernel_emptied broker 300
vm_check b-no-stale-after-teardown [ "$lg_left:$(load_kernel_tunnels broker):$(load_kernel_tunnels client)" = "0:0:0" ]
row "B: $NK at once, --kernel" "$NK" "${lg_all_up:-never} s" "$(per_s "$lg_created_burst" "$lg_all_up")" "$(dup "$lg_created" "$NK" "$lg_never_up")" "${sc_burst_cpu:-?} s" "-" \
  "$(mib "$lg_rss_hold") MiB" "$sc_fds_hold" "never up $lg_never_up, created $lg_created, stale $(load_kernel_tunnels broker)+$(load_kernel_tunnels client)"
td_stop_broker

fi

# --- C: SIGKILL + restart with NR tunnels (control only)
if step C; then
fleet_do c-broker load_broker max_tunnels=$((NR + 100))
bpid=$TD_BROKER_PID
load_run_bg c --clients "$NR" --rate "$ARATE" --up-timeout "$UPT" --duration $((UPT + 600)) --no-teardown --uuid-prefix sc
lpid=$LOAD_PID
back=""; kt=""; up0=""
if fleet_wait $((NR / ARATE + UPT + 60)) grep -q "all $NR tunnels up" "$W/c.out"; then
  up0=$(sed -n "s/.*all $NR tunnels up \([0-9.]*\) s.*/\1/p" "$W/c.out")
  sleep 5
  kill -KILL "$bpid"; wait "$bpid" 2>/dev/null
  fleet_do c-restart td_start_broker broker "$W/broker.cfg" "$W/broker-c2.log"
  t0=$(date +%s)
  if fleet_wait 180 grep -q 'tunnels up again' "$W/c.out"; then back=$(( $(date +%s) - t0 )); fi
  sleep 10
  kt=$(load_kernel_tunnels broker)
fi
kill -TERM "$lpid" 2>/dev/null; wait "$lpid" 2>/dev/null
grep -v '^LOADGEN' "$W/c.out" | tail -n 5
vm_check c-kernel-tunnels-exactly-$NR [ "${kt:-?}" = "$NR" ]
row "C: SIGKILL + restart, $NR tunnels" "$NR" "${up0:-never} s (first); back ${back:-> 180} s after the restart" "-" "-" "-" "-" "-" "-" \
  "back within 120 s: $(le "${back:-}" 120); kernel tunnels after: ${kt:-?} (want $NR)"
td_stop_broker

fi

# --- D: N control-only at RATE/s, held HOLD s, then SIGTERM with a down hook under the cap
if step D; then
# TD_SCALE_HOST_LOADGEN=1 (bench-scale-host.sh): the load generator runs on the host, linked by a tap
HOSTLG=${TD_SCALE_HOST_LOADGEN:-0}
[ "$HOSTLG" = 1 ] && vm_check d-host-link scale_host_topo
td_broker_cfg "$W/broker.cfg" port=8942 max_tunnels=$((N + 100)) tunnel_id_base=100 verbosity=INFO session.down="$W/down.sh"
scale_max_concurrent "$CAP"
fleet_do d-broker scale_broker_start "$W/broker.log"
grep -m1 'file descriptor limit' "$W/broker.log"
rm -f "$W/hooks.log"
echo "bench-scale: guest load before D: $(guest_load)"
memavail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
mem0=$(memavail)
live=$W/d.out; [ "$HOSTLG" = 1 ] && live=/run/vmout/d.out
( fleet_wait 1500 grep -q "tunnels up" "$live" && sleep 30 && memavail > "$W/memavail.held" ) &
# --deadlines: the clients cost their own keepalives, not 2 ticks a second each (schedule.ts);
# --read-ms 100: their sockets read together every 100 ms, one wake-up for all (the load
# generator shares the guest's two vCPUs with the broker; bench/README.md "The load generator's
# own cost")
set -- --clients "$N" --rate "$RATE" --deadlines --read-ms "${TD_SCALE_READ_MS:-100}" --up-timeout "$UPT" --settle 30 --duration "$HOLD" --stop-broker TERM --stop-wait 120 --uuid-prefix sd
# every 10 s: the broker's state and kernel wait channel, its CPU, the L2TP interfaces, the
# guest's load: whether a stalled admission is the broker's CPU or a wait in the kernel
( while scale_alive "$TD_BROKER_PID"; do
    echo "$(date +%s) $(sed 's/.*) //' "/proc/$TD_BROKER_PID/stat" | cut -d' ' -f1,12,13) $(cat "/proc/$TD_BROKER_PID/wchan" 2>/dev/null) $(ip -n broker -o link 2>/dev/null | grep -c l2tp) $(guest_load)"
    sleep 10
  done > /run/vmout/d-broker-samples.txt ) &
if [ "$HOSTLG" = 1 ]; then scale_host_run d "$@"; else load_run_b d "$@"; fi
cp "$W/broker.log" /run/vmout/d-broker.log 2>/dev/null
where=$([ "$HOSTLG" = 1 ] && echo "on the host, native" || echo "in the guest")
eval "$(load_vars d)"; eval "$(scale_vars d)"
grep -v '^LOADGEN' "$W/d.out"
downs=$(grep -c '^down ' "$W/hooks.log" 2>/dev/null || echo 0)
mem1=$(cat "$W/memavail.held" 2>/dev/null)
# the whole guest (broker, load generator, kernel: sockets, L2TP tunnels, l2tp_eth devices) per tunnel
kper=$( [ -n "$mem1" ] && [ "${lg_held:-0}" -gt 0 ] && calc "($mem0 - $mem1) / $lg_held" 1)
per=$( [ -n "$lg_rss_hold" ] && [ -n "$lg_rss0" ] && [ "${lg_held:-0}" -gt 0 ] && calc "($lg_rss_hold - $lg_rss0) / $lg_held" 2)
vm_check d-all-up-created-exactly-$N [ "never-up=$lg_never_up created=$lg_created" = "never-up=0 created=$N" ]
vm_check d-held-no-orphans [ "$lg_held" = "$N" ]
vm_check d-keepalives-on-time [ "lost=$sc_lost_before_stop timed-out=$sc_timed_out" = "lost=0 timed-out=0" ]
vm_check d-sigterm-every-client-told [ "$sc_stop_told" = "$sc_stop_up" ]
vm_check d-sigterm-hooks-under-the-cap [ "${sc_stop_children:-999999}" -le "$CAP" ]
row "D: $N control-only at $RATE/s, held $HOLD s" "$N" "${lg_all_up:-never} s" "$(per_s "$lg_created_burst" "$lg_all_up")" "$(dup "$lg_created" "$N" "$lg_never_up")" \
  "${sc_burst_cpu:-?} s" "${lg_idle_per_min:-?} s" "$(mib "$lg_rss_hold") MiB ($per KiB per tunnel over $(mib "$lg_rss0") MiB fresh)" "$sc_fds_hold" \
  "held $lg_held, lost $sc_lost_before_stop, timed out at the broker $sc_timed_out; guest MemAvailable -$kper KiB per tunnel"
row "D: the load generator itself ($where, ${TD_SCALE_READ_MS:-100} ms reads)" "$N" "-" "-" "-" "${lg_self_arrival_cpu:-?} s" "${lg_self_hold_per_min:-?} s" "-" "-" \
  "its event loop late by up to ${lg_self_lag_arrival:-?} ms (arrivals), ${lg_self_lag_hold:-?} ms (hold)"
row "D: SIGTERM with $sc_stop_up tunnels, session.down hook, hooks.max_concurrent $CAP" "$sc_stop_up" "-" "-" "-" "-" "-" \
  "at most $(mib "$sc_stop_rss") MiB during shutdown" "-" \
  "told $sc_stop_told; exit after ${sc_stop_exit:-> 120} s (≤ 60 s: $(le "${sc_stop_exit:-}" 60)); at most $sc_stop_children children (cap $CAP); $downs down hooks ran"
TD_BROKER_PID=
fi
table
cat "$T"
vm_done
