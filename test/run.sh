#!/usr/bin/env bash
# Runs every test suite and ends with the line CI reads: "N passed, N failed, N skipped".
#   test/run.sh            all suites (unit, openwrt, qemu-user per router arch, x86 VM, MIPS VMs)
#   test/run.sh unit       unit tests only
# Suites report either uvu summaries (unit) or lines "VMTEST PASS <name>",
# "VMTEST FAIL <name>: why" and "VMTEST SKIP <name>: why". After each suite a line
# "time <suite>: N s" gives its wall time (where a cold run's time goes: README.md).
# A skip is counted as a skip, never as a pass. With CI=true every skip also counts as a failure:
# CI has everything `make deps` installs, so nothing a suite needs may be missing there.
# The unit suites are the sources test/unit/*.test.ts: a source without its compiled
# build/js/test/unit/<name>.test.js is a failure, and compiled files without a source are not run.
set -u
cd "$(dirname "$0")/.."
export NO_COLOR=1
only=${1:-all}
passed=0
failed=0
skipped=0
failures=()
failed_checks=()
ci=no
case "${CI:-}" in true|1|yes) ci=yes ;; esac

# count_skips SUITE N: adds N skips; in CI they are failures as well.
count_skips() {
  [ "$2" -gt 0 ] || return 0
  skipped=$((skipped + $2))
  if [ "$ci" = yes ]; then
    echo "$1: $2 skipped under CI=true, counted as $2 failed"
    failed=$((failed + $2)); failures+=("$1:skipped")
  fi
}
logdir=build/test-logs
mkdir -p "$logdir"

strip_ansi() { sed -e 's/\x1b\[[0-9;]*m//g'; }

run_uvu_file() {
  local file=$1 name log total pass skip
  name=$(basename "$file" .test.js)
  log="$logdir/unit-$name.log"
  node "$file" >"$log" 2>&1
  local rc=$?
  total=$(strip_ansi <"$log" | awk '/^ *Total:/ {print $2}' | tail -1)
  pass=$(strip_ansi <"$log" | awk '/^ *Passed:/ {print $2}' | tail -1)
  skip=$(strip_ansi <"$log" | awk '/^ *Skipped:/ {print $2}' | tail -1)
  if [ -z "$total" ] || [ -z "$pass" ]; then
    echo "unit $name: no summary (exit $rc), counted as 1 failure; see $log"
    strip_ansi <"$log" | tail -20
    failed=$((failed + 1)); failures+=("unit:$name")
    return
  fi
  local fail=$((total - pass))
  passed=$((passed + pass)); failed=$((failed + fail))
  printf 'unit %-24s %3d passed, %d failed, %d skipped\n' "$name" "$pass" "$fail" "${skip:-0}"
  count_skips "unit:$name" "${skip:-0}"
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
  local log="$logdir/$suite.log" t0=$SECONDS
  echo "== $suite: $*"
  "$@" >"$log" 2>&1
  local rc=$?
  echo "time $suite: $((SECONDS - t0)) s"
  local p f s
  p=$(strip_ansi <"$log" | grep -c '^VMTEST PASS ')
  f=$(strip_ansi <"$log" | grep -c '^VMTEST FAIL ')
  s=$(strip_ansi <"$log" | grep -c '^VMTEST SKIP ')
  strip_ansi <"$log" | grep -E '^VMTEST (PASS|FAIL|SKIP) '
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -gt 0 ]; then
    failures+=("$suite")
    # kept for the end: CI often shows only the last lines of the run
    while IFS= read -r line; do failed_checks+=("$line"); done \
      < <(strip_ansi <"$log" | grep '^VMTEST FAIL ' | head -20)
  fi
  count_skips "$suite" "$s"
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$suite: exited $rc without a FAIL line; counted as 1 failure; last lines of $log:"
    strip_ansi <"$log" | tail -30
    failed=$((failed + 1)); failures+=("$suite")
  fi
}

echo "== unit tests"
unit_t0=$SECONDS
sources=(test/unit/*.test.ts)
[ -e "${sources[0]}" ] || { echo "unit: no test/unit/*.test.ts found, counted as 1 failure"; failed=$((failed + 1)); failures+=("unit"); sources=(); }
for src in "${sources[@]}"; do
  f=build/js/test/unit/$(basename "$src" .ts).js
  if [ -e "$f" ]; then run_uvu_file "$f"
  else
    echo "unit $(basename "$src" .test.ts): $f is missing (not compiled: run make ts), counted as 1 failure"
    failed=$((failed + 1)); failures+=("unit:$(basename "$src" .test.ts)")
  fi
done
echo "time unit: $((SECONDS - unit_t0)) s"
# run_script_suite NAME SCRIPT [ARGS...]: a suite script that is missing or not executable is a failure.
run_script_suite() {
  if [ -x "$2" ]; then run_vmtest_suite "$1" "$2" "${@:3}"
  else
    echo "== $1: $2 is missing or not executable, counted as 1 failure"
    failed=$((failed + 1)); failures+=("$1")
  fi
}

# C-level tests of qjs-native/td_core.c (mk/native.mk)
run_script_suite native-c build/test/td_core_test
if [ "$only" = all ]; then
  run_script_suite openwrt test/openwrt/run.sh
  run_script_suite openwrt-feed test/openwrt/feed.sh
  run_script_suite deb test/deb/run.sh
  run_script_suite mips-user test/mips/run-user.sh
  run_script_suite native-c-mips test/native/run-mips.sh
  # the other router archs (mk/router-client.mk), one suite each
  for a in mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64; do
    run_script_suite "user-$a" test/cross/run-user.sh "$a"
  done
  run_script_suite vm-x86_64 test/vm/run-scenarios.sh
  run_script_suite vm-mips test/vm-mips/run-scenarios.sh
  run_script_suite vm-mipsel test/vm-mipsel/run-scenarios.sh
fi

for line in "${failed_checks[@]}"; do echo "$line"; done
if [ ${#failures[@]} -gt 0 ]; then echo "failing: ${failures[*]}"; fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
