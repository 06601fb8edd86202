#!/bin/sh
# Runs inside the big-endian MIPS VM (test/vm-mips/run-vm.sh): two network namespaces joined
# by a veth pair (198.51.100.0/24), a static L2TPv3-over-UDP tunnel + l2tpeth session between
# them (203.0.113.0/30 inside), ping through the tunnel; also runs the dynamically linked
# soft-float musl probe (scripts/mips/check-toolchain.sh builds it) on the real kernel, and
# checks that a hard-float build dies with SIGILL (24Kc without FPU, kernel without emulator).
set -e
fail() { echo "VMTEST FAIL mips-kernel-l2tp: $*"; exit 1; }
grep -q 'cpu model.*24Kc' /proc/cpuinfo || fail "CPU is not a 24Kc"
ip netns add a; ip netns add b
ip link add va type veth peer name vb
ip link set va netns a; ip link set vb netns b
ip -n a link set lo up; ip -n b link set lo up
ip -n a addr add 198.51.100.1/24 dev va; ip -n a link set va up
ip -n b addr add 198.51.100.2/24 dev vb; ip -n b link set vb up
ip -n a l2tp add tunnel tunnel_id 1 peer_tunnel_id 2 encap udp \
  local 198.51.100.1 remote 198.51.100.2 udp_sport 5000 udp_dport 5001
ip -n a l2tp add session name l2tp0 tunnel_id 1 session_id 10 peer_session_id 20
ip -n b l2tp add tunnel tunnel_id 2 peer_tunnel_id 1 encap udp \
  local 198.51.100.2 remote 198.51.100.1 udp_sport 5001 udp_dport 5000
ip -n b l2tp add session name l2tp0 tunnel_id 2 session_id 20 peer_session_id 10
ip -n a addr add 203.0.113.1/30 dev l2tp0; ip -n a link set l2tp0 up
ip -n b addr add 203.0.113.2/30 dev l2tp0; ip -n b link set l2tp0 up
ip -n a l2tp show tunnel
ip netns exec a ping -c 3 -W 3 203.0.113.2 || fail "no ping reply through the L2TP tunnel"
# the tunnel really carried it: session counters on b
ip -n b -s link show l2tp0 | grep -A1 'RX:' | tail -1
genl ctrl get name l2tp >/dev/null || fail "genl cannot resolve the l2tp family"
probe="$HOST$HOST_CACHE/mips/probe/probe-dyn"   # HOST_CACHE: set by run-vm.sh
if [ -f "$probe" ]; then
  "$probe" || fail "musl soft-float probe failed on the MIPS kernel"
  # like on ath79 (no FPU, no kernel FPU emulator) a hard-float binary must die with SIGILL
  set +e; "$HOST$HOST_CACHE/mips/probe/probe-hardfloat" >/dev/null 2>&1; rc=$?; set -e
  [ $rc -eq 132 ] || fail "hard-float probe exited $rc, expected 132 (SIGILL: no FPU, no emulator)"
  echo "hard-float probe: SIGILL as on the router"
else
  echo "(no $probe: run scripts/mips/check-toolchain.sh to include the musl probes)"
fi
echo "VMTEST PASS mips-kernel-l2tp"
