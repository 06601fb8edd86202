# The kernel's memory per tunnel (issue 7, docs/scaling.md "Sizing"): MemAvailable, Slab and
# Percpu of the guest before and after each step of TD_KMEM_STEP (1,000) L2TP tunnels, each with
# its UDP socket (unmanaged tunnel, encap udp), one session and its l2tp_eth interface set up, in a
# network namespace of their own; TD_KMEM_STEPS (3) steps. Run by test/vm/run-vm.sh (make
# bench-kmem); prints KMEM lines (also in table.md), the per-tunnel figures in KiB.
set -u
# the output also goes to table.md (make's vm-bench prints it)
if [ -z "${KMEM_INNER:-}" ]; then
  KMEM_INNER=1 sh "$0" "$@" > /run/vmout/kmem.out 2>&1; rc=$?
  tee /run/vmout/table.md < /run/vmout/kmem.out
  exit $rc
fi
STEP=${TD_KMEM_STEP:-1000}
STEPS=${TD_KMEM_STEPS:-3}
ip netns add kmem
ip -n kmem link set lo up
ip -n kmem addr add 192.0.2.1/32 dev lo
ip -n kmem addr add 192.0.2.2/32 dev lo
mem() {
  sync; echo 3 > /proc/sys/vm/drop_caches; sleep 2
  awk '/^MemAvailable:/ { a = $2 } /^Slab:/ { s = $2 } /^Percpu:/ { p = $2 } END { print a, s, p }' /proc/meminfo
}
set -- $(mem); a0=$1; s0=$2; p0=$3
echo "KMEM start MemAvailable ${a0} KiB, Slab ${s0} KiB, Percpu ${p0} KiB, kernel $(uname -r)"
n=0
step=1
while [ "$step" -le "$STEPS" ]; do
  from=$((n + 1)); to=$((n + STEP))
  i=$from
  while [ "$i" -le "$to" ]; do
    echo "l2tp add tunnel tunnel_id $i peer_tunnel_id $i encap udp local 192.0.2.1 remote 192.0.2.2 udp_sport $((10000 + i)) udp_dport $((10000 + i))"
    echo "l2tp add session name km$i tunnel_id $i session_id 1 peer_session_id 1"
    i=$((i + 1))
  done | ip -n kmem -batch - || { echo "KMEM FAIL ip l2tp at step $step"; exit 1; }
  i=$from
  while [ "$i" -le "$to" ]; do echo "link set km$i up"; i=$((i + 1)); done | ip -n kmem -batch -
  n=$to
  set -- $(mem); a=$1; s=$2; p=$3
  tunnels=$(ip -n kmem l2tp show tunnel | grep -c '^Tunnel ')
  links=$(ip -n kmem -o link show | grep -c ' km[0-9]*:')
  awk -v n="$n" -v t="$tunnels" -v l="$links" -v a0="$a0" -v a="$a" -v s0="$s0" -v s="$s" -v p0="$p0" -v p="$p" 'BEGIN {
    printf "KMEM %d tunnels (kernel lists %d, %d interfaces): MemAvailable -%d KiB (%.1f KiB per tunnel), Slab +%d KiB (%.1f per tunnel), Percpu +%d KiB (%.1f per tunnel)\n",
      n, t, l, a0 - a, (a0 - a) / n, s - s0, (s - s0) / n, p - p0, (p - p0) / n }'
  step=$((step + 1))
done
echo "KMEM slab caches that grew most:"
sort -k2 -n -r /proc/slabinfo 2>/dev/null | awk 'NR > 2 && $3 * $4 > 4000000 { printf "KMEM   %s: %d objects of %d bytes\n", $1, $3, $4 }' | head -n 12
ip netns del kmem
