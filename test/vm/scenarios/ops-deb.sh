# The Debian package in production shape: dpkg -i the .deb (into the VM's overlay root), verify
# the installed units, run the INSTALLED broker (/usr/bin, /usr/lib/tunneldigger-broker; cwd /)
# with the unit's capability bounding set, NoNewPrivileges and LimitNOFILE (setpriv; PID 1 here is
# not systemd) and a NOTIFY_SOCKET, bring a client up, then: scrape /metrics and check the values,
# ctl status/tunnels, drain/undrain (USAGE 0xFFFF), reload with a changed hook (ctl and SIGHUP),
# reload with a broken file and with a restart-only key, bad/idle control peers, ctl close with
# the new hook running, and a metrics scrape during shutdown. The tunnel survives all but close.
# Needs dist/tunneldigger-broker_<version>_amd64.deb (make deb; test/deb/run.sh builds it).
# dpkg uses its own admin dir (a copy of the status file, no file lists): reading the host's
# thousands of file lists over 9p takes minutes under TCG; the files still go to / as usual.
# vm-scenario-timeout: 600
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../td-lib.sh"

W=$TD_WORK
CFG=/etc/tunneldigger/broker.cfg
UNIT=/lib/systemd/system/tunneldigger-broker.service
DEB=$(ls -t "$TD_ROOT"/dist/tunneldigger-broker_*_amd64.deb 2>/dev/null | head -n 1)
M=127.0.0.1:9106
CTL="/usr/bin/tunneldigger-broker ctl"

vm_check deb-present [ -n "$DEB" ]
A=$W/dpkg-admin
mkdir -p "$A/info" "$A/updates" "$A/triggers" && cp /var/lib/dpkg/status "$A/status" && : > "$A/available"
vm_check dpkg-install sh -c "dpkg --admindir='$A' -i '$DEB' > '$W/dpkg.log' 2>&1"
vm_check installed-version sh -c "[ \"\$(cd / && /usr/bin/tunneldigger-broker --version)\" = \"tunneldigger-broker \$(dpkg-query --admindir='$A' -W -f='\${Version}' tunneldigger-broker)\" ]"
vm_check conffile-registered sh -c "dpkg-query --admindir='$A' -W -f='\${Conffiles}' tunneldigger-broker | grep -q '/etc/tunneldigger/broker.cfg'"
verify_units() { _o=$(systemd-analyze verify tunneldigger-broker.service tunneldigger-broker@edge.service 2>&1); [ -z "$_o" ] || { echo "$_o"; return 1; }; }
vm_check systemd-analyze-verify-installed verify_units

vm_check topo vm_topo_pair
td_hook_script "$W/up.sh" "$W/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
for h in predown down down2; do td_hook_script "$W/$h.sh" "$W/broker-hooks.log"; done
write_cfg() {
  td_broker_cfg "$CFG.new" port=8942 verbosity=INFO session.up="$W/up.sh" session.pre-down="$W/predown.sh" "$@" &&
  printf '\n[metrics]\nlisten=%s\n' "$M" >> "$CFG.new" && mv "$CFG.new" "$CFG"
}
vm_check config-written write_cfg session.down="$W/down.sh"
vm_check check-config sh -c "/usr/bin/tunneldigger-broker --check-config $CFG"

# sd_notify receiver
cat > "$W/notify.py" <<'EOF2'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a") as f:
    while True:
        f.write(s.recv(4096).decode() + "\n")
        f.flush()
EOF2
# (a Unix socket cannot live on the 9p-backed /run/vmout)
NS=/run/td-ops-notify.sock
rm -f "$NS"
/usr/bin/python3 "$W/notify.py" "$NS" "$W/notify.log" &
wait_for 5 test -S "$NS"

# the unit's CapabilityBoundingSet, as setpriv wants it: +net_admin,+net_raw,...
CAPS=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
NOFILE=$(sed -n 's/^LimitNOFILE=//p' "$UNIT")
start_installed() {
  (cd / && ulimit -n "$NOFILE" && NOTIFY_SOCKET="$NS" exec ip netns exec broker \
    setpriv --no-new-privs --inh-caps=-all --bounding-set=-all,"$CAPS" /usr/bin/tunneldigger-broker "$CFG") > "$W/broker.log" 2>&1 &
  TD_BROKER_PID=$!
  wait_for 30 grep -q 'broker started' "$W/broker.log"
}
echo "bounding set: $CAPS; LimitNOFILE $NOFILE"
td_check broker-start start_installed
vm_check ready-notified wait_for 10 grep -qx 'READY=1' "$W/notify.log"
# ( exec ip netns exec ... setpriv ... ) execs all the way down: the pid is node's
bpid=$TD_BROKER_PID
addon_maps() { grep tdnative "/proc/$bpid/maps" | head -n 2; ls -l "/proc/$bpid/exe"; grep tdnative "/proc/$bpid/maps" | grep -q '/usr/lib/tunneldigger-broker/node/tdnative.node'; }
vm_check runs-installed-addon addon_maps
vm_check no-build-tree-loaded sh -c "! grep -q '$TD_ROOT/build' /proc/$bpid/maps"
# chown 0, dac_override 1, fowner 3, net_bind_service 10, net_admin 12, net_raw 13
vm_check capabilities-bounded sh -c "grep -q '^NoNewPrivs:.*1' /proc/$bpid/status && grep -q '^CapBnd:.*000000000000340b' /proc/$bpid/status"

td_std_client
vm_check ping vm_ping client "$VM_OVL_BROKER" 3

# --- metrics ---
metric() { ip netns exec broker curl -sf "http://${2:-$M}/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
metric_is() { [ "$(metric "$1" "${3:-}")" = "$2" ]; }
vm_check metrics-tunnels-by-port metric_is 'tunneldigger_tunnels{port="8942"}' 1
vm_check metrics-created metric_is tunneldigger_tunnels_created_total 1
vm_check metrics-up-hook-ran wait_for 10 metric_is 'tunneldigger_hook_runs_total{hook="session.up"}' 1
vm_check metrics-prepare-counted sh -c "[ \$(ip netns exec broker curl -sf http://$M/metrics | awk '\$1 == \"tunneldigger_handshakes_total{type=\\\"prepare\\\"}\" {print \$2}') -ge 1 ]"
vm_check metrics-mtu-histogram sh -c "ip netns exec broker curl -sf http://$M/metrics | grep -q '^tunneldigger_tunnel_mtu_count 1$'"
vm_check metrics-process-fds sh -c "ip netns exec broker curl -sf http://$M/metrics | grep -q '^process_open_fds [0-9]'"
vm_check metrics-no-client-ip sh -c "! ip netns exec broker curl -sf http://$M/metrics | grep -q '$VM_CLIENT_IP\\|$TD_UUID'"
vm_check metrics-404 sh -c "[ \$(ip netns exec broker curl -s -o /dev/null -w '%{http_code}' http://$M/other) = 404 ]"

# --- ctl status / tunnels ---
vm_check ctl-status sh -c "$CTL status | grep -q '^tunnels: 1/16'"
vm_check ctl-tunnels sh -c "$CTL tunnels | grep -q '^100 .*$TD_UUID .*$VM_CLIENT_IP:'"
vm_check ctl-tunnels-json sh -c "$CTL tunnels --json | node -e 'let s=\"\";process.stdin.on(\"data\",d=>s+=d).on(\"end\",()=>{const r=JSON.parse(s);process.exit(r.length===1&&r[0].id===100&&r[0].mtu>0?0:1)})'"
vm_check ctl-socket-mode sh -c "[ \$(stat -c %a /run/tunneldigger-broker/broker.sock) = 600 ]"

# --- drain / undrain ---
USAGE_REQ='80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01'
vm_check ctl-drain sh -c "$CTL drain | grep -q draining"
usage_full() { td_udp client "$VM_BROKER_IP" 8942 "$USAGE_REQ" | grep -q '^80 73 a7 01 0a 02 ff ff'; }
vm_check drain-usage-ffff usage_full
vm_check drain-metric metric_is tunneldigger_draining 1
vm_check drain-tunnel-kept vm_ping client "$VM_OVL_BROKER" 2
vm_check ctl-undrain sh -c "$CTL undrain | grep -q 'admitting'"
usage_not_full() { td_udp client "$VM_BROKER_IP" 8942 "$USAGE_REQ" | grep -q '^80 73 a7 01 0a 02 0f ff'; }
vm_check undrain-usage-back usage_not_full

# --- reload: changed hook via ctl, verbosity via SIGHUP ---
vm_check cfg-new-hook write_cfg session.down="$W/down2.sh"
vm_check ctl-reload-hook sh -c "$CTL reload | grep -q 'hook sessionDown'"
write_cfg session.down="$W/down2.sh" verbosity=DEBUG
kill -HUP "$bpid"
vm_check sighup-reload wait_for 10 grep -q 'reload (SIGHUP): config .* re-read: log.verbosity info -> debug' "$W/broker.log"
vm_check reload-tunnel-kept sh -c "$CTL tunnels | grep -q '^100 '"
vm_check reload-ping vm_ping client "$VM_OVL_BROKER" 2

# --- reload: broken file, restart-only key ---
cp "$CFG" "$W/good.cfg"
printf '[broker]\naddress=not-an-ip\n' > "$CFG"
broken_ctl() { $CTL -s /run/tunneldigger-broker/broker.sock reload > "$W/ctl.out" 2>&1; _rc=$?; cat "$W/ctl.out"; [ $_rc = 1 ] && grep -q 'broker.address = "not-an-ip".*keeping the running config' "$W/ctl.out"; }
vm_check reload-broken-ctl broken_ctl
kill -HUP "$bpid"
vm_check reload-broken-sighup wait_for 10 grep -q 'reload (SIGHUP) failed: config broker.address = "not-an-ip"' "$W/broker.log"
vm_check broken-tunnel-kept vm_ping client "$VM_OVL_BROKER" 2
sed 's/^port=8942$/port=8942,8943/' "$W/good.cfg" > "$CFG"
vm_check reload-restart-key sh -c "$CTL reload | grep -q 'needs a restart (kept): broker.port'"
vm_check restart-key-warning grep -q 'WARNING reload (ctl reload): broker.port changed but need a restart' "$W/broker.log"
cp "$W/good.cfg" "$CFG"

# --- bad and idle control peers ---
bad_command() { $CTL frobnicate > "$W/ctl.out" 2>&1; _rc=$?; [ $_rc = 2 ] && grep -q 'unknown command "frobnicate"' "$W/ctl.out"; }
vm_check ctl-bad-command bad_command
vm_check raw-garbage-refused sh -c "printf 'x\001\002 y\n' | node -e \"const c=require('net').createConnection('/run/tunneldigger-broker/broker.sock');let s='';c.on('data',d=>s+=d).on('end',()=>{process.exit(JSON.parse(s).ok===false?0:1)});process.stdin.pipe(c);\""
node -e "const c=require('net').createConnection('/run/tunneldigger-broker/broker.sock');c.on('close',()=>{console.log('dropped');process.exit(0)});setTimeout(()=>process.exit(1),20000)" > "$W/idle.out" 2>&1 &
idle=$!
vm_check status-while-idle-peer sh -c "$CTL status | grep -q '^tunnels: 1/'"
idle_dropped() { wait "$idle"; grep -q dropped "$W/idle.out"; }
td_check idle-peer-dropped idle_dropped
vm_check idle-tunnel-kept vm_ping client "$VM_OVL_BROKER" 2

# --- ctl close: ERROR to the client, the reloaded down hook runs, the client comes back ---
vm_check ctl-close sh -c "$CTL close $TD_UUID | grep -q 'closed tunnel 100'"
vm_check close-new-down-hook td_hook_wait 10 "$W/broker-hooks.log" '^down2 100 '
vm_check close-client-told wait_for 10 grep -q 'other side asked to close (0x01)' "$W/client.log"
vm_check close-metric metric_is 'tunneldigger_tunnels_closed_total{reason="operator"}' 1
back() { $CTL tunnels | grep -q " $TD_UUID "; }
vm_check client-back wait_for 60 back
vm_check metrics-created-2 metric_is tunneldigger_tunnels_created_total 2

# --- shutdown with scrapes running ---
( i=0; while [ $i -lt 200 ]; do ip netns exec broker curl -s -m 2 -o /dev/null "http://$M/metrics"; i=$((i+1)); done ) &
scraper=$!
sleep 0.5
kill -TERM "$bpid"
stop_ok() { wait "$TD_BROKER_PID"; }
td_check shutdown-exit-0 stop_ok
kill "$scraper" 2>/dev/null
vm_check stopping-notified grep -qx 'STOPPING=1' "$W/notify.log"
vm_check status-notified grep -q '^STATUS=.* tunnels' "$W/notify.log"
vm_check socket-removed sh -c "! test -e /run/tunneldigger-broker/broker.sock"
vm_check log-lines-short sh -c "! awk 'length(\$0) > 1024' '$W/broker.log' | grep -q ."

[ "$VMTEST_FAILS" -eq 0 ] || td_dump "$W/broker.log" "$W/client.log" "$W/notify.log" "$W/dpkg.log"
vm_done
