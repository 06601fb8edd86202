# Test stand-in for OpenWrt's /lib/functions.sh (UCI part only), for busybox ash.
#
# Same contract as the real one: config_load parses /etc/config/<name> and calls
# config/option/list, which store CONFIG_<section>_<option> variables; a list option also gets
# _ITEM<n>/_LENGTH and its plain variable holds the items joined by spaces. Anonymous sections
# are named cfgNN. The real one gets its input from `uci export`; here uci_to_sh (awk) turns
# the UCI file syntax (quotes, concatenation, backslash escapes, comments) into the same calls.

UCI_CONFIG_DIR="${UCI_CONFIG_DIR:-/etc/config}"

append() {
	local var="$1" value="$2" sep="${3:- }"
	eval "export -- \"$var=\${$var:+\${$var}\${value:+\$sep}}\$value\""
}

config_set() {
	local section="$1" option="$2" value="$3"
	export -- "CONFIG_${section}_${option}=$value"
}

config() {
	local type="$1" name="$2"
	CONFIG_NUM_SECTIONS=$((CONFIG_NUM_SECTIONS + 1))
	[ -n "$name" ] || name="$(printf 'cfg%02x' "$CONFIG_NUM_SECTIONS")"
	append CONFIG_SECTIONS "$name"
	export -- "CONFIG_SECTION=$name"
	config_set "$name" TYPE "$type"
}

option() {
	config_set "$CONFIG_SECTION" "$1" "$2"
}

list() {
	local name="$1" value="$2" len
	config_get len "$CONFIG_SECTION" "${name}_LENGTH" 0
	len=$((len + 1))
	config_set "$CONFIG_SECTION" "${name}_ITEM$len" "$value"
	config_set "$CONFIG_SECTION" "${name}_LENGTH" "$len"
	append "CONFIG_${CONFIG_SECTION}_${name}" "$value" " "
}

# Prints shell calls (config/option/list) for a UCI file; values single-quoted for eval.
uci_to_sh() {
	awk '
	function q(s) { gsub(/\047/, "\047\\\047\047", s); return "\047" s "\047" }
	function fail(msg) { printf "uci parse error: %s:%d: %s\n", FILENAME, NR, msg > "/dev/stderr"; bad = 1 }
	{
		line = $0; n = 0; i = 1; L = length(line)
		while (i <= L) {
			c = substr(line, i, 1)
			if (c == " " || c == "\t" || c == "\r") { i++; continue }
			if (c == "#") break
			tok = ""
			while (i <= L) {
				c = substr(line, i, 1)
				if (c == " " || c == "\t" || c == "\r") break
				if (c == "\047") {
					j = index(substr(line, i + 1), "\047")
					if (!j) { fail("unterminated quote"); next }
					tok = tok substr(line, i + 1, j - 1); i += j + 1
				} else if (c == "\"") {
					i++
					while (i <= L && substr(line, i, 1) != "\"") {
						c = substr(line, i, 1)
						if (c == "\\" && i < L) { i++; c = substr(line, i, 1) }
						tok = tok c; i++
					}
					if (i > L) { fail("unterminated quote"); next }
					i++
				} else if (c == "\\" && i < L) {
					tok = tok substr(line, i + 1, 1); i += 2
				} else { tok = tok c; i++ }
			}
			t[++n] = tok
		}
		if (n == 0) next
		if (t[1] == "package") next
		if (t[1] == "config" && (n == 2 || n == 3)) { print "config " q(t[2]) " " q(n == 3 ? t[3] : ""); next }
		if ((t[1] == "option" || t[1] == "list") && (n == 2 || n == 3)) {
			if (t[2] !~ /^[A-Za-z0-9_]+$/) { fail("bad option name " t[2]); next }
			print t[1] " " q(t[2]) " " q(t[3]); next
		}
		fail("unexpected line")
	}
	END { exit bad }' "$1"
}

config_load() {
	local file="$UCI_CONFIG_DIR/$1" calls
	unset CONFIG_SECTION
	export CONFIG_SECTIONS= CONFIG_NUM_SECTIONS=0
	[ -f "$file" ] || return 1
	calls="$(uci_to_sh "$file")" || return 1
	eval "$calls"
}

config_get() {
	case "$3" in
		'') eval "echo \"\${CONFIG_${1}_${2}}\"" ;;
		*) eval "export -- \"$1=\${CONFIG_${2}_${3}:-\$4}\"" ;;
	esac
}

config_get_bool() {
	local _tmp
	config_get _tmp "$2" "$3" "$4"
	case "$_tmp" in
		1|on|true|yes|enabled) _tmp=1 ;;
		0|off|false|no|disabled) _tmp=0 ;;
		*) _tmp="$4" ;;
	esac
	export -- "$1=$_tmp"
}

config_foreach() {
	local fn="$1" type="$2" section stype
	[ "$#" -ge 1 ] && shift
	[ "$#" -ge 1 ] && shift
	for section in $CONFIG_SECTIONS; do
		config_get stype "$section" TYPE
		[ -n "$type" ] && [ "$type" != "$stype" ] && continue
		"$fn" "$section" "$@"
	done
}

config_list_foreach() {
	local section="$1" option="$2" fn="$3" len c=1 val
	shift 3
	config_get len "$section" "${option}_LENGTH"
	[ -n "$len" ] || return 0
	while [ "$c" -le "$len" ]; do
		config_get val "$section" "${option}_ITEM$c"
		"$fn" "$val" "$@"
		c=$((c + 1))
	done
}

# Package-script helpers: record the call so the test can check the ipk's postinst/prerm.
default_postinst() { echo "default_postinst $*" >>/tmp/pkgscripts.log; }
default_prerm() { echo "default_prerm $*" >>/tmp/pkgscripts.log; }
