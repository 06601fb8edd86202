# Test stand-in for OpenWrt's /lib/functions/network.sh: network_get_device reads a fake
# netifd state table, /etc/test-network ("<logical interface> <l3 device>" per line), instead of
# `ubus call network.interface dump`. Like the real one it fails (and leaves the variable empty)
# for an interface that is unknown or has no device.
network_get_device() {
	local __var="$1" __iface="$2" __name __dev
	eval "$__var="
	[ -f /etc/test-network ] || return 1
	while read -r __name __dev; do
		if [ "$__name" = "$__iface" ] && [ -n "$__dev" ]; then
			eval "$__var=\"\$__dev\""
			return 0
		fi
	done </etc/test-network
	return 1
}
