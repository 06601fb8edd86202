# tunneldigger helpers for VM scenarios: source after lib.sh (`. "$(dirname "$0")/../td-lib.sh"`).
# Runs under dash inside the VM, cwd = the repository root (run-scenarios.sh cds there).
#
#   td_broker_cfg <file> [key=value ...]   write an original-format l2tp_broker.cfg; defaults below,
#                                          any key of any section may be overridden by its name
#   td_start_broker <ns> <cfg> <log>       start bin/tunneldigger-broker in <ns>, wait for
#                                          "broker started" (TD_BROKER_START_S, 90 s); sets TD_BROKER_PID
#   td_stop_broker                         SIGTERM the broker and wait for it (status 0 = clean)
#   td_start_client <ns> <log> <args...>   start build/x86_64/tunneldigger <args> in <ns> (stdout+stderr
#                                          to <log>); sets TD_CLIENT_PID
#   td_stop_client                         SIGTERM the client and wait for it
#   td_wait_link <ns> <ifname> <timeout>   wait until the interface exists
#   td_wait_link_up <ns> <ifname> <timeout>  ... and is administratively up (set by a hook)
#   td_hook_script <path> <logfile> [addr/prefix]
#                                          write a hook recording every call (see td_hook_calls);
#                                          with an address, a `session.up` call (client: `session.up
#                                          IF`; broker: 9 args, IF = $3) sets IF up and adds it
#   td_hook_calls <logfile> [name]         one line per recorded call: `<name> arg1 arg2 ...`
#   td_hook_argv <logfile> <name> [n]      the args of the n-th call (default 1) of hook <name>,
#                                          one per line (name = basename of the hook path, no .sh)
#   td_hook_wait <timeout> <logfile> <regex>  wait until a td_hook_calls line matches <regex> (grep -E)
#   td_udp <ns> <host> <port> <hex> [timeout_ms]  send one datagram (hex, spaces allowed) from a
#                                          fresh UDP socket, print the first reply as hex "80 73 ..."
#                                          (nothing + status 1 on timeout, default 3000 ms)
#   td_link_mtu <ns> <ifname>              the interface MTU
#   td_dump <file...>                      print files with a header (for failure diagnostics)
#   td_check <name> <cmd...>               like vm_check, but runs <cmd> in the current shell (use it
#                                          for td_start_*/td_stop_*: vm_check runs a subshell, which
#                                          loses the pid / cannot wait for it)
#
# The usual set-up in two calls (each reports its own checks):
#   td_std_broker [key=value ...]          hooks up/predown/down/mtu (-> $TD_WORK/broker-hooks.log; up
#                                          adds $VM_OVL_BROKER), broker.cfg with them, broker in ns
#                                          broker (log $TD_WORK/broker.log)
#   td_std_client [ns] [extra args ...]    client-hook (-> $TD_WORK/client-hooks.log; adds
#                                          $VM_OVL_CLIENT), client `-f -u $TD_UUID -b
#                                          $VM_BROKER_IP:8942 -i l2tp0 -t 1 -s client-hook extra...`
#                                          in ns (default client; log $TD_WORK/client.log);
#                                          then waits (40 s) for l2tp0 and l2tp100-100 to be up
#
# Work files go to $TD_WORK (/run/vmout/<scenario>/, i.e. build/vm/out/<VM_NAME>/<scenario>/ on the
# host, so logs survive the VM).

TD_ROOT=${TD_ROOT:-$VM_ROOT}
# lib.sh derives VM_ROOT from a scenarios/ path; from elsewhere fall back to the cwd
[ -x "$TD_ROOT/bin/tunneldigger-broker" ] || TD_ROOT=$(pwd)
TD_CLIENT_BIN=${TD_CLIENT_BIN:-$TD_ROOT/build/x86_64/tunneldigger}
TD_BROKER_BIN=${TD_BROKER_BIN:-$TD_ROOT/bin/tunneldigger-broker}
if [ -d /run/vmout ]; then TD_WORK=${TD_WORK:-/run/vmout/$VMTEST_SCENARIO}; else TD_WORK=${TD_WORK:-/tmp/td-$VMTEST_SCENARIO}; fi
mkdir -p "$TD_WORK"
TD_BROKER_PID=
TD_CLIENT_PID=

td_broker_cfg() {
  _f=$1; shift
  cat > "$_f" <<EOF
[broker]
address=$VM_BROKER_IP
port=8942,53,123
interface=ul0
max_tunnels=16
tunnel_id_base=100
connection_rate_limit=0
pmtu=0

[log]
verbosity=DEBUG
log_ip_addresses=true

[hooks]
session.up=
session.pre-down=
session.down=
session.mtu-changed=
broker.connection-rate-limit=
EOF
  for _kv in "$@"; do
    _k=${_kv%%=*}
    grep -q "^$_k=" "$_f" || { echo "td_broker_cfg: unknown key '$_k'" >&2; return 1; }
    TD_K=$_k TD_V=${_kv#*=} awk 'index($0, ENVIRON["TD_K"] "=") == 1 { print ENVIRON["TD_K"] "=" ENVIRON["TD_V"]; next } { print }' \
      "$_f" > "$_f.new" && mv "$_f.new" "$_f" || return 1
  done
}

td_start_broker() {
  ip netns exec "$1" node "$TD_BROKER_BIN" "$2" > "$3" 2>&1 &
  TD_BROKER_PID=$!
  # a bound, not a pause: under TCG on a busy host Node's start-up alone has taken over 30 s
  wait_for "${TD_BROKER_START_S:-90}" grep -q 'broker started' "$3" && return 0
  echo "broker did not start within ${TD_BROKER_START_S:-90} s; log:" >&2; tail -n 5 "$3" >&2
  return 1
}

td_stop_broker() {
  [ -n "$TD_BROKER_PID" ] || return 0
  kill -TERM "$TD_BROKER_PID" 2>/dev/null
  wait "$TD_BROKER_PID"; _rc=$?
  TD_BROKER_PID=
  return $_rc
}

td_start_client() {
  _ns=$1; _log=$2; shift 2
  ip netns exec "$_ns" "$TD_CLIENT_BIN" "$@" > "$_log" 2>&1 &
  TD_CLIENT_PID=$!
  sleep 0.1
  kill -0 "$TD_CLIENT_PID" 2>/dev/null && return 0
  echo "client exited at once; log:" >&2; tail -n 5 "$_log" >&2
  return 1
}

td_stop_client() {
  [ -n "$TD_CLIENT_PID" ] || return 0
  kill -TERM "$TD_CLIENT_PID" 2>/dev/null
  wait "$TD_CLIENT_PID"; _rc=$?
  TD_CLIENT_PID=
  return $_rc
}

td_wait_link() { wait_for "$3" ip -n "$1" link show dev "$2"; }
_td_link_is_up() { ip -n "$1" -o link show dev "$2" 2>/dev/null | grep -q '<[^>]*\bUP\b'; }
td_wait_link_up() { wait_for "$3" _td_link_is_up "$1" "$2"; }
td_link_mtu() { vm_link_mtu "$1" "$2"; }

# Record format: "@@ <name> <argc>" then one line per argument.
td_hook_script() {
  cat > "$1" <<EOF
#!/bin/sh
PATH=/usr/sbin:/usr/bin:/sbin:/bin
log='$2'
addr='${3:-}'
n=\$(basename "\$0" .sh)
{ echo "@@ \$n \$#"; for a in "\$@"; do printf '%s\n' "\$a"; done; } >> "\$log"
if [ -n "\$addr" ]; then
  if [ "\$1" = session.up ]; then ifc=\$2
  elif [ \$# -eq 9 ]; then ifc=\$3
  else exit 0; fi
  ip link set "\$ifc" up && ip addr add "\$addr" dev "\$ifc"
fi
exit 0
EOF
  chmod +x "$1"
}

td_hook_calls() {
  [ -f "$1" ] || return 1
  awk -v want="${2:-}" '
    function flush() { if (name != "" && (want == "" || want == name)) print line }
    /^@@ / { flush(); name = $2; line = $2; next }
    { line = line " " $0 }
    END { flush() }' "$1"
}

td_hook_argv() {
  [ -f "$1" ] || return 1
  awk -v want="$2" -v nth="${3:-1}" '
    /^@@ / { k = ($2 == want) ? k + 1 : k; on = ($2 == want && k == nth); next }
    on { print }' "$1"
}

_td_hook_match() { td_hook_calls "$1" | grep -E -q "$2"; }
td_hook_wait() { wait_for "$1" _td_hook_match "$2" "$3"; }

td_udp() {
  _js=$TD_WORK/.td-udp.mjs
  [ -f "$_js" ] || cat > "$_js" <<'EOF'
// node td-udp.mjs host port hex timeout_ms: one datagram out, first reply printed as hex.
import dgram from 'node:dgram';
const [host, port, hex, ms] = process.argv.slice(2);
const s = dgram.createSocket('udp4');
const t = setTimeout(() => { s.close(); process.exit(1); }, Number(ms));
s.on('message', (m) => {
  clearTimeout(t);
  process.stdout.write([...m].map((b) => b.toString(16).padStart(2, '0')).join(' ') + '\n');
  s.close();
});
s.send(Buffer.from(hex.replace(/\s+/g, ''), 'hex'), Number(port), host);
EOF
  ip netns exec "$1" node "$_js" "$2" "$3" "$4" "${5:-3000}"
}

td_check() {
  _n=$1; shift
  "$@" > "$TD_WORK/.check.out" 2>&1; _rc=$?
  if [ "$_rc" -eq 0 ]; then vm_pass "$_n"; return 0; fi
  vm_fail "$_n" "'$*' exited $_rc: $(tail -n 3 "$TD_WORK/.check.out")"
  return 1
}

TD_UUID=${TD_UUID:-$VMTEST_SCENARIO}
td_std_broker() {
  td_hook_script "$TD_WORK/up.sh" "$TD_WORK/broker-hooks.log" "$VM_OVL_BROKER/$VM_OVL_PREFIX"
  for _h in predown down mtu; do td_hook_script "$TD_WORK/$_h.sh" "$TD_WORK/broker-hooks.log"; done
  td_broker_cfg "$TD_WORK/broker.cfg" session.up="$TD_WORK/up.sh" session.pre-down="$TD_WORK/predown.sh" \
    session.down="$TD_WORK/down.sh" session.mtu-changed="$TD_WORK/mtu.sh" "$@" &&
  td_check broker-start td_start_broker broker "$TD_WORK/broker.cfg" "$TD_WORK/broker.log"
}
td_std_client() {
  _cns=client; if [ $# -gt 0 ] && [ -e "/run/netns/$1" ]; then _cns=$1; shift; fi
  td_hook_script "$TD_WORK/client-hook.sh" "$TD_WORK/client-hooks.log" "$VM_OVL_CLIENT/$VM_OVL_PREFIX"
  td_check client-start td_start_client "$_cns" "$TD_WORK/client.log" \
    -f -u "$TD_UUID" -b "$VM_BROKER_IP:8942" -i l2tp0 -t 1 -s "$TD_WORK/client-hook.sh" "$@" &&
  vm_check client-l2tp0-up td_wait_link_up "$_cns" l2tp0 40 &&
  vm_check broker-l2tp100-100-up td_wait_link_up broker l2tp100-100 10
}

td_dump() {
  for _f in "$@"; do echo "----- $_f"; cat "$_f" 2>/dev/null; done
}
