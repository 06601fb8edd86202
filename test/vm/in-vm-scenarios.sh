# Runs inside the VM (via run-scenarios.sh): each scenario in its own session with a timeout,
# then kills whatever it left running and deletes its namespaces, so scenarios don't leak
# into each other. Env: VM_SCENARIO_TIMEOUT (s, default 240).
T=${VM_SCENARIO_TIMEOUT:-240}
for s in "$@"; do
  name=$(basename "$s" .sh)
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
