# Signals and restarts end to end (real client, real broker, pair topology):
#  a) client SIGTERM: ERROR 0x11 reaches the broker, both sides remove their kernel state, the
#     client's session.down and the broker's pre-down/down hooks run;
#  b) broker SIGTERM: the client gets ERROR 0x02, the broker removes every tunnel and exits 0
#     after its hooks; the client reconnects by itself once the broker is back;
#  c) broker SIGKILL + restart: the dying sockets take the kernel tunnels with them; the new
#     broker starts clean, tells the client (its keepalives now hit the listener) with ERROR 04,
#     and the client reconnects once, without a reconnect storm.
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"
. "$(dirname "$0")/fleet-lib.sh"

W=$TD_WORK
vm_check topo vm_topo_pair
td_hook_script "$W/bup.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for h in predown down; do td_hook_script "$W/b$h.sh" "$W/broker-hooks.log"; done
td_broker_cfg "$W/broker.cfg" port=8942 verbosity=INFO \
  session.up="$W/bup.sh" session.pre-down="$W/bpredown.sh" session.down="$W/bdown.sh"
fleet_client_hook "$W/chook.sh" "$W/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"

client_has_addr() { ip -n client -o addr show dev l2tp0 2>/dev/null | grep -q "$VM_OVL_CLIENT/"; }
broker_tunnels() { ip -n broker l2tp show tunnel | grep -c '^Tunnel '; }
broker_l2tp_links() { ip -n broker -o link show | grep -c ': l2tp'; }
no_broker_state() { [ "$(broker_tunnels)" = 0 ] && [ "$(broker_l2tp_links)" = 0 ]; }
no_client_state() { ! ip -n client l2tp show tunnel | grep -q '^Tunnel ' && ! ip -n client link show dev l2tp0 >/dev/null 2>&1; }
start_client() {
  td_start_client client "$W/$1" -f -u signals-client -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$W/chook.sh"
}
# hooks_match <regex>: the broker hook calls, joined by ';', match <regex>
hooks_match() { td_hook_calls "$W/broker-hooks.log" | tr '\n' ';' | grep -q "$1"; }
elapsed() { echo $(( $(date +%s) - $1 )); }

# --- a) client SIGTERM ---------------------------------------------------------------------
fleet_do broker-start td_start_broker broker "$W/broker.cfg" "$W/broker1.log"
fleet_do a-client-start start_client client-a.log
vm_check a-tunnel-up wait_for 40 client_has_addr
vm_check a-ping vm_ping client "$VM_OVL_BROKER" 2
fleet_do a-client-exit-0 td_stop_client
vm_check a-broker-got-error-11 wait_for 10 grep -q 'closed: client closed it: client shutdown (0x11)' "$W/broker1.log"
vm_check a-client-kernel-state-gone no_client_state
vm_check a-client-session-down-hook grep -q '^session.down l2tp0$' "$W/client-hooks.log"
vm_check a-broker-kernel-state-gone wait_for 10 no_broker_state
vm_check a-broker-down-hooks td_hook_wait 10 "$W/broker-hooks.log" '^bdown '
vm_check a-broker-predown-hook hooks_match 'bpredown 100 100 l2tp100-100 '
vm_check a-hook-order hooks_match '^bup 100 [^;]*;bpredown 100 [^;]*;bdown 100 ' 

# --- b) broker SIGTERM, then restart ------------------------------------------------------------
fleet_do b-client-start start_client client-b.log
CPID=$TD_CLIENT_PID
vm_check b-tunnel-up wait_for 40 client_has_addr
vm_check b-ping vm_ping client "$VM_OVL_BROKER" 2
: > "$W/broker-hooks.log"
fleet_do b-broker-exit-0 td_stop_broker
vm_check b-client-got-error-02 wait_for 10 grep -q 'closed tunnel 1: broker shutdown (0x02)' "$W/client-b.log"
vm_check b-broker-kernel-state-gone no_broker_state
vm_check b-broker-predown-down-hooks hooks_match '^bpredown 10[0-9] [^;]*;bdown 10[0-9] ' 
vm_check b-client-kernel-state-gone wait_for 10 no_client_state
sleep 3
vm_check b-client-still-running kill -0 "$CPID"
t0=$(date +%s)
fleet_do b-broker-restart td_start_broker broker "$W/broker.cfg" "$W/broker2.log"
vm_check b-client-back wait_for 60 client_has_addr
echo "b) client back $(elapsed "$t0") s after the broker restart"
vm_check b-ping-again vm_ping client "$VM_OVL_BROKER" 3

# --- c) broker SIGKILL, then restart ----------------------------------------------------------
: > "$W/broker-hooks.log"
n_before=$(grep -c 'new attempt' "$W/client-b.log")
kill -KILL "$TD_BROKER_PID"; wait "$TD_BROKER_PID" 2>/dev/null; TD_BROKER_PID=
tkill=$(date +%s)
echo "after SIGKILL: $(broker_tunnels) broker kernel tunnels, $(broker_l2tp_links) l2tp links:"
ip -n broker l2tp show tunnel; ip -n broker -o link show | grep l2tp
vm_check c-kernel-tunnels-died-with-sockets wait_for 5 no_broker_state
vm_check c-client-kernel-tunnel-kept sh -c "ip -n client l2tp show tunnel | grep -q '^Tunnel 1,'"
fleet_do c-broker-restart td_start_broker broker "$W/broker.cfg" "$W/broker3.log"
vm_check c-restarted-broker-clean no_broker_state
# the new broker answers the orphaned tunnel's keepalives with ERROR 04 (instead of ignoring them
# as the original does, which leaves the client waiting for its 60 s liveness timeout)
vm_check c-client-told-by-new-broker wait_for 30 grep -q 'closed tunnel 1: broker failure (0x04)' "$W/client-b.log"
echo "c) client noticed after $(elapsed "$tkill") s"
vm_check c-client-session-down-hook sh -c "[ \$(grep -c '^session.down l2tp0$' '$W/client-hooks.log') -ge 3 ]"
c_back() { grep -q ' up: interface l2tp' "$W/broker3.log" && client_has_addr; }
vm_check c-client-back wait_for 40 c_back
echo "c) client back $(elapsed "$tkill") s after the SIGKILL"
vm_check c-ping-again wait_for 10 vm_ping client "$VM_OVL_BROKER" 2
n_after=$(grep -c 'new attempt' "$W/client-b.log")
echo "c) reconnect attempts after the SIGKILL: $((n_after - n_before))"
vm_check c-no-reconnect-storm [ $((n_after - n_before)) -le 2 ]
vm_check c-one-tunnel-on-broker sh -c "[ \$(ip -n broker l2tp show tunnel | grep -c '^Tunnel ') -eq 1 ]"
vm_check c-broker-refused-nothing sh -c "! grep -q 'refused a tunnel' '$W/broker3.log'"

[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker1.log" "$W/broker2.log" "$W/broker3.log" "$W/client-b.log" "$W/client-hooks.log"
vm_done
