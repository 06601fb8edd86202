#!/usr/bin/env bash
# Package checks (host, no VM): builds dist/tunneldigger-broker_<version>_<arch>.deb (make deb), runs
# lintian (no E: tag allowed), systemd-analyze verify on both units (no message allowed; it exits
# 0 even on unknown keys), checks the package contents, runs the extracted package and a
# `make install PREFIX=<tmp>` tree without the build tree. Prints VMTEST PASS/FAIL lines.
# The VM scenario test/vm/scenarios/ops-deb.sh installs the .deb with dpkg and runs it for real.
set -u
cd "$(dirname "$0")/../.."
pass() { echo "VMTEST PASS deb/$1"; }
fail() { echo "VMTEST FAIL deb/$1: $2"; }
check() { local name=$1; shift; local out; if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(echo "$out" | tail -n 5 | tr '\n' ' ')"; fi; }

mkdir -p build/test-logs
scripts/ensure-apt.sh lintian fakeroot systemd gcc-aarch64-linux-gnu libc6-dev-arm64-cross file || { fail apt "cannot install lintian/fakeroot/systemd"; exit 1; }
make --no-print-directory deb > build/test-logs/deb-build.log 2>&1 || { fail build "make deb failed: $(tail -n 5 build/test-logs/deb-build.log | tr '\n' ' ')"; exit 1; }
version=$(node -p "require('./package.json').version")
deb=dist/tunneldigger-broker_${version}_$(dpkg --print-architecture).deb
check build test -s "$deb"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

lintian_errors() {
  lintian --allow-root "$deb" > "$work/lintian.txt" 2>&1
  cat "$work/lintian.txt" >&2
  ! grep -q '^E: ' "$work/lintian.txt"
}
check lintian-no-errors lintian_errors
echo "lintian: $(grep -c '^W: ' "$work/lintian.txt") warnings, $(grep -c '^E: ' "$work/lintian.txt") errors"

dpkg-deb -x "$deb" "$work/root"
dpkg-deb -I "$deb" > "$work/info.txt"
contents() {
  local r=$work/root f
  for f in usr/bin/tunneldigger-broker usr/lib/tunneldigger-broker/node/tdnative.node \
      usr/lib/tunneldigger-broker/js/src/main/broker/broker-cli.js usr/lib/tunneldigger-broker/node_modules/prom-client/package.json \
      etc/tunneldigger/broker.cfg lib/systemd/system/tunneldigger-broker.service lib/systemd/system/tunneldigger-broker@.service \
      usr/lib/modules-load.d/tunneldigger-broker.conf usr/share/doc/tunneldigger-broker/operations.md; do
    [ -e "$r/$f" ] || { echo "missing /$f"; return 1; }
  done
  grep -q '^ Depends: .*nodejs (>= 20).*iproute2' "$work/info.txt" || { echo "Depends lacks nodejs (>= 20) / iproute2"; return 1; }
  grep -qx '/etc/tunneldigger/broker.cfg' <(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles) || { echo "broker.cfg is no conffile"; return 1; }
  ! find "$r" -path '*/test/*' -o -name '*.ts' | grep -q . || { echo "tests or TypeScript sources in the package"; return 1; }
  ! grep -rqs -- "$PWD" "$r/usr/lib/tunneldigger-broker/js" "$r/usr/bin" || { echo "build tree path in the package"; return 1; }
  grep -qx 'l2tp_eth' "$r/usr/lib/modules-load.d/tunneldigger-broker.conf"
}
check contents contents

# the units, with ExecStart pointing into the extracted tree (verify checks that it is executable)
mkdir -p "$work/units"
for u in tunneldigger-broker.service tunneldigger-broker@.service; do
  sed "s#/usr/bin/tunneldigger-broker#$work/root/usr/bin/tunneldigger-broker#g" "$work/root/lib/systemd/system/$u" > "$work/units/$u"
done
cp "$work/units/tunneldigger-broker@.service" "$work/units/tunneldigger-broker@edge.service"
verify() {
  local out
  out=$(systemd-analyze verify "$work/units/tunneldigger-broker.service" "$work/units/tunneldigger-broker@edge.service" 2>&1)
  [ -z "$out" ] || { echo "$out"; return 1; }
}
check systemd-analyze-verify verify
grep -q '^Type=notify' "$work/units/tunneldigger-broker.service" && grep -q '^LimitNOFILE=65536' "$work/units/tunneldigger-broker.service" \
  && pass unit-keys || fail unit-keys "Type=notify or LimitNOFILE missing"
echo "systemd-analyze security: $(systemd-analyze security --offline=true "$work/units/tunneldigger-broker.service" 2>&1 | tail -n 1)"

# the extracted package runs by itself: from /, without the build tree, with the addon next to it
runs_extracted() {
  local v
  v=$(cd / && node "$work/root/usr/bin/tunneldigger-broker" --version) || return 1
  [ "$v" = "tunneldigger-broker $version" ] || { echo "got '$v'"; return 1; }
  (cd / && node "$work/root/usr/bin/tunneldigger-broker" --check-config "$work/root/etc/tunneldigger/broker.cfg") || return 1
  (cd / && node -e "import('$work/root/usr/lib/tunneldigger-broker/js/src/runtime/node/native.js').then((m) => { if (typeof m.native.sdNotify !== 'function') process.exit(1); })") || { echo "installed addon does not load"; return 1; }
  (cd / && node -e "import('$work/root/usr/lib/tunneldigger-broker/js/src/broker/metrics.js')") || { echo "prom-client not found from the installed tree"; return 1; }
}
check extracted-package-runs runs_extracted
bad_config_exit() {
  printf '[broker]\naddress=nope\n' > "$work/bad.cfg"
  local out rc
  out=$(cd / && node "$work/root/usr/bin/tunneldigger-broker" --check-config "$work/bad.cfg" 2>&1); rc=$?
  [ $rc = 1 ] && echo "$out" | grep -q 'broker.address = "nope"'
}
check check-config-names-bad-key bad_config_exit

make_install() {
  make --no-print-directory install PREFIX="$work/prefix" > "$work/install.log" 2>&1 || { tail -n 5 "$work/install.log"; return 1; }
  [ -f "$work/prefix/etc/tunneldigger/broker.cfg" ] && [ -f "$work/prefix/lib/systemd/system/tunneldigger-broker.service" ] || return 1
  grep -q "^ExecStart=$work/prefix/bin/tunneldigger-broker $work/prefix/etc/tunneldigger/broker.cfg" "$work/prefix/lib/systemd/system/tunneldigger-broker.service" || return 1
  [ "$(cd / && "$work/prefix/bin/tunneldigger-broker" --version)" = "tunneldigger-broker $version" ]
}
check make-install-prefix make_install

# arm64: the addon cross-compiled; built and checked, not run (no arm64 node here)
arm64() {
  make --no-print-directory deb-arm64 > "$work/arm64.log" 2>&1 || { tail -n 5 "$work/arm64.log"; return 1; }
  local a=dist/tunneldigger-broker_${version}_arm64.deb
  dpkg-deb -f "$a" Architecture | grep -qx arm64 || return 1
  dpkg-deb -x "$a" "$work/arm64"
  file "$work/arm64/usr/lib/tunneldigger-broker/node/tdnative.node" | grep -q 'ARM aarch64' || { echo "addon is not aarch64"; return 1; }
  lintian --allow-root "$a" > "$work/lintian-arm64.txt" 2>&1
  ! grep '^E: ' "$work/lintian-arm64.txt"
}
check deb-arm64-builds-lintian-clean arm64
