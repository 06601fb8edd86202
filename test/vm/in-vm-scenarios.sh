# Runs inside the VM (via run-scenarios.sh): each scenario in its own session with a timeout,
# then kills whatever it left running and deletes its namespaces, so scenarios don't leak
# into each other. Env: VM_SCENARIO_TIMEOUT (s, default 240). A scenario may ask for more with a
# line "# vm-scenario-timeout: <s>" (the larger of the two applies).
T0=${VM_SCENARIO_TIMEOUT:-240}
for s in "$@"; do
  name=$(basename "$s" .sh)
  T=$T0
  want=$(sed -n 's/^# vm-scenario-timeout: *\([0-9][0-9]*\)$/\1/p' "$s" | head -n 1)
  [ -n "$want" ] && [ "$want" -gt "$T" ] && T=$want
  echo "VMTEST-SCENARIO-BEGIN $name uptime=$(cut -d' ' -f1 /proc/uptime)"
  rm -f /run/vm-scenario.sid
  setsid -w sh -c 'echo $$ > /run/vm-scenario.sid; exec timeout -k 5 "$0" /bin/sh "$1"' "$T" "$s"
  rc=$?
  sid=$(cat /run/vm-scenario.sid 2>/dev/null)
  [ -n "$sid" ] && pkill -KILL -s "$sid" 2>/dev/null
  ip -all netns delete 2>/dev/null
  nft flush ruleset 2>/dev/null
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    echo "VMTEST FAIL $name/scenario: timed out after $T s"
  fi
  echo "VMTEST-SCENARIO-END $name rc=$rc uptime=$(cut -d' ' -f1 /proc/uptime)"
done
exit 0
