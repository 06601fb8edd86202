#!/usr/bin/env bash
# Runs every test suite and ends with the line CI reads: "N passed, N failed".
#   test/run.sh            all suites (unit, openwrt, qemu-user MIPS, x86 VM, MIPS VM)
#   test/run.sh unit       unit tests only
# Suites report either uvu summaries (unit) or lines "VMTEST PASS <name>" / "VMTEST FAIL <name>: why".
set -u
cd "$(dirname "$0")/.."
export NO_COLOR=1
only=${1:-all}
passed=0
failed=0
failures=()
logdir=build/test-logs
mkdir -p "$logdir"

strip_ansi() { sed -e 's/\x1b\[[0-9;]*m//g'; }

run_uvu_file() {
  local file=$1 name log total pass
  name=$(basename "$file" .test.js)
  log="$logdir/unit-$name.log"
  node "$file" >"$log" 2>&1
  local rc=$?
  total=$(strip_ansi <"$log" | awk '/^ *Total:/ {print $2}' | tail -1)
  pass=$(strip_ansi <"$log" | awk '/^ *Passed:/ {print $2}' | tail -1)
  if [ -z "$total" ] || [ -z "$pass" ]; then
    echo "unit $name: no summary (exit $rc), counted as 1 failure; see $log"
    strip_ansi <"$log" | tail -20
    failed=$((failed + 1)); failures+=("unit:$name")
    return
  fi
  local fail=$((total - pass))
  passed=$((passed + pass)); failed=$((failed + fail))
  printf 'unit %-24s %3d passed, %d failed\n' "$name" "$pass" "$fail"
  if [ "$fail" -gt 0 ] || [ "$rc" -ne 0 ]; then
    strip_ansi <"$log" | grep -A12 'FAIL' | head -60
    [ "$fail" -gt 0 ] || { failed=$((failed + 1)); }
    failures+=("unit:$name")
  fi
}

# Runs a script whose output has VMTEST PASS/FAIL lines; a non-zero exit without any FAIL line
# counts as one failure of the suite itself.
run_vmtest_suite() {
  local suite=$1; shift
  local log="$logdir/$suite.log"
  echo "== $suite: $*"
  "$@" >"$log" 2>&1
  local rc=$?
  local p f
  p=$(strip_ansi <"$log" | grep -c '^VMTEST PASS ')
  f=$(strip_ansi <"$log" | grep -c '^VMTEST FAIL ')
  strip_ansi <"$log" | grep -E '^VMTEST (PASS|FAIL) '
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then failures+=("$suite"); fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$suite: exited $rc without a FAIL line; counted as 1 failure; last lines of $log:"
    strip_ansi <"$log" | tail -30
    failed=$((failed + 1)); failures+=("$suite")
  fi
}

echo "== unit tests"
for f in build/js/test/unit/*.test.js; do
  [ -e "$f" ] && run_uvu_file "$f"
done

if [ "$only" = all ]; then
  [ -x test/openwrt/run.sh ] && run_vmtest_suite openwrt test/openwrt/run.sh
  [ -x test/deb/run.sh ] && run_vmtest_suite deb test/deb/run.sh
  [ -x test/mips/run-user.sh ] && run_vmtest_suite mips-user test/mips/run-user.sh
  [ -x test/vm/run-scenarios.sh ] && run_vmtest_suite vm-x86_64 test/vm/run-scenarios.sh
  [ -x test/vm-mips/run-scenarios.sh ] && run_vmtest_suite vm-mips test/vm-mips/run-scenarios.sh
fi

if [ ${#failures[@]} -gt 0 ]; then echo "failing: ${failures[*]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
