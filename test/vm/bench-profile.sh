# CPU profile of the broker without hooks (node --cpu-prof) during a burst of 100 clients at once
# and 60 s of idling with their tunnels, summarised by bench/profile-summary.ts into
# /run/vmout/profile-nohooks.txt. Sourced by test/vm/bench-load.sh (after its table), or run alone
# in a VM: `VM_NAME=x test/vm/run-vm.sh test/vm/bench-profile.sh`.
if [ -z "${VMTEST_SCENARIO:-}" ]; then
  VMTEST_SCENARIO=bench-profile
  . "$(dirname "$0")/lib.sh"
  . "$(dirname "$0")/td-lib.sh"
  . "$(dirname "$0")/scenarios/fleet-lib.sh"
  . "$(dirname "$0")/scenarios/load-lib.sh"
  ulimit -n 65536
  vm_check topo load_topo
  PROFILE_ALONE=1
fi
PW=$TD_WORK/profile
mkdir -p "$PW" /run/vmout/prof-nohooks
td_broker_cfg "$PW/broker.cfg" port=8942 max_tunnels=1100 tunnel_id_base=100 verbosity=INFO
ip netns exec broker node --cpu-prof --cpu-prof-dir=/run/vmout/prof-nohooks "$TD_BROKER_BIN" "$PW/broker.cfg" > "$PW/broker.log" 2>&1 &
TD_BROKER_PID=$!
vm_check profile-broker-start wait_for 30 grep -q 'broker started' "$PW/broker.log"
ip netns exec client node "$LOAD_JS" $(load_target) \
  --broker-pid "$TD_BROKER_PID" --broker-log "$PW/broker.log" --clients 100 --settle 30 --duration "${TD_BENCH_IDLE_S:-60}" \
  --uuid-prefix p --progress 10 > "$PW/p.out" 2> "$PW/p.err"
grep -v '^LOADGEN' "$PW/p.out"
td_stop_broker
grep -o '"monotonicUs":{[^}]*}' "$PW/p.out" | sed 's/.*{//; s/}//; s/"//g; s/:/=/g; s/,/ /g' > "$PW/p.marks"
prof=$(ls /run/vmout/prof-nohooks/*.cpuprofile 2>/dev/null | head -n 1)
if [ -n "$prof" ] && [ -s "$PW/p.marks" ]; then
  . "$PW/p.marks"
  {
    echo "== broker profile (no hooks), burst of 100: start -> all up + 2 s"
    node "$TD_ROOT/build/js/bench/profile-summary.js" "$prof" --from "$start" --to "$burstEnd"
    echo; echo "== broker profile (no hooks), idle with 100 tunnels (after 30 s settling)"
    node "$TD_ROOT/build/js/bench/profile-summary.js" "$prof" --from "$holdStart" --to "$holdEnd"
  } > /run/vmout/profile-nohooks.txt 2>&1
  cat /run/vmout/profile-nohooks.txt
  vm_pass profile-summary
else
  vm_fail profile-summary "no profile or no phase marks (see $PW)"
fi
[ -n "${PROFILE_ALONE:-}" ] && vm_done
