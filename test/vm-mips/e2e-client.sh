#!/bin/sh
# Client side of the big-endian full-system test (run-scenarios.sh): runs in the MIPS Malta VM
# (busybox sh, root netns). The router build build/mips_24kc/tunneldigger (musl, soft-float)
# connects over the qemu socket NIC to the Node broker in the x86 VM
# (test/vm/scenarios-mips/e2e-broker.sh), with -L 1024. Checks: kernel tunnel/session with the
# negotiated ids, ping through the tunnel, PMTU 1346 with a 1400 underlay, memory (VmRSS/VmHWM),
# SIGTERM -> clean exit, down hook, no kernel state left. Then (big-endian only, TD_E2E_IPV6=1)
# the same client over IPv6 (-b [2001:db8:100::1]:8942): up over IPv6, ping, tunnel MTU 1326 at
# the 1400-byte underlay (1400 - 74), SIGTERM clean.
# Meets the broker VM through /run/vmout (host dir shared with it): waits for broker-ready and
# broker-checks-done, writes client-stopped.
# TDARCH: the package arch of the client under test (mipsel_24kc: test/vm-mipsel/run-scenarios.sh)
TDARCH=${TDARCH:-mips_24kc}
if [ "$TDARCH" = mips_24kc ]; then TD_E2E_IPV6=${TD_E2E_IPV6:-1}; else TD_E2E_IPV6=${TD_E2E_IPV6:-0}; fi
VMTEST_SCENARIO=${TDARCH%%_*}-e2e
. "$(dirname "$0")/../vm/lib.sh"
TD_WORK=/run/vmout/$VMTEST_SCENARIO
. "$(dirname "$0")/../vm/td-lib.sh"
W=$TD_WORK
SYNC=/run/vmout
BIN=$(cd "$(dirname "$0")/../.." && pwd)/build/$TDARCH/tunneldigger
HOOK=/tmp/client-hook.sh     # tmpfs: exec from the 9p shares is not needed
CPID=

nic_setup() {
  ip link show eth0 >/dev/null 2>&1 || { echo "no eth0 (socket NIC missing)"; return 1; }
  ip addr add "$VM_CLIENT_IP/24" dev eth0 && ip link set eth0 up
}
vm_check client-nic-198.51.100.2 nic_setup
vm_check client-binary-present test -x "$BIN"
vm_check broker-ready-mark wait_for 480 test -e "$SYNC/broker-ready"

td_hook_script "$HOOK" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
t0=$(cut -d' ' -f1 /proc/uptime)
"$BIN" -f -u "$TD_UUID" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$HOOK" -m -L 1024 > "$W/client.log" 2>&1 &
CPID=$!
is_up() { ip -o link show dev "$1" 2>/dev/null | grep -q '[<,]UP[,>]'; }
if ! vm_check client-l2tp0-up wait_for 150 is_up l2tp0; then
  # nothing else can pass: stop here (the broker VM gives up on its own)
  kill -TERM "$CPID"; wait "$CPID"; touch "$SYNC/client-stopped"
  td_dump "$W/client.log"; ip addr; ip -s link show eth0
  vm_done
fi
echo "tunnel up $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b - a}') s after the client started"
# As in e2e-pmtu: the underlay goes to 1400 only once l2tp0 exists, else the kernel would create
# l2tp0 at 1346 already and the client's PMTU round would have nothing to change.
vm_check client-nic-mtu-1400 ip link set eth0 mtu 1400

tunnel_is() { ip l2tp show tunnel | grep -A 2 "^Tunnel $1, encap UDP" | grep -q "Peer tunnel $2\$"; }
session_is() { # sid tid peer_sid peer_tid ifname
  ip l2tp show session | grep -A 2 "^Session $1 in tunnel $2\$" > /tmp/.s &&
  grep -q "Peer session $3, tunnel $4\$" /tmp/.s && grep -q "interface name: $5\$" /tmp/.s
}
vm_check client-kernel-tunnel-1-peer-100 tunnel_is 1 100
vm_check client-kernel-session-1-peer-100 session_is 1 1 100 100 l2tp0
ip l2tp show tunnel; ip l2tp show session
vm_check ping-mips-client-to-broker wait_for 60 ping -c 1 -W 2 "$VM_OVL_BROKER"

# Memory once the tunnel carries traffic (issue 3 item 5: target <= 1.5 MiB).
mem() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$CPID/status"; }
rss=$(mem VmRSS); hwm=$(mem VmHWM)
echo "mips-client VmRSS ${rss:-?} kB"
echo "mips-client VmHWM ${hwm:-?} kB"
# RssFile: the binary (9p); RssShmem: musl's libc.so, which lives on the initramfs (tmpfs)
echo "mips-client RssAnon $(mem RssAnon) kB, RssFile $(mem RssFile) kB, RssShmem $(mem RssShmem) kB, VmSize $(mem VmSize) kB"

mtu_is() { [ "$(cat "/sys/class/net/$1/mtu" 2>/dev/null)" = "$2" ]; }
vm_check client-mtu-1346 wait_for 120 mtu_is l2tp0 1346
vm_check client-hook-mtu-changed td_hook_wait 10 "$W/client-hooks.log" '^client-hook session.mtu-changed l2tp0 1446 1346$'
vm_check ping-mips-client-to-broker-after-pmtu ping -c 2 -W 3 "$VM_OVL_BROKER"
vm_check client-limit-acked sh -c "! grep -q 'giving up' '$W/client.log'"

vm_check broker-checks-done-mark wait_for 240 test -e "$SYNC/broker-checks-done"
echo "mips-client VmRSS-before-exit $(mem VmRSS) kB, VmHWM $(mem VmHWM) kB"
stop_client() { kill -TERM "$CPID" && wait "$CPID"; }
td_check client-sigterm-exit-0 stop_client
vm_check client-hook-session-down td_hook_wait 10 "$W/client-hooks.log" '^client-hook session.down l2tp0$'
vm_check client-kernel-clean sh -c "! ip l2tp show tunnel | grep -q Tunnel && ! ip link show dev l2tp0"
if [ "$TD_E2E_IPV6" = 1 ]; then
  vm_check client-ipv6-addr ip addr add 2001:db8:100::2/64 dev eth0 nodad
  # not before the broker has seen the IPv4 tunnel go (it checks that its kernel is clean)
  vm_check broker-ipv4-done-mark wait_for 240 test -e "$SYNC/broker-ipv4-done"
  t0=$(cut -d' ' -f1 /proc/uptime)
  "$BIN" -f -u "$TD_UUID-v6" -b "[2001:db8:100::1]:8942" -i l2tp0 -t 1 -s "$HOOK" > "$W/client-v6.log" 2>&1 &
  CPID=$!
  vm_check client-ipv6-l2tp0-up wait_for 150 is_up l2tp0
  echo "tunnel over IPv6 up $(awk -v a="$t0" -v b="$(cut -d' ' -f1 /proc/uptime)" 'BEGIN{printf "%.1f", b - a}') s after the client started"
  vm_check client-ipv6-up-over-ipv6 grep -q 'tunnel 1 up on l2tp0 over IPv6' "$W/client-v6.log"
  vm_check client-ipv6-kernel-tunnel sh -c "ip l2tp show tunnel | grep -q 'From 2001:db8:100::2 to 2001:db8:100::1'"
  vm_check ping-mips-client-to-broker-over-ipv6 wait_for 60 ping -c 1 -W 2 "$VM_OVL_BROKER"
  vm_check client-ipv6-mtu-1326 wait_for 120 mtu_is l2tp0 1326
  echo "mips-client over IPv6: l2tp0 MTU $(cat /sys/class/net/l2tp0/mtu)"
  vm_check broker-ipv6-checks-done-mark wait_for 240 test -e "$SYNC/broker-ipv6-checks-done"
  td_check client-ipv6-sigterm-exit-0 stop_client
  vm_check client-ipv6-kernel-clean sh -c "! ip l2tp show tunnel | grep -q Tunnel && ! ip link show dev l2tp0"
  [ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client-v6.log"
fi
touch "$SYNC/client-stopped"
td_hook_calls "$W/client-hooks.log"
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client.log"
vm_done
