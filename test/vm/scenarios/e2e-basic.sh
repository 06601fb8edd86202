# End to end on a plain pair: our broker (original config, ports 8942/53/123) and our client
# (black-box command line) build a real kernel L2TPv3 tunnel; data flows through the kernel alone;
# hooks get the documented arguments (a hostile uuid stays one literal argument); the listener
# answers the byte rows of spec §3 and an ERROR closes the tunnel.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
W=$TD_WORK
UUID='a b;$(touch /tmp/pwned)'"'"'"|&`touch /tmp/pwned2`'
rm -f /tmp/pwned /tmp/pwned2

vm_check topo vm_topo_pair
td_hook_script "$W/up.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for h in predown down mtu; do td_hook_script "$W/$h.sh" "$W/broker-hooks.log"; done
td_hook_script "$W/client-hook.sh" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
td_broker_cfg "$W/broker.cfg" session.up="$W/up.sh" session.pre-down="$W/predown.sh" \
  session.down="$W/down.sh" session.mtu-changed="$W/mtu.sh"

td_check broker-start td_start_broker broker "$W/broker.cfg" "$W/broker.log"
td_check client-start td_start_client client "$W/client.log" \
  -f -u "$UUID" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$W/client-hook.sh"
vm_check client-l2tp0-up td_wait_link_up client l2tp0 40
vm_check broker-l2tp100-100-up td_wait_link_up broker l2tp100-100 10

# Kernel objects: client tunnel 1 / session 1 <-> broker tunnel 100 / session 100.
# `ip l2tp show session` prints "Session S in tunnel T" / "  Peer session P, tunnel Q" / "  interface name: IF".
session_is() { # ns sid tid peer_sid peer_tid ifname
  ip -n "$1" l2tp show session | grep -A 2 "^Session $2 in tunnel $3\$" > "$W/.s" &&
  grep -q "Peer session $4, tunnel $5\$" "$W/.s" && grep -q "interface name: $6\$" "$W/.s"
}
tunnel_is() { # ns tid peer_tid
  ip -n "$1" l2tp show tunnel | grep -A 2 "^Tunnel $2, encap UDP" | grep -q "Peer tunnel $3\$"
}
vm_check client-kernel-tunnel tunnel_is client 1 100
vm_check broker-kernel-tunnel tunnel_is broker 100 1
vm_check client-kernel-session-1-peer-100 session_is client 1 1 100 100 l2tp0
vm_check broker-kernel-session-100-peer-1 session_is broker 100 100 1 1 l2tp100-100
ip -n client l2tp show tunnel; ip -n client l2tp show session
ip -n broker l2tp show tunnel; ip -n broker l2tp show session

vm_check ping-client-to-broker vm_ping client "$VM_OVL_BROKER" 3
vm_check ping-broker-to-client vm_ping broker "$VM_OVL_CLIENT" 3

# Data frames are carried by the kernel: with both daemons stopped, the tunnel still works.
stopped_ping() {
  kill -STOP "$TD_BROKER_PID" "$TD_CLIENT_PID" || return 1
  vm_ping client "$VM_OVL_BROKER" 3 && vm_ping broker "$VM_OVL_CLIENT" 3; _r=$?
  kill -CONT "$TD_BROKER_PID" "$TD_CLIENT_PID"
  return $_r
}
vm_check ping-with-daemons-stopped stopped_ping

# Hooks. Broker session.up: tunnel_id session_id ifname mtu client_ip client_port local_port uuid broker_port.
cport=$(ip -n client l2tp show tunnel | sed -n 's|.*UDP source / dest ports: \([0-9]*\)/.*|\1|p' | head -n1)
up_args() {
  td_hook_argv "$W/broker-hooks.log" up 1 > "$W/.up-got"
  printf '%s\n' 100 100 l2tp100-100 1446 "$VM_CLIENT_IP" "$cport" 8942 "$UUID" 8942 > "$W/.up-want"
  cmp -s "$W/.up-got" "$W/.up-want" || { echo "got: $(tr '\n' '|' < "$W/.up-got")"; return 1; }
}
vm_check broker-hook-session-up-9-args up_args
td_hook_calls "$W/broker-hooks.log"
client_up_hook() {
  td_hook_argv "$W/client-hooks.log" client-hook 1 > "$W/.c-got"
  printf '%s\n' session.up l2tp0 | cmp -s - "$W/.c-got" || { echo "got: $(tr '\n' '|' < "$W/.c-got")"; return 1; }
}
vm_check client-hook-session-up client_up_hook
vm_check hostile-uuid-not-executed sh -c '[ ! -e /tmp/pwned ] && [ ! -e /tmp/pwned2 ]'
vm_check hostile-uuid-in-broker-log grep -qF "$UUID" "$W/broker.log"

# Spec §3 replay against listener port 123 from a plain UDP socket.
cat > "$W/replay.mjs" <<'EOF'
// Rows 1, 3, 5, 17 of spec §3 from one socket; prints "<STEP> <hex reply>" per step. After the
// TUNNEL step it waits for the file argv[4] so the shell can inspect the kernel in between.
import dgram from 'node:dgram';
import fs from 'node:fs';
const [host, port, go] = process.argv.slice(2, 5);
const s = dgram.createSocket('udp4');
const hex = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
const queue = [];
let waiter = null;
s.on('message', (m) => { queue.push(m); if (waiter) waiter(); });
// next reply of the given message type (keepalives and PMTU probes on the tunnel are skipped)
async function reply(type, ms = 4000) {
  const end = Date.now() + ms;
  for (;;) {
    const i = queue.findIndex((m) => m.length >= 6 && m[4] === type);
    if (i >= 0) return queue.splice(i, 1)[0];
    const left = end - Date.now();
    if (left <= 0) throw new Error(`no reply of type ${type}`);
    await new Promise((r) => { waiter = r; setTimeout(r, left); });
  }
}
const send = (h) => new Promise((r) => s.send(Buffer.from(h.replace(/ /g, ''), 'hex'), Number(port), host, r));
try {
  await send('80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01');
  console.log('USAGE ' + hex(await reply(0x0a)));
  await send('80 73 a7 01 01 08 58 58 58 58 58 58 58 58');
  const cookie = await reply(0x01);
  console.log('COOKIE ' + hex(cookie));
  const c = hex(cookie.subarray(6, 14));
  await send(`80 73 a7 01 02 17 ${c} 06 66 6f 6f 62 61 72 00 00 00 01 00 00 00 01`);
  console.log('TUNNEL ' + hex(await reply(0x04)));
  const end = Date.now() + 20000;
  while (!fs.existsSync(go) && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  await send('80 73 a7 01 03 01 11 00 00 00 00 00');
  console.log('ERROR ' + hex(await reply(0x03)));
} catch (e) { console.log('FAILED ' + e.message); }
s.close();
EOF
# Port 53 answers too: the tunnel is on 8942, so 53 reports the broker-wide one tunnel of 16 =
# floor(65535/16) = 0x0fff, plus the per-endpoint tie-break of a 3-port broker (below one
# tunnel's worth, 0..4094: docs/broker.md, usage per port).
USAGE_1_OF_16='80 73 a7 01 0a 02 (0f ff|1[0-9a-f] [0-9a-f]{2}) 00 00 00 00'
usage53() {
  r=$(td_udp client "$VM_BROKER_IP" 53 '80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01')
  echo "$r" | grep -Eqx "$USAGE_1_OF_16" || { echo "reply: '$r'"; return 1; }
}
vm_check listener-53-usage usage53

rm -f "$W/replay-go"
ip netns exec client node "$W/replay.mjs" "$VM_BROKER_IP" 123 "$W/replay-go" > "$W/replay.out" 2>&1 &
RP=$!
wait_for 20 grep -q '^TUNNEL \|^FAILED' "$W/replay.out"
reply_is() { # step regex
  grep -q "^$1 " "$W/replay.out" || { echo "no $1 reply: $(cat "$W/replay.out")"; return 1; }
  grep "^$1 " "$W/replay.out" | grep -Eq "^$1 $2\$" || { echo "$(grep "^$1 " "$W/replay.out")"; return 1; }
}
# one tunnel up (on 8942): usage 0x0fff (+ tie-break) on port 123; reply padded to 12 bytes
vm_check replay-row1-usage-reply reply_is USAGE "$USAGE_1_OF_16"
vm_check replay-row3-cookie-14-bytes reply_is COOKIE '80 73 a7 01 01 08( [0-9a-f]{2}){8}'
vm_check replay-row5-tunnel-with-features reply_is TUNNEL '80 73 a7 01 04 08 00 00 00 [0-9a-f]{2} 00 00 00 01'
rtid=$(printf '%d' "0x$(sed -n 's/^TUNNEL .* 00 00 00 \([0-9a-f][0-9a-f]\) 00 00 00 01$/\1/p' "$W/replay.out")")
echo "replay tunnel id: $rtid"
vm_check replay-kernel-tunnel-exists tunnel_is broker "$rtid" 1
touch "$W/replay-go"
wait "$RP"
cat "$W/replay.out"
vm_check replay-row17-error-01 reply_is ERROR '80 73 a7 01 03 01 01( 00)*'
vm_check replay-kernel-tunnel-gone wait_for 10 sh -c "! ip -n broker l2tp show tunnel | grep -q '^Tunnel $rtid,'"
vm_check replay-tunnel-down-hook td_hook_wait 10 "$W/broker-hooks.log" "^down $rtid $rtid l2tp$rtid-$rtid 1446 $VM_CLIENT_IP [0-9]+ 123 foobar 123\$"
vm_check first-tunnel-still-works vm_ping client "$VM_OVL_BROKER" 2

# Client shutdown: ERROR to the broker, both sides clean up and run their down hooks.
td_check client-sigterm-exit-0 td_stop_client
vm_check client-hook-session-down td_hook_wait 5 "$W/client-hooks.log" '^client-hook session.down l2tp0$'
vm_check client-kernel-clean sh -c "! ip -n client l2tp show tunnel | grep -q Tunnel"
vm_check broker-down-hooks td_hook_wait 10 "$W/broker-hooks.log" "^down 100 100 l2tp100-100 "
vm_check broker-kernel-clean sh -c "! ip -n broker l2tp show tunnel | grep -q '^Tunnel 100,'"
kill -USR1 "$TD_BROKER_PID"; sleep 0.5
td_check broker-sigterm-exit-0 td_stop_broker
[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/client.log" "$W/broker.log" "$W/broker-hooks.log" "$W/client-hooks.log"
vm_done
