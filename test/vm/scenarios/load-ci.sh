# CI-sized load test (bench/README.md "Load generator"): the load generator brings up 100 clients
# at once against one broker, first as our client, then as the original client (gives up
# silently after 15 s), then 10 clients with client-side kernel tunnels. Counts only, no timing:
# every client up, exactly N tunnel creations at the broker (its tunnels-created counter), no
# orphan (broker tunnels = clients up), and after the clients closed their tunnels no broker
# tunnel and no stale kernel tunnel on either side.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"
. "$(dirname "$0")/load-lib.sh"

N=${TD_LOAD_CI_CLIENTS:-100}
NK=${TD_LOAD_CI_KERNEL_CLIENTS:-10}
ulimit -n 8192
vm_check topo load_topo
fleet_do broker-start load_broker

# load_checks <run> <n>: the count assertions on one run's result
load_checks() {
  eval "$(load_vars "$1")"
  echo "$1: all up after ${lg_all_up:-never} s, handshake p50/p95/p99 ${lg_hs_p50}/${lg_hs_p95}/${lg_hs_p99} ms, attempts $lg_attempts, silent give-ups $lg_silent, created $lg_created, orphans $lg_orphans"
  vm_check "$1-result" [ "$lg_found" = 1 ]
  vm_check "$1-all-up" [ "never-up=$lg_never_up up-at-end=$lg_up_at_end" = "never-up=0 up-at-end=$2" ]
  vm_check "$1-created-exactly-$2" [ "$lg_created" = "$2" ]
  vm_check "$1-no-orphans" [ "$lg_orphans" = 0 ]
  vm_check "$1-broker-empty-after-teardown" [ "$lg_left" = 0 ]
  vm_check "$1-no-stale-broker-kernel-tunnels" load_kernel_emptied broker 60
}

load_run_b ours --clients "$N" --duration 3 --uuid-prefix ci-ours; rc=$?
vm_check ours-exit-0 [ "$rc" = 0 ]
load_checks ours "$N"

load_run_b original --clients "$N" --duration 3 --original --uuid-prefix ci-orig; rc=$?
vm_check original-exit-0 [ "$rc" = 0 ]
load_checks original "$N"

# kernel mode: the client-side tunnels exist while held and are gone afterwards
load_run_b kernel --clients "$NK" --kernel --duration 8 --uuid-prefix ci-kern &
lpid=$!
if fleet_wait 90 grep -q "all $NK tunnels up" "$TD_WORK/kernel.out"; then
  vm_check kernel-client-side-tunnels-$NK [ "$(load_kernel_tunnels client)" = "$NK" ]
  vm_check kernel-broker-side-tunnels-$NK [ "$(load_kernel_tunnels broker)" = "$NK" ]
else
  vm_fail kernel-client-side-tunnels-$NK "not all up within 90 s: $(tail -n 2 "$TD_WORK/kernel.err")"
fi
wait "$lpid"; rc=$?
vm_check kernel-exit-0 [ "$rc" = 0 ]
load_checks kernel "$NK"
vm_check kernel-no-stale-client-kernel-tunnels [ "$(load_kernel_tunnels client)" = 0 ]

[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$TD_WORK/ours.out" "$TD_WORK/original.out" "$TD_WORK/kernel.out" "$TD_WORK/kernel.err"
vm_done
