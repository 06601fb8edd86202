# Test stand-in for OpenWrt's /lib/functions/procd.sh: instead of sending the service
# description to procd over ubus, it writes it to $PROCD_LOG (default /tmp/procd.out):
#   instance <name>
#     <param> [arg] [arg] ...     (one line per param, sorted by name; set replaces, append adds)
#   trigger config <name> | trigger interface <name>
# Each argument is bracketed so word-splitting mistakes show up.
PROCD_LOG="${PROCD_LOG:-/tmp/procd.out}"

_procd_render() {
	local out= a
	for a in "$@"; do out="$out [$a]"; done
	printf '%s' "$out"
}

procd_open_service() { echo "service $1" >>"$PROCD_LOG"; }
procd_close_service() { echo "end service" >>"$PROCD_LOG"; }

procd_open_instance() {
	[ -z "$_procd_instance" ] || echo "procd stub: instance $_procd_instance not closed" >>"$PROCD_LOG"
	_procd_instance="${1:-instance}"
	rm -rf /tmp/.procd_params
	mkdir -p /tmp/.procd_params
}

procd_set_param() {
	local key="$1"; shift
	[ -n "$_procd_instance" ] || { echo "procd stub: set_param $key outside an instance" >>"$PROCD_LOG"; return 1; }
	_procd_render "$@" >"/tmp/.procd_params/$key"
}

procd_append_param() {
	local key="$1"; shift
	[ -n "$_procd_instance" ] || { echo "procd stub: append_param $key outside an instance" >>"$PROCD_LOG"; return 1; }
	_procd_render "$@" >>"/tmp/.procd_params/$key"
}

procd_close_instance() {
	local f
	echo "instance $_procd_instance" >>"$PROCD_LOG"
	for f in $(ls /tmp/.procd_params | sort); do
		echo "  $f$(cat "/tmp/.procd_params/$f")" >>"$PROCD_LOG"
	done
	rm -rf /tmp/.procd_params
	_procd_instance=
}

procd_add_reload_trigger() {
	local c
	for c in "$@"; do echo "trigger config $c" >>"$PROCD_LOG"; done
}

procd_add_reload_interface_trigger() { echo "trigger interface $1" >>"$PROCD_LOG"; }
