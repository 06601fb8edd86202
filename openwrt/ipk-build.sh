#!/usr/bin/env bash
# Builds dist/tunneldigger_<version>_mips_24kc.ipk from the MIPS client binary, without an
# OpenWrt SDK. Layout as OpenWrt's scripts/ipkg-build: a gzip'd GNU tar (not `ar`) holding
# ./debian-binary, ./control.tar.gz and ./data.tar.gz; numeric owner 0:0, sorted names,
# fixed mtime (SOURCE_DATE_EPOCH, default: time of the last git commit) -> reproducible.
#
# Environment (all optional):
#   BIN=path          client binary (default build/mips_24kc/tunneldigger; tests use a dummy)
#   OUT_DIR=dir       where the .ipk goes (default dist)
#   VERSION=y.m.n     default: "version" of package.json;  RELEASE=n  default 1
#   IPK_EPOCH=n       default none (see below)
#   ARCH=name         default mips_24kc
#   BUDGET_KIB=n      fail when the .ipk is bigger (default 230)
#   STRIP=tool        strip used when BIN still has a symbol table (default mips-linux-gnu-strip)
#
# Version "<y.m.n>-r<release>" as the OpenWrt 24.10 SDK writes it; the calendar version sorts
# above the original's "2021-03-08-4f72b305-2" / "2021.03.08~4f72b305-r2" without an epoch
# (docs/versioning.md). IPK_EPOCH=1 only for a router still on our epoch-1 release 1:0.5.0-1.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "ipk-build: $*" >&2; exit 1; }

BIN=${BIN:-build/mips_24kc/tunneldigger}
OUT_DIR=${OUT_DIR:-dist}
ARCH=${ARCH:-mips_24kc}
RELEASE=${RELEASE:-1}
IPK_EPOCH=${IPK_EPOCH:-}
BUDGET_KIB=${BUDGET_KIB:-230}
STRIP=${STRIP:-mips-linux-gnu-strip}
if [ -z "${VERSION:-}" ]; then
  VERSION=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
  [ -n "$VERSION" ] || die "no \"version\" in package.json; set VERSION=x.y.z"
fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || true)
  SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-0}
fi
PKG_VERSION="$VERSION-r$RELEASE"
CONTROL_VERSION="${IPK_EPOCH:+$IPK_EPOCH:}$PKG_VERSION"
IPK="$OUT_DIR/tunneldigger_${PKG_VERSION}_${ARCH}.ipk"
BUDGET=$((BUDGET_KIB * 1024))

[ -f "$BIN" ] || die "client binary $BIN not found; build it first (make build/mips_24kc/tunneldigger) or set BIN=path"
for f in openwrt/files/tunneldigger.init openwrt/files/tunneldigger.config; do
  [ -f "$f" ] || die "$f is missing from the checkout"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/td-ipk.XXXXXX")
trap 'rm -rf "$work"' EXIT
data="$work/data" ctrl="$work/control"
install -d -m 0755 "$data" "$data/usr" "$data/usr/bin" "$data/etc" "$data/etc/init.d" \
  "$data/etc/config" "$ctrl"

install -m 0755 "$BIN" "$data/usr/bin/tunneldigger"
# The MIPS build normally arrives stripped; strip a copy if it still has a symbol table.
if [ "$(head -c4 "$BIN" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] \
    && readelf -S "$BIN" 2>/dev/null | grep -q '\.symtab'; then
  command -v "$STRIP" >/dev/null || die "$BIN is not stripped and $STRIP is not installed; set STRIP=<cross strip>"
  "$STRIP" -s -R .comment "$data/usr/bin/tunneldigger"
  echo "ipk-build: stripped $BIN with $STRIP"
fi
install -m 0755 openwrt/files/tunneldigger.init "$data/etc/init.d/tunneldigger"
install -m 0644 openwrt/files/tunneldigger.config "$data/etc/config/tunneldigger"

installed_size=$(find "$data" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
license=$(sed -n 's/^ *"license": *"\([^"]*\)".*/\1/p' package.json | head -n1)

cat >"$ctrl/control" <<EOF
Package: tunneldigger
Version: $CONTROL_VERSION
Depends: libc, kmod-l2tp, kmod-l2tp-eth
Source: tunneldigger/openwrt
SourceName: tunneldigger
License: ${license:-AGPL-3.0-or-later}
Section: net
Architecture: $ARCH
Installed-Size: $installed_size
Description: L2TPv3 tunnel client (QuickJS), wire-compatible with Tunneldigger
 Drop-in replacement for the C tunneldigger client: same /etc/config/tunneldigger,
 same command line, same procd instances.
EOF
echo /etc/config/tunneldigger >"$ctrl/conffiles"

# Standard OpenWrt package scripts: default_postinst enables (and on a live system starts) the
# init scripts the package ships; inside an image build (IPKG_INSTROOT set) it only enables.
cat >"$ctrl/postinst" <<'EOF'
#!/bin/sh
[ "${IPKG_NO_SCRIPT}" = "1" ] && exit 0
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_postinst "$0" "$@"
EOF
cat >"$ctrl/prerm" <<'EOF'
#!/bin/sh
[ -s "${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0
. "${IPKG_INSTROOT}/lib/functions.sh"
default_prerm "$0" "$@"
EOF
chmod 0644 "$ctrl/control" "$ctrl/conffiles"
chmod 0755 "$ctrl/postinst" "$ctrl/prerm"
printf '2.0\n' >"$work/debian-binary"
chmod 0644 "$work/debian-binary"

TAR_OPTS=(--format=gnu --numeric-owner --owner=0 --group=0 --sort=name
  "--mtime=@$SOURCE_DATE_EPOCH")
tar "${TAR_OPTS[@]}" -C "$ctrl" -cf - . | gzip -n -9 >"$work/control.tar.gz"
tar "${TAR_OPTS[@]}" -C "$data" -cf - . | gzip -n -9 >"$work/data.tar.gz"
chmod 0644 "$work/control.tar.gz" "$work/data.tar.gz"

mkdir -p "$OUT_DIR"
tar "${TAR_OPTS[@]}" -C "$work" -cf - ./debian-binary ./control.tar.gz ./data.tar.gz \
  | gzip -n -9 >"$work/out.ipk"

bin_size=$(stat -c %s "$data/usr/bin/tunneldigger")
bin_xz=$(xz -9 -c "$data/usr/bin/tunneldigger" | wc -c)
ipk_size=$(stat -c %s "$work/out.ipk")
echo "ipk-build: binary $BIN: $bin_size bytes stripped, $bin_xz bytes xz -9"
if [ "$ipk_size" -gt "$BUDGET" ]; then
  rm -f "$IPK"
  die "$IPK would be $ipk_size bytes, over the ${BUDGET_KIB} KiB budget ($BUDGET bytes); not written. Shrink the client or raise BUDGET_KIB."
fi
mv "$work/out.ipk" "$IPK"
echo "ipk-build: $IPK: $ipk_size bytes (budget $BUDGET bytes = ${BUDGET_KIB} KiB), Version $CONTROL_VERSION"
