#!/bin/bash
# Usage: test/vm/run-scenarios.sh [scenario.sh ...]   (default: test/vm/scenarios/*.sh)
# Runs the scenarios in ONE VM boot, prints their VMTEST PASS/FAIL lines and a final
# `vm: N passed, N failed`. Exit 0 only if nothing failed. A scenario that exits non-zero without
# a FAIL line, or never finishes (VM timeout/crash), is counted as a failure.
# Env: as run-vm.sh (VM_TIMEOUT default 2700 here) plus VM_SCENARIO_TIMEOUT (per scenario, 240;
# a scenario may ask for more, see in-vm-scenarios.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
if [ $# -eq 0 ]; then set -- test/vm/scenarios/*.sh; fi
list=()
for s in "$@"; do
  p=$(realpath -e "$s" 2>/dev/null) || { echo "run-scenarios: no such scenario '$s'" >&2; exit 2; }
  list+=("$p")
done
# 2700 s: room for the scenarios that ask for a longer timeout (ops-deb, ipv6-*, scale-ci) on a loaded machine
export VM_NAME=${VM_NAME:-scenarios} VM_TIMEOUT=${VM_TIMEOUT:-2700} VM_QUIET=${VM_QUIET:-1}
test/vm/run-vm.sh test/vm/in-vm-scenarios.sh "${list[@]}"
vmrc=$?
T=build/vm/out/$VM_NAME/transcript.txt
[ -f "$T" ] || : > /dev/null

lines=$(grep -a -E '^VMTEST (PASS|FAIL) ' "$T" 2>/dev/null || true)
extra=""
for p in "${list[@]}"; do
  n=$(basename "$p" .sh)
  end=$(grep -a -E "^VMTEST-SCENARIO-END $n rc=" "$T" 2>/dev/null | tail -n1)
  if [ -z "$end" ]; then
    extra+="VMTEST FAIL $n/scenario: did not finish (VM exit status $vmrc, see build/vm/$VM_NAME.log)"$'\n'
    continue
  fi
  rc=$(echo "$end" | sed 's/.* rc=\([0-9]*\).*/\1/')
  b=$(grep -a -E "^VMTEST-SCENARIO-BEGIN $n " "$T" | tail -n1 | sed 's/.*uptime=//')
  e=${end##*uptime=}
  echo "run-scenarios: $n rc=$rc, $(awk "BEGIN{printf \"%.1f\", $e - $b}") s"
  if [ "$rc" != 0 ] && ! grep -a -q -E "^VMTEST FAIL $n/" "$T"; then
    extra+="VMTEST FAIL $n/scenario: exited $rc without reporting a failure"$'\n'
  fi
done
all=$(printf '%s\n%s' "$lines" "$extra" | sed '/^$/d')
[ -n "$all" ] && printf '%s\n' "$all"
pass=$(printf '%s\n' "$all" | grep -c '^VMTEST PASS ' || true)
fail=$(printf '%s\n' "$all" | grep -c '^VMTEST FAIL ' || true)
echo "vm: $pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
