# In-VM part of `make bench-ports` (bench/port-cost/run.sh boots one VM per kernel with this):
# packets per second through ONE L2TP tunnel while N other connected UDP sockets (or L2TP
# tunnels) share its local address:port, for N in $TD_PORTS_N. Runs as root under dash.
#
# Setup: vm_topo_pair; in the broker namespace bench/port-cost/holder.js binds a listener, the
# measured tunnel (oldest socket on 198.51.100.1:8942, session interface l2tpm) and N others
# (SO_REUSEPORT, bound, connected, as the broker's tunnel sockets). In the client namespace
# build/bench/port-flood (bench/port-cost/flood.c) is the measured tunnel's client end: it sends
# L2TPv3 data frames of 128-byte Ethernet frames from 198.51.100.2:30000 as fast as it can, to a
# MAC that is not the broker's, so after decapsulation the broker drops them at once: what is
# measured is the tunnel's data path (UDP receive and socket lookup, L2TP session lookup and
# decapsulation, injection on l2tpm), counted by l2tpm's rx_packets over $TD_PORTS_SECONDS.
#
# Env: TD_PORTS_N (default "0 1000 5000 10000"), TD_PORTS_MODES (holder --others modes, each
# optionally with its own N list: mode[:n,n,...]; default "udp legacy:0,1000,2500": a legacy
# session costs ~50 ms to create under TCG), TD_PORTS_REPS (sweeps over the N list, default 3),
# TD_PORTS_SECONDS (window, default 5), VM_HOST_LOAD (printed).
# Output: RESULT lines on stdout; /run/vmout/table.md.
# vm-scenario-timeout: 3000
. "$(dirname "$0")/lib.sh"
VMTEST_SCENARIO=bench-ports

NS_LIST=${TD_PORTS_N:-0 1000 5000 10000}
MODES=${TD_PORTS_MODES:-udp legacy:0,1000,2500}
REPS=${TD_PORTS_REPS:-3}
SECS=${TD_PORTS_SECONDS:-5}
PORT=8942
PEER_PORT=30000
OUT=${VMOUT:-/run/vmout}
RAW=$OUT/results.txt
: > "$RAW"
KREL=$(uname -r)
# The 4-tuple hash adds udp*hash4* functions (those not inlined show up in kallsyms).
H4=$(grep -oE ' udp[a-z0-9_]*hash4[a-z0-9_]*' /proc/kallsyms | sort -u | tr -d ' ' | tr '\n' ' ')
echo "bench-ports: kernel $KREL, $(nproc) vCPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB," \
  "kallsyms udp*hash4*: ${H4:-none}; host load at start: ${VM_HOST_LOAD:-?}"

[ -x build/bench/port-flood ] || { echo "bench-ports: build/bench/port-flood missing (make bench-ports builds it)" >&2; exit 1; }
ulimit -n 40000 || { echo "bench-ports: cannot raise the fd limit" >&2; exit 1; }
vm_check topo vm_topo_pair || vm_done

# Packets the measured tunnel delivered: l2tpm's rx packets + rx drops (injection queue full),
# read through the holder's /proc entry (its namespace), without a process start in the window.
rx() { sed 's/:/ /' "/proc/$HOLDER/net/dev" | awk '$1 == "l2tpm" { print $3 + $5 }'; }
now() { date +%s.%N; }

# holder_start <mode>: starts the holder with its stdin on a fifo (fd 7 keeps it open).
holder_start() {
  rm -f /tmp/holder.in; mkfifo /tmp/holder.in
  # not through in_ns (a function: $! would be a subshell in the root namespace)
  ip netns exec broker node build/js/bench/port-cost/holder.js --local "$VM_BROKER_IP" --port "$PORT" \
    --peer "$VM_CLIENT_IP" --peer-port "$PEER_PORT" --others "$1" \
    < /tmp/holder.in > "$OUT/holder-$1.out" 2> "$OUT/holder-$1.err" &
  HOLDER=$!
  exec 7> /tmp/holder.in
}
# holder_resize <mode> <n>: grows or shrinks the other sockets to n; prints the ms it took.
holder_resize() {
  f=$OUT/holder-$1.out; before=$(wc -l < "$f")
  echo "$2" >&7
  wait_for 1500 sh -c "[ \$(wc -l < '$f') -gt $before ]" || return 1
  tail -n1 "$f" | awk -v n="$2" '$3 == n { print $4; ok = 1 } END { exit !ok }'
}
holder_stop() {
  exec 7>&-
  wait_for 600 sh -c "! kill -0 $HOLDER 2>/dev/null"
}
# Not under vm_check: that runs its command in a subshell, whose fd 7 is not the one that counts.
holder_started() { wait_for 120 grep -q '^holder: ready 0 ' "$OUT/holder-$1.out" || { tail -n3 "$OUT/holder-$1.err"; return 1; }; }
holder_gone() { ! kill -0 "$HOLDER" 2>/dev/null; }

FLOOD=build/bench/port-flood
# nice 19: when the receive path (softirq, ksoftirqd) has work it runs first, so the sender only
# fills the gaps and the figure is the receive path's capacity, not a scheduling race.
flood() { ip netns exec client nice -n 19 "$FLOOD" "$VM_CLIENT_IP" "$PEER_PORT" "$VM_BROKER_IP" "$PORT" 1 "$1" 128; }
# data_flows: a short flood reaches l2tpm.
data_flows() {
  a=$(rx); flood 0.5 || return 1; sleep 0.5; b=$(rx)
  echo "l2tpm rx_packets +$((b - a))"; [ $((b - a)) -gt 100 ]
}

# measure <mode> <n> <rep>: one window; prints a RESULT line.
measure() {
  flood $((SECS + 2)) > /tmp/flood.out 2>&1 &
  fpid=$!
  sleep 1
  r0=$(rx); t0=$(now)
  sleep "$SECS"
  r1=$(rx); t1=$(now)
  wait "$fpid"
  sent=$(sed -n 's/^port-flood: sent \([0-9]*\) packets in \([0-9.]*\) s.*/\1 \2/p' /tmp/flood.out)
  line=$(echo "$sent" | awk -v k="$KREL" -v m="$1" -v n="$2" -v rep="$3" -v r0="$r0" -v r1="$r1" \
    -v t0="$t0" -v t1="$t1" '{ dt = t1 - t0; txp = ($2 > 0) ? $1 / $2 : 0
      printf "RESULT kernel=%s mode=%s n=%d rep=%d rx_pps=%.0f tx_pps=%.0f seconds=%.2f", k, m, n, rep, (r1 - r0) / dt, txp, dt }')
  echo "$line vm_load=$(cut -d' ' -f1 /proc/loadavg)"
  echo "$line" >> "$RAW"
}

# sweep <list> <reps>: the N values up, down, up... (each repetition one sweep), so slow drift of
# the machine's speed falls on every N alike and the holder never rebuilds from scratch.
sweep() {
  r=1; up=$(echo "$1" | tr ',' ' '); down=$(echo "$up" | tr ' ' '\n' | sort -rn | tr '\n' ' ')
  while [ "$r" -le "$2" ]; do
    if [ $((r % 2)) = 1 ]; then l=$up; else l=$down; fi
    for n in $l; do echo "$r $n"; done
    r=$((r + 1))
  done
}

for spec in $MODES; do
  mode=${spec%%:*}; list=${spec#*:}; [ "$list" = "$spec" ] && list=$(echo "$NS_LIST" | tr ' ' ',')
  holder_start "$mode"
  vm_check "$mode/holder-start" holder_started "$mode" || { holder_stop; continue; }
  vm_check "$mode/l2tpm-up" ip -n broker link set l2tpm up || { holder_stop; continue; }
  vm_check "$mode/data-flows" data_flows || { holder_stop; continue; }
  ok=1
  for step in $(sweep "$list" "$REPS" | tr ' ' ':'); do
    rep=${step%%:*}; n=${step#*:}
    ms=$(holder_resize "$mode" "$n") || { vm_fail "$mode/resize-$n" "holder did not reach $n: $(tail -n2 "$OUT/holder-$mode.err")"; ok=0; break; }
    sockets=$(ip netns exec broker ss -Hun state established "( sport = :$PORT )" | wc -l)
    echo "bench-ports: $mode n=$n rep=$rep: ${ms} ms to resize; $sockets connected sockets on port $PORT;" \
      "MemAvailable $(awk '/MemAvailable/ {print int($2/1024)}' /proc/meminfo) MiB"
    echo "SETUP kernel=$KREL mode=$mode n=$n rep=$rep resize_ms=$ms sockets=$sockets" >> "$RAW"
    # the kernel deletes L2TP tunnels from a workqueue: wait until their interfaces are gone
    [ "$mode" = udp ] || wait_for 600 sh -c "[ \$(grep -c '^ *l2tpo' /proc/$HOLDER/net/dev) -eq $n ]" ||
      echo "bench-ports: $mode n=$n: the kernel still holds $(grep -c '^ *l2tpo' "/proc/$HOLDER/net/dev") interfaces"
    sleep 2
    measure "$mode" "$n" "$rep"
  done
  [ "$ok" = 1 ] && vm_pass "$mode/sweeps"
  holder_stop
  vm_check "$mode/holder-stop" holder_gone
done

# Table: per mode and N the median rx pps of the repetitions (min-max), the ratio to N=0, and the
# extra time per packet against N=0 (total and per other socket).
awk '
  /^SETUP/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); s[kv[1]] = kv[2] }
             if (s["rep"] == 1) grow[s["mode"], s["n"]] = s["resize_ms"] }
  /^RESULT/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); r[kv[1]] = kv[2] }
              k = r["mode"] SUBSEP r["n"]; c = ++cnt[k]; v[k, c] = r["rx_pps"]; tx[k] += r["tx_pps"]
              if (!(k in seen)) { seen[k] = 1; order[++no] = k }
              kern = r["kernel"] }
  function median(k, n,   i, j, t, a) {
    for (i = 1; i <= n; i++) a[i] = v[k, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    lo = a[1]; hi = a[n]
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    printf "kernel %s\n\n", kern
    print "| others | N | rx pps (median) | min-max | ratio to N=0 | extra us/packet | extra ns/packet per socket | sender pps | grow ms |"
    print "|---|---:|---:|---|---:|---:|---:|---:|---:|"
    for (o = 1; o <= no; o++) {
      k = order[o]; split(k, mn, SUBSEP); m = mn[1]; n = mn[2]
      med = median(k, cnt[k]); if (n == 0) base[m] = med
      ratio = (m in base && base[m] > 0) ? sprintf("%.3f", med / base[m]) : "-"
      extra = (m in base && med > 0 && n > 0) ? 1e6 / med - 1e6 / base[m] : 0
      per = (n > 0) ? sprintf("%.1f", extra * 1000 / n) : "-"
      ex = (n > 0) ? sprintf("%.2f", extra) : "-"
      printf "| %s | %d | %.0f | %.0f-%.0f | %s | %s | %s | %.0f | %s |\n", m, n, med, lo, hi, ratio,
        ex, per, tx[k] / cnt[k], grow[m, n]
    }
  }' "$RAW" | tee "$OUT/table.md"
vm_done
