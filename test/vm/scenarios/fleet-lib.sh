# Helpers for the e2e-many/-signals/-fuzz scenarios (sourced after lib.sh and td-lib.sh).
# run-scenarios.sh runs every scenarios/*.sh, this file included: run directly (not sourced, so
# $0 is this file) it does nothing and reports nothing.
case "$(basename "$0")" in fleet-lib.sh) exit 0 ;; esac

# fleet_topo <first> <last>: netns broker with bridge ul0 = 198.51.100.1/24; one netns c<i> per
# client i in first..last with ul0 = 198.51.100.<i>/24, a veth whose other end (v<i>) is a port of
# the broker's bridge. Batched: a process start costs ~0.5 s in the TCG guest.
fleet_topo() {
  vm_topo_clean
  for _i in $(seq "$1" "$2"); do echo "netns add c$_i"; done | ip -batch - || return 1
  _vm_ns broker || return 1
  {
    echo "link add ul0 type bridge"
    echo "addr add $VM_BROKER_IP/24 dev ul0"
    echo "link set ul0 up"
    for _i in $(seq "$1" "$2"); do
      echo "link add v$_i type veth peer name ul0 netns c$_i"
      echo "link set v$_i master ul0 up"
    done
  } | ip -n broker -batch - || return 1
  for _i in $(seq "$1" "$2"); do
    printf 'link set lo up\naddr add 198.51.100.%s/24 dev ul0\nlink set ul0 up\n' "$_i" | ip -n "c$_i" -batch - || return 1
  done
}

# fleet_client_hook <path> <log> <addr/prefix>: a client hook (`session.up|session.down|
# session.mtu-changed IF ...`) that logs each call as one line and, on session.up, sets IF up
# with the address (as netifd/the OpenWrt hook would). fleet_client_hook_text writes it without
# the chmod (shell builtins only), for callers writing many hooks.
fleet_client_hook_text() {
  printf '%s\n' '#!/bin/sh' 'PATH=/usr/sbin:/usr/bin:/sbin:/bin' "echo \"\$*\" >> '$2'" \
    "[ \"\$1\" = session.up ] && ip link set \"\$2\" up && ip addr add '$3' dev \"\$2\"" 'exit 0' > "$1"
}
fleet_client_hook() { fleet_client_hook_text "$@" && chmod +x "$1"; }

# fleet_counter <logfile> <name>: the value of counter <name> in the last "counters:" line (0 if absent).
fleet_counter() {
  _v=$(grep 'counters: ' "$1" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$2=\\([0-9]*\\)\$/\\1/p")
  echo "${_v:-0}"
}

# fleet_broker_counters <pid> <logfile>: SIGUSR1 the broker and wait until a new counters line is logged.
fleet_broker_counters() {
  _n=$(grep -c 'counters: ' "$2")
  kill -USR1 "$1" || return 1
  wait_for 10 sh -c "[ \$(grep -c 'counters: ' '$2') -gt $_n ]"
}

# fleet_do <name> <cmd...>: like vm_check, but runs cmd in this shell (not in a $(...) subshell),
# so variables it sets (TD_BROKER_PID, TD_CLIENT_PID) survive; its output goes to the transcript.
fleet_do() {
  _n=$1; shift
  if "$@"; then vm_pass "$_n"; return 0; fi
  vm_fail "$_n" "'$*' failed"
  return 1
}

# fleet_mark <label>: a timing line in the transcript (guest uptime and load, builtins only).
fleet_mark() {
  read -r _up _idle < /proc/uptime; read -r _l1 _l5 _l15 _rest < /proc/loadavg
  echo "mark $1 uptime=$_up load=$_l1"
}

# fleet_wait <timeout_s> <cmd...>: like wait_for, but polls once a second (with 20 clients the
# guest's CPU is scarce; wait_for's 5 polls/s cost noticeable time there).
fleet_wait() {
  _t=$1; shift
  _end=$(( $(date +%s) + _t ))
  while :; do
    "$@" >/dev/null 2>&1 && return 0
    [ "$(date +%s)" -ge "$_end" ] && return 1
    sleep 1
  done
}
