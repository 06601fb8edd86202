# The kernel's removal of N l2tpeth tunnels (ip -batch), where the time goes: timings of
# TUNNEL_DELETE variants, RTM_DELLINK on an l2tpeth, a function_graph trace of the unregister
# path, perf. Run by bench/shutdown-model/vm-model.sh kdel; figures in docs/performance.md.
N=${N:-100}
O=/run/vmout
mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null
T=/sys/kernel/tracing
ip link add v0 type veth peer name v1; ip addr add 198.51.100.1/24 dev v0; ip link set v0 up; ip link set v1 up
now() { cut -d' ' -f1 /proc/uptime; }
mk() {
  : > /tmp/mk; i=1
  while [ $i -le $N ]; do
    echo "l2tp add tunnel tunnel_id $i peer_tunnel_id $i encap udp local 198.51.100.1 remote 198.51.100.2 udp_sport $((20000+i)) udp_dport 30000" >> /tmp/mk
    echo "l2tp add session tunnel_id $i session_id 1 peer_session_id 1 name l2e$i" >> /tmp/mk
    [ "$1" = up ] && echo "link set l2e$i up" >> /tmp/mk
    i=$((i+1))
  done
  ip -batch /tmp/mk
  : > /tmp/del; i=1; while [ $i -le $N ]; do echo "l2tp del tunnel tunnel_id $i" >> /tmp/del; i=$((i+1)); done
}
cnt() { ip l2tp show tunnel | grep -c '^Tunnel'; }
links() { ip -o link show type l2tp 2>/dev/null | wc -l; ip -o link | grep -c l2e; }
idle() { awk '/^cpu /{print $5+$6}' /proc/stat; }
# run <label>: delete all tunnels (pipelined by ip -batch: TUNNEL_DELETE only queues the work), poll until empty
run() {
  ip -ts monitor link > /tmp/mon.$1 2>&1 & mp=$!
  sleep 0.5
  i0=$(idle); t0=$(now)
  ip -batch /tmp/del
  t1=$(now)
  while [ "$(cnt)" != 0 ]; do sleep 0.02; done
  t2=$(now); i2=$(idle)
  sleep 0.3; kill $mp
  dl=$(grep -c Deleted /tmp/mon.$1)
  echo "KDEL $1: N=$N del-calls $(awk "BEGIN{print $t1-$t0}") s, kernel empty after $(awk "BEGIN{print $t2-$t0}") s; idle cpu share $(awk "BEGIN{printf \"%.2f\", ($i2-$i0)/100/(($t2-$t0)*2)}"); RTM_DELLINK seen $dl; first/last: $(grep Deleted /tmp/mon.$1 | sed -n '1p;$p' | cut -c1-40 | tr '\n' ' ')"
}
echo "KDEL kernel $(uname -r) cpus $(nproc)"
mk down; run down
mk up; run up
# RTM_DELLINK on an l2tpeth (no rtnl_link_ops in 6.1?)
mk down; echo "KDEL ip link del l2e1: $(ip link del l2e1 2>&1)"; ip -batch /tmp/del; while [ "$(cnt)" != 0 ]; do sleep 0.05; done
# session delete one by one (synchronous)
mk down
: > /tmp/sdel; i=1; while [ $i -le $N ]; do echo "l2tp del session tunnel_id $i session_id 1" >> /tmp/sdel; i=$((i+1)); done
t0=$(now); ip -batch /tmp/sdel; t1=$(now); echo "KDEL session-delete one by one: $(awk "BEGIN{print $t1-$t0}") s"
ip -batch /tmp/del; while [ "$(cnt)" != 0 ]; do sleep 0.05; done
# links set down first, then delete (interfaces up)
mk up
: > /tmp/ldown; i=1; while [ $i -le $N ]; do echo "link set l2e$i down" >> /tmp/ldown; i=$((i+1)); done
t0=$(now); ip -batch /tmp/ldown; t1=$(now); echo "KDEL links down first: $(awk "BEGIN{print $t1-$t0}") s"; run up-then-down
# where: function_graph durations of the unregister path
if [ -d $T ]; then
  mk down
  echo 0 > $T/tracing_on; echo function_graph > $T/current_tracer
  echo 'l2tp_eth_delete unregister_netdevice_many_notify synchronize_rcu_expedited synchronize_rcu rcu_barrier flush_all_backlogs netdev_run_todo netdev_wait_allrefs_any dev_close_many call_netdevice_notifiers rtnl_lock netdev_unregister_kobject' > $T/set_ftrace_filter 2>/tmp/ferr
  cat /tmp/ferr
  echo 16384 > $T/buffer_size_kb
  echo 1 > $T/tracing_on
  run traced
  echo 0 > $T/tracing_on
  cat $T/trace > $O/trace.txt
  # sum per function: lines like " 1)  # 1234.567 us |  synchronize_rcu_expedited();"
  awk -F'|' '/us/ && /\(\);|}/ { d=$1; gsub(/[^0-9.]/," ",d); n=split(d,a," "); v=a[n]; f=$2; gsub(/[ ;{}()]/,"",f); if (f=="") next; c[f]++; s[f]+=v; if (v>m[f]) m[f]=v } END { for (f in c) printf "KDEL trace %s: %d calls, total %.0f ms, avg %.2f ms, max %.1f ms\n", f, c[f], s[f]/1000, s[f]/c[f]/1000, m[f]/1000 }' $O/trace.txt
  echo nop > $T/current_tracer
  # rcu_expedited as a diagnostic (not something a broker may set)
  if [ -w /sys/kernel/rcu_expedited ]; then
    mk down; echo 1 > /sys/kernel/rcu_expedited; run rcu-expedited; echo 0 > /sys/kernel/rcu_expedited
  fi
fi
# perf profile of a removal
if command -v perf >/dev/null; then
  mk down
  perf record -e cpu-clock -a -g -o /tmp/perf.data -- sleep 6 > /tmp/perf.err 2>&1 & pp=$!
  sleep 0.5; run perf; wait $pp
  perf report -i /tmp/perf.data --stdio --no-children --sort sym 2>/dev/null | grep -v '^$' | head -60 > $O/perf.txt
  perf report -i /tmp/perf.data --stdio --no-children --sort comm 2>/dev/null | grep '%' | head -15 >> $O/perf.txt
  grep -E '^ +[0-9.]+%' $O/perf.txt | head -25 | sed 's/^/KDEL perf /'
fi
echo KDEL done
