#!/usr/bin/env bash
# OpenWrt package tests. Prints "VMTEST PASS <name>" / "VMTEST FAIL <name>: why" (counted by
# test/run.sh).
#  * init script: runs under busybox ash (OpenWrt's shell) in a throw-away chroot with
#    stand-ins for rc.common, /lib/functions.sh (real UCI file parsing), network.sh and procd.sh
#    (test/openwrt/stubs/); the procd stand-in writes the instances it is given to /tmp/procd.out.
#  * ipk: built by openwrt/ipk-build.sh from dummy binaries, unpacked with plain tar.
# Needs root (chroot) and a static busybox (Debian busybox-static).
set -u
cd "$(dirname "$0")/../.."
TOP=$PWD
STUBS=$TOP/test/openwrt/stubs
INIT=$TOP/openwrt/files/tunneldigger.init
DEFAULT_CONFIG=$TOP/openwrt/files/tunneldigger.config
WORK=$(mktemp -d /tmp/td-openwrt-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

pass() { echo "VMTEST PASS $1"; }
fail() { echo "VMTEST FAIL $1: $2"; }
# check NAME EXPECTED_FILE ACTUAL_FILE: exact comparison, diff on failure.
check() {
  if diff -u "$2" "$3" >"$WORK/diff" 2>&1; then pass "$1"; else
    fail "$1" "output differs from expected (diff below)"; sed 's/^/    /' "$WORK/diff"; fi
}

BUSYBOX=$(command -v busybox || true)
if [ "$(id -u)" != 0 ] || [ -z "$BUSYBOX" ] || ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
  fail openwrt-setup "needs root and a static busybox (apt-get install busybox-static)"
  exit 1
fi

# ---- chroot with OpenWrt's shell environment -----------------------------------------------
# new_root NAME CONFIG_FILE [NETWORK_TABLE]: fresh root at $WORK/NAME with the init script.
new_root() {
  local r=$WORK/$1
  rm -rf "$r"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,lib/functions,etc/config,etc/init.d,tmp,dev}
  mknod -m 0666 "$r/dev/null" c 1 3
  cp "$BUSYBOX" "$r/bin/busybox"
  chroot "$r" /bin/busybox --install -s
  cp "$STUBS/functions.sh" "$r/lib/functions.sh"
  cp "$STUBS/functions/network.sh" "$STUBS/functions/procd.sh" "$r/lib/functions/"
  cp "$STUBS/rc.common" "$r/etc/rc.common"
  install -m 0755 "$INIT" "$r/etc/init.d/tunneldigger"
  cp "$2" "$r/etc/config/tunneldigger"
  printf '%s' "${3:-}" >"$r/etc/test-network"
  echo "$r"
}
in_root() { local r=$1; shift; env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$r" "$@"; }
# run_init ROOT [ACTION]: procd description -> ROOT/tmp/procd.out, stderr -> ROOT/tmp/stderr.
run_init() {
  in_root "$1" /bin/sh /etc/rc.common /etc/init.d/tunneldigger "${2:-start}" 2>"$1/tmp/stderr"
}
# instance_cmd ROOT NAME: the bracketed command line of one instance.
instance_cmd() {
  awk -v n="instance $2" '$0 == n { on = 1; next } /^[^ ]/ { on = 0 } on && $1 == "command" { sub(/^  command /, ""); print }' "$1/tmp/procd.out"
}

# ---- init: two enabled sections around a disabled one --------------------------------------
cat >"$WORK/two.cfg" <<'EOF'
# Gluon-style section with every option
config broker 'mesh_vpn'
	option enabled '1'
	list address 'broker1.example.net:10042'
	list address '198.51.100.7:53'
	option uuid 'c0ffee000001'
	option interface 'mesh-vpn'
	option limit_bw_down '2048'
	option hook_script '/lib/tunneldigger/hook script.sh'
	option bind_interface 'wan'
	option group 'gluon-mesh-vpn'
	option broker_selection 'usage'

config broker 'off'
	option enabled '0'
	list address '203.0.113.9:8942'
	option uuid 'disabled'
	option interface 'l2tp9'

config broker
	option address '203.0.113.1:8942'   # option instead of list, double quotes, bare words
	option uuid "node 2"
	option interface l2tp1
	option bind_interface 'eth9'
	option broker_selection random
EOF
cat >"$WORK/two.expected" <<'EOF'
service tunneldigger
instance tunneldigger_1
  command [/usr/bin/tunneldigger] [-f] [-u] [c0ffee000001] [-i] [mesh-vpn] [-t] [1] [-b] [broker1.example.net:10042] [-b] [198.51.100.7:53] [-L] [2048] [-s] [/lib/tunneldigger/hook script.sh] [-I] [eth0.2] [-a]
  group [gluon-mesh-vpn]
  respawn
  stderr [1]
  stdout [1]
instance tunneldigger_2
  command [/usr/bin/tunneldigger] [-f] [-u] [node 2] [-i] [l2tp1] [-t] [2] [-b] [203.0.113.1:8942] [-I] [eth9] [-r]
  respawn
  stderr [1]
  stdout [1]
trigger config tunneldigger
trigger interface wan
trigger interface eth9
end service
EOF
r=$(new_root two "$WORK/two.cfg" $'lan br-lan\nwan eth0.2\n')
if run_init "$r"; then
  check init-two-enabled-one-disabled "$WORK/two.expected" "$r/tmp/procd.out"
  if [ -s "$r/tmp/stderr" ]; then fail init-no-warnings "unexpected stderr: $(head -c 300 "$r/tmp/stderr")"
  else pass init-no-warnings; fi
else
  fail init-two-enabled-one-disabled "init script exited non-zero: $(cat "$r/tmp/stderr")"
fi

# reload re-runs start (procd restarts only changed instances), same description
r=$(new_root reload "$WORK/two.cfg" $'wan eth0.2\n')
if run_init "$r" reload; then check init-reload "$WORK/two.expected" "$r/tmp/procd.out"
else fail init-reload "exit non-zero: $(cat "$r/tmp/stderr")"; fi

# ---- init: IPv6 broker addresses pass through verbatim -----------------------------------------
# '[2001:db8::1]:8942' is also a shell glob (a bracket expression, then ":8942"): with a file
# "2:8942" in the init script's directory an unquoted, globbing loop would pass that file's name.
printf "config broker\n\tlist address '[2001:db8::1]:8942'\n\tlist address 'broker.example:8942'\n\toption uuid 'u6'\n\toption interface 'l2tp0'\n" >"$WORK/v6.cfg"
r=$(new_root v6 "$WORK/v6.cfg")
: >"$r/2:8942"
run_init "$r"
cmd=$(instance_cmd "$r" tunneldigger_1)
if [ "$cmd" = "[/usr/bin/tunneldigger] [-f] [-u] [u6] [-i] [l2tp0] [-t] [1] [-b] [[2001:db8::1]:8942] [-b] [broker.example:8942]" ]; then
  pass init-ipv6-address-verbatim
else fail init-ipv6-address-verbatim "command: $cmd"; fi

# ---- init: bind_interface resolution ---------------------------------------------------------
bind_case() { # NAME BIND_INTERFACE NETWORK_TABLE EXPECTED_DEVICE
  printf "config broker\n\tlist address '198.51.100.1:8942'\n\toption uuid 'u'\n\toption interface 'l2tp0'\n\toption bind_interface '%s'\n" "$2" >"$WORK/bind.cfg"
  local r got
  r=$(new_root "bind-$1" "$WORK/bind.cfg" "$3")
  run_init "$r"
  got=$(instance_cmd "$r" tunneldigger_1)
  if [ "$got" = "[/usr/bin/tunneldigger] [-f] [-u] [u] [-i] [l2tp0] [-t] [1] [-b] [198.51.100.1:8942] [-I] [$4]" ]; then
    pass "init-bind-$1"; else fail "init-bind-$1" "got: $got"; fi
}
bind_case logical-network wan $'wan eth0.2\nwan6 eth0.2\n' eth0.2
bind_case unknown-literal eth1 $'wan eth0.2\n' eth1
bind_case network-down wan '' wan

# ---- init: broker_selection mapping ----------------------------------------------------------
sel_fail=
for pair in usage:-a first:-g random:-r :none bogus:none; do
  val=${pair%%:*} flag=${pair#*:}
  { printf "config broker\n\tlist address '198.51.100.1:8942'\n\toption uuid 'u'\n\toption interface 'l2tp0'\n"
    [ -n "$val" ] && printf "\toption broker_selection '%s'\n" "$val"; } >"$WORK/sel.cfg"
  r=$(new_root "sel-$flag" "$WORK/sel.cfg")
  run_init "$r"
  got=$(instance_cmd "$r" tunneldigger_1)
  want="[/usr/bin/tunneldigger] [-f] [-u] [u] [-i] [l2tp0] [-t] [1] [-b] [198.51.100.1:8942]"
  [ "$flag" = none ] || want="$want [$flag]"
  [ "$got" = "$want" ] || sel_fail="$sel_fail; '$val' gave: $got"
  if [ "$val" = bogus ]; then
    grep -q "section 'cfg01': unknown broker_selection 'bogus'" "$r/tmp/stderr" \
      || sel_fail="$sel_fail; no warning for 'bogus' (stderr: $(cat "$r/tmp/stderr"))"
  elif [ -s "$r/tmp/stderr" ]; then sel_fail="$sel_fail; '$val' warned: $(cat "$r/tmp/stderr")"; fi
done
if [ -z "$sel_fail" ]; then pass init-broker-selection; else fail init-broker-selection "${sel_fail#; }"; fi

# ---- init: hook_mtu_changed (extension) -> -m, only with a hook_script -----------------------
mtu_fail=
for pair in '1:/lib/td-hook:-m' 'yes:/lib/td-hook:-m' '0:/lib/td-hook:none' ':/lib/td-hook:none' '1::warn'; do
  val=${pair%%:*} rest=${pair#*:} hook=${rest%%:*} flag=${rest#*:}
  { printf "config broker\n\tlist address '198.51.100.1:8942'\n\toption uuid 'u'\n\toption interface 'l2tp0'\n"
    [ -n "$hook" ] && printf "\toption hook_script '%s'\n" "$hook"
    [ -n "$val" ] && printf "\toption hook_mtu_changed '%s'\n" "$val"; } >"$WORK/mtu.cfg"
  r=$(new_root "mtu-$val-$flag" "$WORK/mtu.cfg")
  run_init "$r"
  got=$(instance_cmd "$r" tunneldigger_1)
  want="[/usr/bin/tunneldigger] [-f] [-u] [u] [-i] [l2tp0] [-t] [1] [-b] [198.51.100.1:8942]"
  [ -n "$hook" ] && want="$want [-s] [$hook]"
  [ "$flag" = -m ] && want="$want [-m]"
  [ "$got" = "$want" ] || mtu_fail="$mtu_fail; hook_mtu_changed '$val' hook '$hook' gave: $got"
  if [ "$flag" = warn ]; then
    grep -q "section 'cfg01': hook_mtu_changed is set but hook_script is not; ignored" "$r/tmp/stderr" \
      || mtu_fail="$mtu_fail; no warning without hook_script (stderr: $(cat "$r/tmp/stderr"))"
  elif [ -s "$r/tmp/stderr" ]; then mtu_fail="$mtu_fail; '$val' warned: $(cat "$r/tmp/stderr")"; fi
done
if [ -z "$mtu_fail" ]; then pass init-hook-mtu-changed; else fail init-hook-mtu-changed "${mtu_fail#; }"; fi

# ---- init: misconfigured / disabled sections do not use up ids -------------------------------
cat >"$WORK/mis.cfg" <<'EOF'
config broker 'nouuid'
	list address '198.51.100.1:8942'
	option interface 'l2tp0'

config broker 'noiface'
	list address '198.51.100.1:8942'
	option uuid 'a'

config broker 'noaddr'
	option uuid 'b'
	option interface 'l2tp2'

config broker 'no'
	option enabled 'no'
	list address '198.51.100.1:8942'
	option uuid 'c'
	option interface 'l2tp3'

config broker 'off'
	option enabled 'off'
	list address '198.51.100.1:8942'
	option uuid 'c'
	option interface 'l2tp3'

config other 'wrongtype'
	list address '198.51.100.1:8942'
	option uuid 'd'
	option interface 'l2tp4'

config broker 'good'
	option enabled 'yes'
	list address '198.51.100.2:8942'
	option uuid 'e'
	option interface 'l2tp5'
	option limit_bw_down 'fast'
EOF
r=$(new_root mis "$WORK/mis.cfg")
run_init "$r"
got=$(grep -c '^instance' "$r/tmp/procd.out")
cmd=$(instance_cmd "$r" tunneldigger_1)
errs=
[ "$got" = 1 ] || errs="$errs; $got instances instead of 1"
[ "$cmd" = "[/usr/bin/tunneldigger] [-f] [-u] [e] [-i] [l2tp5] [-t] [1] [-b] [198.51.100.2:8942]" ] \
  || errs="$errs; tunneldigger_1 command: $cmd"
for w in "section 'nouuid': option uuid is not set" "section 'noiface': option interface is not set" \
         "section 'noaddr': no broker address" "section 'good': limit_bw_down 'fast' is not a number"; do
  grep -qF "tunneldigger: $w" "$r/tmp/stderr" || errs="$errs; missing warning: $w"
done
[ "$(wc -l <"$r/tmp/stderr")" = 4 ] || errs="$errs; expected 4 warning lines, got: $(cat "$r/tmp/stderr")"
if [ -z "$errs" ]; then pass init-misconfigured-skipped; else fail init-misconfigured-skipped "${errs#; }"; fi

# ---- init: shipped default config -------------------------------------------------------------
r=$(new_root default "$DEFAULT_CONFIG")
run_init "$r"
printf 'service tunneldigger\ntrigger config tunneldigger\nend service\n' >"$WORK/default.expected"
check init-default-config-disabled "$WORK/default.expected" "$r/tmp/procd.out"

sed "s/option enabled '0'/option enabled '1'/" "$DEFAULT_CONFIG" >"$WORK/default-on.cfg"
r=$(new_root default-on "$WORK/default-on.cfg")
run_init "$r"
got=$(instance_cmd "$r" tunneldigger_1)
want="[/usr/bin/tunneldigger] [-f] [-u] [abcd] [-i] [l2tp0] [-t] [1] [-b] [x.y.z.w:8942] [-b] [x.y.z.w:53] [-b] [x.y.z.w:123] [-L] [1024] [-a]"
if [ "$got" = "$want" ]; then pass init-default-config-enabled; else fail init-default-config-enabled "got: $got"; fi

# exact default file (the original package's config.default)
printf "config broker\n\tlist address 'x.y.z.w:8942'\n\tlist address 'x.y.z.w:53'\n\tlist address 'x.y.z.w:123'\n\toption uuid 'abcd'\n\toption interface 'l2tp0'\n\toption limit_bw_down '1024'\n\toption broker_selection 'usage'\n\toption enabled '0'\n" >"$WORK/orig.cfg"
check default-config-matches-original "$WORK/orig.cfg" "$DEFAULT_CONFIG"

# ---- stand-in UCI parser sanity (so the init tests above mean something) ---------------------
cat >"$WORK/uci.cfg" <<'EOF'
package tunneldigger
config broker "named"	# comment
	option a 'x y'
	option b "q\"uo"'te'
	option c bare\ word
	list l 'one'
	list l "two three"
# full-line comment
config broker
	option a ''
EOF
r=$(new_root uci "$WORK/uci.cfg")
in_root "$r" /bin/sh -c '. /lib/functions.sh; config_load tunneldigger || exit 1
  for s in $CONFIG_SECTIONS; do config_get t $s TYPE; echo "$s $t"; done
  config_get a named a; config_get b named b; config_get c named c; config_get l named l
  config_get n named l_LENGTH; config_get_bool e named missing 1
  printf "[%s]\n" "$a" "$b" "$c" "$l" "$n" "$e"
  show() { echo "<$1>$2"; }; config_list_foreach named l show ""' >"$WORK/uci.out" 2>&1
printf 'named broker\ncfg02 broker\n[x y]\n[q"uote]\n[bare word]\n[one two three]\n[2]\n[1]\n<one>\n<two three>\n' >"$WORK/uci.expected"
check stub-uci-parser "$WORK/uci.expected" "$WORK/uci.out"

# ---- UCI schema: every option of the original package (spec §6.4) is read by the init ---------
# (plus our documented extensions, which the shipped default config leaves out)
EXTENSIONS='hook_mtu_changed'
schema_errs=
for opt in enabled address uuid interface limit_bw_down hook_script bind_interface group broker_selection; do
  grep -Eq "config_get(_bool)? [a-z_]+ \"\\\$section\" $opt( |\$)" "$INIT" || schema_errs="$schema_errs $opt"
done
extra=$(grep -Eo 'config_get(_bool)? [a-z_]+ "\$section" [a-z_]+' "$INIT" | awk '{print $4}' | sort -u \
  | grep -vxE "enabled|address|uuid|interface|limit_bw_down|hook_script|bind_interface|group|broker_selection|$EXTENSIONS" || true)
[ -z "$extra" ] || schema_errs="$schema_errs (unknown:$(echo $extra))"
cfg_opts=$(awk '$1 == "option" || $1 == "list" {print $2}' "$DEFAULT_CONFIG" | sort -u \
  | grep -vxE 'enabled|address|uuid|interface|limit_bw_down|hook_script|bind_interface|group|broker_selection' || true)
[ -z "$cfg_opts" ] || schema_errs="$schema_errs (default config has unknown:$(echo $cfg_opts))"
if [ -z "$schema_errs" ]; then pass uci-schema-matches-original; else fail uci-schema-matches-original "not handled:$schema_errs"; fi

# ---- init script header and shell syntax -------------------------------------------------------
hdr_errs=
[ "$(head -n1 "$INIT")" = '#!/bin/sh /etc/rc.common' ] || hdr_errs="$hdr_errs shebang"
grep -qx 'START=90' "$INIT" || hdr_errs="$hdr_errs START=90"
grep -qx 'USE_PROCD=1' "$INIT" || hdr_errs="$hdr_errs USE_PROCD=1"
"$BUSYBOX" sh -n "$INIT" 2>"$WORK/syn" || hdr_errs="$hdr_errs ash-syntax($(cat "$WORK/syn"))"
if [ -z "$hdr_errs" ]; then pass init-header-syntax; else fail init-header-syntax "$hdr_errs"; fi

# openwrt/Makefile (the feed package) and its `make dist` source: test/openwrt/feed.sh
if ! make -n openwrt-client TD_OUT="$WORK/x" TD_TARGET_CC=false >/dev/null 2>&1; then
  echo "note: the top-level Makefile has no openwrt-client target yet (contract: openwrt/README.md)"
fi

# ---- ipk -------------------------------------------------------------------------------------
IPK_ENV=(SOURCE_DATE_EPOCH=1700000000 BUDGET_KIB=230)
head -c 150000 /dev/urandom >"$WORK/dummy-bin"
mkdir -p "$WORK/dist1" "$WORK/dist2"
if env "${IPK_ENV[@]}" BIN="$WORK/dummy-bin" OUT_DIR="$WORK/dist1" openwrt/ipk-build.sh >"$WORK/ipk1.log" 2>&1; then
  ipk=$(ls "$WORK"/dist1/*.ipk 2>/dev/null)
  version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
  errs=
  [ "$ipk" = "$WORK/dist1/tunneldigger_${version}-r1_mips_24kc.ipk" ] || errs="$errs; file name: $ipk"
  file -b "$ipk" | grep -q '^gzip compressed data' || errs="$errs; outer file is not gzip: $(file -b "$ipk")"
  u=$WORK/unpack; mkdir -p "$u/ctrl" "$u/data"
  members=$(tar -tzf "$ipk" | tr '\n' ' ')
  [ "$members" = "./debian-binary ./control.tar.gz ./data.tar.gz " ] || errs="$errs; outer members: $members"
  tar -xzf "$ipk" -C "$u"
  [ "$(od -An -c "$u/debian-binary" | tr -s ' ')" = " 2 . 0 \n" ] || errs="$errs; debian-binary: $(od -An -c "$u/debian-binary")"
  tar -xzf "$u/control.tar.gz" -C "$u/ctrl"
  tar -xzf "$u/data.tar.gz" -C "$u/data"
  c=$u/ctrl/control
  field() { sed -n "s/^$1: //p" "$c"; }
  [ "$(field Package)" = tunneldigger ] || errs="$errs; Package: $(field Package)"
  [ "$(field Version)" = "${version}-r1" ] || errs="$errs; Version: $(field Version)"
  [ "$(field Depends)" = "libc, kmod-l2tp, kmod-l2tp-eth" ] || errs="$errs; Depends: $(field Depends)"
  [ "$(field Architecture)" = mips_24kc ] || errs="$errs; Architecture: $(field Architecture)"
  [ "$(field Section)" = net ] || errs="$errs; Section: $(field Section)"
  [ "$(field License)" = AGPL-3.0-or-later ] || errs="$errs; License: $(field License)"
  [ -n "$(field Source)" ] && [ -n "$(field Description)" ] || errs="$errs; Source/Description missing"
  isz=$(find "$u/data" -type f -printf '%s\n' | awk '{s+=$1} END {print s}')
  [ "$(field Installed-Size)" = "$isz" ] || errs="$errs; Installed-Size $(field Installed-Size) != $isz"
  grep -q 'kmod-l2tp-ip' "$c" && errs="$errs; depends on kmod-l2tp-ip"
  [ "$(cat "$u/ctrl/conffiles")" = /etc/config/tunneldigger ] || errs="$errs; conffiles: $(cat "$u/ctrl/conffiles")"
  # modes, owners, paths inside data.tar.gz
  listing=$(tar --numeric-owner -tvzf "$u/data.tar.gz" | awk '$1 !~ /^d/ {print $1, $2, $6}' | sort)
  want_listing=$'-rw-r--r-- 0/0 ./etc/config/tunneldigger\n-rwxr-xr-x 0/0 ./etc/init.d/tunneldigger\n-rwxr-xr-x 0/0 ./usr/bin/tunneldigger'
  [ "$listing" = "$want_listing" ] || errs="$errs; data listing: $listing"
  tar --numeric-owner -tvzf "$u/control.tar.gz" | awk '{print $1, $2, $6}' | sort >"$WORK/ctl.list"
  printf '%s\n' 'drwxr-xr-x 0/0 ./' '-rw-r--r-- 0/0 ./conffiles' '-rw-r--r-- 0/0 ./control' \
    '-rwxr-xr-x 0/0 ./postinst' '-rwxr-xr-x 0/0 ./prerm' | sort >"$WORK/ctl.want"
  cmp -s "$WORK/ctl.list" "$WORK/ctl.want" || errs="$errs; control listing: $(tr '\n' ',' <"$WORK/ctl.list")"
  [ "$(tar -tvzf "$ipk" | awk '{print $4}' | sort -u)" = 2023-11-14 ] || errs="$errs; mtime not SOURCE_DATE_EPOCH"
  cmp -s "$u/data/usr/bin/tunneldigger" "$WORK/dummy-bin" || errs="$errs; binary content differs"
  cmp -s "$u/data/etc/init.d/tunneldigger" "$INIT" || errs="$errs; init content differs"
  cmp -s "$u/data/etc/config/tunneldigger" "$DEFAULT_CONFIG" || errs="$errs; config content differs"
  # size report
  grep -q "^ipk-build: binary .*: 150000 bytes stripped, [0-9]* bytes xz -9$" "$WORK/ipk1.log" \
    || errs="$errs; no binary/xz size line"
  grep -q "^ipk-build: .*\.ipk: $(stat -c %s "$ipk") bytes (budget 235520 bytes" "$WORK/ipk1.log" \
    || errs="$errs; no ipk size line"
  if [ -z "$errs" ]; then pass ipk-layout; else fail ipk-layout "${errs#; }"; fi

  # same inputs -> same bytes
  env "${IPK_ENV[@]}" BIN="$WORK/dummy-bin" OUT_DIR="$WORK/dist2" openwrt/ipk-build.sh >/dev/null 2>&1
  if cmp -s "$ipk" "$WORK/dist2/$(basename "$ipk")"; then pass ipk-reproducible
  else fail ipk-reproducible "two builds of the same input differ"; fi

  # package scripts under ash with the stand-in functions.sh
  r=$(new_root pkg "$DEFAULT_CONFIG")
  mkdir -p "$r/usr/lib/opkg/info"
  cp "$u/ctrl/postinst" "$r/usr/lib/opkg/info/tunneldigger.postinst"
  cp "$u/ctrl/prerm" "$r/usr/lib/opkg/info/tunneldigger.prerm"
  in_root "$r" /bin/sh -c 'cd /usr/lib/opkg/info && ./tunneldigger.postinst configure && ./tunneldigger.prerm remove && IPKG_NO_SCRIPT=1 ./tunneldigger.postinst configure' 2>"$WORK/pkg.err"
  printf 'default_postinst ./tunneldigger.postinst configure\ndefault_prerm ./tunneldigger.prerm remove\n' >"$WORK/pkg.expected"
  touch "$r/tmp/pkgscripts.log"
  check ipk-postinst-prerm "$WORK/pkg.expected" "$r/tmp/pkgscripts.log"
else
  fail ipk-layout "ipk-build.sh failed: $(tail -3 "$WORK/ipk1.log")"
fi

# over budget: must fail and leave no .ipk behind
head -c 300000 /dev/urandom >"$WORK/big-bin"
mkdir -p "$WORK/dist3"
if env "${IPK_ENV[@]}" BIN="$WORK/big-bin" OUT_DIR="$WORK/dist3" openwrt/ipk-build.sh >"$WORK/big.log" 2>&1; then
  fail ipk-budget "a 300000-byte incompressible binary passed the 230 KiB budget"
elif ! grep -q 'over the 230 KiB budget (235520 bytes)' "$WORK/big.log"; then
  fail ipk-budget "failed without the budget message: $(tail -2 "$WORK/big.log")"
elif ls "$WORK"/dist3/*.ipk >/dev/null 2>&1; then
  fail ipk-budget "an over-budget .ipk was left in OUT_DIR"
else pass ipk-budget; fi

# missing binary: one clear line, non-zero
if BIN="$WORK/nope" OUT_DIR="$WORK/dist3" openwrt/ipk-build.sh >"$WORK/nobin.log" 2>&1; then
  fail ipk-missing-binary "succeeded without a binary"
elif [ "$(wc -l <"$WORK/nobin.log")" = 1 ] && grep -q "client binary $WORK/nope not found" "$WORK/nobin.log"; then
  pass ipk-missing-binary
else fail ipk-missing-binary "unexpected output: $(cat "$WORK/nobin.log")"; fi

# the real MIPS client, once mk/mips.mk has built it
MIPS_BIN=build/mips_24kc/tunneldigger
if [ -f "$MIPS_BIN" ]; then
  mkdir -p "$WORK/dist4"
  if BIN=$MIPS_BIN OUT_DIR="$WORK/dist4" openwrt/ipk-build.sh >"$WORK/mips.log" 2>&1; then
    sed 's/^/  /' "$WORK/mips.log"
    info=$(file -b "$MIPS_BIN")
    case "$info" in
      *"ELF 32-bit MSB"*MIPS*"interpreter /lib/ld-musl-mips-sf.so.1"*) pass ipk-mips-binary ;;
      *) fail ipk-mips-binary "not a dynamically linked big-endian MIPS musl-sf executable: $info" ;;
    esac
  else
    fail ipk-mips-binary "$(tail -1 "$WORK/mips.log")"
  fi
else
  echo "VMTEST SKIP ipk-mips-binary: $MIPS_BIN is not built (make mips_24kc)"
fi
