#!/usr/bin/env bash
# Writes the release tarball dist/tunneldigger-<version>.tar.gz: the feed's PKG_SOURCE
# (openwrt/Makefile), buildable with a C compiler alone (scripts/release/Makefile). Called by
# `make dist` (mk/dist.mk), which builds the inputs and passes them in the environment:
#   VERSION        package.json version            OUT_DIR   where the tarball goes
#   QJS_SRC        the patched QuickJS tree         QJS_VERSION
#   QJS_CLIENT_SRCS, QJS_OWN_SRCS, QJS_MIN_DEFS     as in mk/quickjs.mk
#   BYTECODE_LITTLE, BYTECODE_BIG                   qjsc output for each byte order
# Reproducible: sorted names, owner 0:0, normalised modes, gzip -n, and every mtime set to
# SOURCE_DATE_EPOCH, by default midnight UTC on the first day of the version's month (not the
# commit time: the tarball's hash is committed in openwrt/Makefile, and committing it must not
# change the tarball).
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "dist: $*" >&2; exit 1; }
for v in VERSION OUT_DIR QJS_SRC QJS_VERSION QJS_CLIENT_SRCS QJS_OWN_SRCS QJS_MIN_DEFS BYTECODE_LITTLE BYTECODE_BIG; do
  [ -n "${!v:-}" ] || die "$v is not set (run make dist, not this script)"
done
[[ "$VERSION" =~ ^([0-9]{4})\.([1-9]|1[0-2])\.(0|[1-9][0-9]*)$ ]] \
  || die "version '$VERSION' from package.json is not YEAR.MONTH.N (docs/versioning.md)"
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
  SOURCE_DATE_EPOCH=$(date -u -d "${BASH_REMATCH[1]}-${BASH_REMATCH[2]}-01" +%s)
fi
for f in "$BYTECODE_LITTLE" "$BYTECODE_BIG"; do
  [ -s "$f" ] || die "bytecode $f is missing"
done
size_of() { grep -o 'qjsc_client_size = [0-9]*' "$1" | grep -o '[0-9]*$'; }
sl=$(size_of "$BYTECODE_LITTLE") sb=$(size_of "$BYTECODE_BIG")
[ -n "$sl" ] && [ "$sl" = "$sb" ] \
  || die "the two bytecode files do not hold the same program ($BYTECODE_LITTLE: ${sl:-?} bytes, $BYTECODE_BIG: ${sb:-?} bytes); rebuild both"
# QuickJS 2025.04.26 writes the same (little-endian) bytes on either host, so the two files are
# equal today; both are shipped as their own qjsc wrote them, so a QuickJS that writes native
# byte order again still gets the right file on each target.
if cmp -s "$BYTECODE_LITTLE" "$BYTECODE_BIG"; then same="identical"; else same="different"; fi

name=tunneldigger-$VERSION
work=$(mktemp -d "${TMPDIR:-/tmp}/td-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT
root=$work/$name
mkdir -p "$root/quickjs" "$root/qjs-native" "$root/bytecode"

cp scripts/release/Makefile "$root/Makefile"
for f in $QJS_CLIENT_SRCS; do cp "$QJS_SRC/$f" "$root/quickjs/"; done
cp "$QJS_SRC"/*.h "$QJS_SRC/LICENSE" "$QJS_SRC/VERSION" "$root/quickjs/"
for f in $QJS_OWN_SRCS; do cp "qjs-native/$f" "$root/qjs-native/"; done
cp qjs-native/*.h "$root/qjs-native/"
cp "$BYTECODE_LITTLE" "$root/bytecode/client_bytecode_little.c"
cp "$BYTECODE_BIG" "$root/bytecode/client_bytecode_big.c"
cat >"$root/sources.mk" <<EOF
# Written by make dist (scripts/release/make-dist.sh) from mk/quickjs.mk.
TD_VERSION      := $VERSION
QJS_VERSION     := $QJS_VERSION
QJS_CLIENT_SRCS := $QJS_CLIENT_SRCS
QJS_OWN_SRCS    := $QJS_OWN_SRCS
QJS_MIN_DEFS    := $QJS_MIN_DEFS
EOF
cat >"$root/README" <<EOF
tunneldigger $VERSION: the QuickJS client, ready to compile without Node.

  make openwrt-client TD_TARGET_CC=gcc TD_TARGET_ENDIAN=little TD_OUT=out/tunneldigger

Variables (the OpenWrt feed's Makefile sets them from the SDK): TD_TARGET_CC, TD_TARGET_CFLAGS,
TD_TARGET_LDFLAGS, TD_TARGET_ENDIAN (big or little: which bytecode/ file is linked),
TD_TARGET_SOFT_FLOAT (1: -msoft-float), TD_OUT.

  quickjs/      QuickJS $QJS_VERSION (Debian's source package, with the two build switches
                QJS_NO_ATOMICS and QJS_NO_WORKER added); LICENSE is QuickJS's
  qjs-native/   the client's C core and its QuickJS binding
  bytecode/     the client (TypeScript, bundled by rollup) compiled by qjsc $QJS_VERSION,
                once per byte order; it only loads into this QuickJS version
  sources.mk    file lists and defines

Made by \`make dist\` in the tunneldigger repository; the sources of the bytecode are there.
EOF

TAR_OPTS=(--format=gnu --numeric-owner --owner=0 --group=0 --sort=name
  "--mtime=@$SOURCE_DATE_EPOCH" --mode=u+rw,go+r,go-w,a-s)
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f -exec chmod 0644 {} +
mkdir -p "$OUT_DIR"
out=$OUT_DIR/$name.tar.gz
tar "${TAR_OPTS[@]}" -C "$work" -cf - "$name" | gzip -n -9 >"$work/out.tar.gz"
mv "$work/out.tar.gz" "$out"
echo "dist: bytecode $sl bytes; the big- and little-endian qjsc outputs are $same"
echo "dist: $out $(stat -c %s "$out") bytes, sha256 $(sha256sum "$out" | cut -d' ' -f1)"
