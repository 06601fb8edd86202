#!/usr/bin/env bash
# The OpenWrt feed package (openwrt/Makefile) and its source, the `make dist` tarball.
# Prints "VMTEST PASS/FAIL/SKIP <name>" (counted by test/run.sh).
#  * the tarball: contents, reproducibility;
#  * the feed scan rule of OpenWrt's include/scan.mk over this repository: exactly one package
#    directory (openwrt/), whose source package is `tunneldigger`;
#  * openwrt/Makefile under the SDK stand-in (test/openwrt/stubs/sdk): metadata, the file://
#    download with its sha256 check, unpack, and Build/Compile with the tarball alone and a PATH
#    without node, npm or qemu, for a little-endian host target (gcc) and for big-endian MIPS
#    (the musl cross compiler of mk/mips.mk); both binaries run their built-in self-test.
# Needs make build first (the tarball is made from its outputs).
set -u
cd "$(dirname "$0")/../.."
TOP=$(pwd -P)
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
WORK=$(mktemp -d /tmp/td-feed-test.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

pass() { echo "VMTEST PASS $1"; }
fail() { echo "VMTEST FAIL $1: $2"; }
skip() { echo "VMTEST SKIP $1: $2"; }

version=$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' package.json | head -n1)
name=tunneldigger-$version
tarball=dist/$name.tar.gz
BUILTINS_OUT=$'selftest-builtins: Map 1:2, DataView 7f000001 2,127, toFixed 1234.6, parseInt 31, padStart 007, absent RegExp,Date,JSON,Proxy\nselftest-builtins: promise job ran (42)'

# ---- make dist ------------------------------------------------------------------------------
if ! make -s dist >"$WORK/dist.log" 2>&1; then
  fail dist-build "make dist failed: $(grep -m1 -i 'error\|dist:' "$WORK/dist.log" || tail -1 "$WORK/dist.log")"
  exit 1
fi
pass dist-build
sha=$(sha256sum "$tarball" | cut -d' ' -f1)
sed 's/^/  /' "$WORK/dist.log"

t=dist-contents
errs=
listing=$(tar -tzvf "$tarball")
names=$(tar -tzf "$tarball" | sort)
[ -z "$(grep -v "^$name/" <<<"$names")" ] || errs="$errs; entries outside $name/"
for f in Makefile README sources.mk bytecode/client_bytecode_little.c bytecode/client_bytecode_big.c \
    quickjs/quickjs.c quickjs/quickjs.h quickjs/LICENSE qjs-native/td_core.c qjs-native/td_core.h qjs-native/qjs_main.c; do
  grep -qx "$name/$f" <<<"$names" || errs="$errs; no $f"
done
bad=$(grep -E '\.(ts|js|mjs|json|node)$|node_modules|/build/|\.git' <<<"$names" | head -3 | tr '\n' ' ')
[ -z "$bad" ] || errs="$errs; things the SDK cannot use: $bad"
grep -q 'td_napi' <<<"$names" && errs="$errs; ships the Node binding"
[ "$(awk '{print $2}' <<<"$listing" | sort -u)" = 0/0 ] || errs="$errs; owners not 0/0"
tar -xzf "$tarball" -C "$WORK"
for v in QJS_CLIENT_SRCS QJS_OWN_SRCS; do
  want=$(make -s --no-print-directory --eval "td-print: ; @echo \$($v)" td-print)
  got=$(sed -n "s/^$v *:= *//p" "$WORK/$name/sources.mk")
  [ "$got" = "$want" ] || errs="$errs; sources.mk $v '$got' != mk/quickjs.mk '$want'"
done
grep -q "^TD_VERSION *:= *$version\$" "$WORK/$name/sources.mk" || errs="$errs; TD_VERSION is not $version"
if [ -z "$errs" ]; then pass $t; else fail $t "${errs#; }"; fi

t=dist-reproducible
if make -s dist DIST_FILE="$WORK/again/$name.tar.gz" >"$WORK/dist2.log" 2>&1 && cmp -s "$tarball" "$WORK/again/$name.tar.gz"; then
  pass $t
else fail $t "a second make dist gave different bytes: $(tail -1 "$WORK/dist2.log")"; fi

committed=$(sed -n 's/^PKG_HASH:=//p' openwrt/Makefile)
if [ "$committed" = "$sha" ]; then echo "info: openwrt/Makefile PKG_HASH matches this tarball"
else echo "info: openwrt/Makefile PKG_HASH $committed is not this tree's tarball ($sha): run make dist-hash for a release"; fi

# ---- the feed scan rule (OpenWrt include/scan.mk, SCAN_DEPTH=5) ----------------------------
# scan DIR: the package directories scripts/feeds would index in a feed rooted at DIR.
scan() {
  (cd "$1" && find -L . -mindepth 1 -maxdepth 5 -name Makefile 2>/dev/null | sed 's#^\./##' \
    | xargs grep -aHE 'call (Build/DefaultTargets|BuildPackage|KernelPackage)' | sed -e 's#/Makefile:.*##' | sort -u)
}
t=feed-scan
errs=
# as src-git clones it (tracked files only) and as src-link sees a checkout (with node_modules, build, dist)
mkdir -p "$WORK/clone"
git ls-files -z | xargs -0 cp --parents -t "$WORK/clone" 2>/dev/null
got=$(scan "$WORK/clone"); [ "$got" = openwrt ] || errs="$errs; tracked files give package dirs '$(echo $got)'"
got=$(scan "$TOP"); [ "$got" = openwrt ] || errs="$errs; the checkout gives package dirs '$(echo $got)'"
if [ -z "$errs" ]; then pass $t; else fail $t "${errs#; }"; fi

# ---- openwrt/Makefile under the SDK stand-in ------------------------------------------------
new_sdk() { rm -rf "$WORK/sdk"; cp -r test/openwrt/stubs/sdk "$WORK/sdk"; echo "$WORK/sdk"; }
sdk=$(new_sdk)

t=feed-metadata
if make -s -C openwrt TOPDIR="$sdk" info >"$WORK/info" 2>&1; then
  printf '%s\n' PKG_NAME=tunneldigger "PKG_VERSION=$version" PKG_RELEASE=1 "PKG_SOURCE=$name.tar.gz" \
    "PKG_SOURCE_URL=file://$TOP/dist" "PKG_HASH=$committed" SECTION=net 'DEPENDS=+kmod-l2tp +kmod-l2tp-eth' \
    CONFFILES=/etc/config/tunneldigger >"$WORK/info.want"
  errs=
  cmp -s "$WORK/info.want" "$WORK/info" || errs="metadata: $(diff "$WORK/info.want" "$WORK/info" | grep '^[<>]' | tr '\n' ' ')"
  [[ "$committed" =~ ^[0-9a-f]{64}$ ]] || errs="$errs; PKG_HASH '$committed' is not a sha256"
  if [ -z "$errs" ]; then pass $t; else fail $t "$errs"; fi
else fail $t "make info failed: $(tail -2 "$WORK/info")"; fi

t=feed-no-host-node
hits=$(grep -vE '^\s*#' openwrt/Makefile scripts/release/Makefile | grep -nwE 'node|npm|npx|rollup|tsc|qemu[-a-z0-9]*|wget|curl|git' | head -3)
if [ -z "$hits" ]; then pass $t; else fail $t "build rules use host tools the SDK does not have: $hits"; fi

# A PATH with everything of this one except node, npm and qemu.
mkdir -p "$WORK/bin"
IFS=: read -ra dirs <<<"$PATH"
for d in "${dirs[@]}"; do
  for f in "$d"/*; do
    b=${f##*/}
    case "$b" in node|nodejs|npm|npx|corepack|qemu-*) continue ;; esac
    [ -x "$f" ] && [ ! -e "$WORK/bin/$b" ] && ln -s "$f" "$WORK/bin/$b"
  done
done
if PATH=$WORK/bin command -v node >/dev/null || PATH=$WORK/bin command -v qemu-mips-static >/dev/null; then
  echo "VMTEST FAIL feed-setup: the stripped PATH still has node or qemu"; exit 1
fi
# sdk_build NAME ARGS...: download, prepare and compile in a fresh stand-in SDK, stripped PATH.
sdk_build() {
  local n=$1; shift
  sdk=$(new_sdk)
  env -i HOME="$WORK" PATH="$WORK/bin" make -C openwrt TOPDIR="$sdk" PKG_HASH="$sha" compile "$@" >"$WORK/$n.log" 2>&1
}
bin=$WORK/sdk/build_dir/$name/openwrt-out/tunneldigger

t=sdk-offline-little-endian
if sdk_build le TARGET_CC=gcc TARGET_CFLAGS="-Os -pipe" TARGET_LDFLAGS= ARCH=x86_64 CONFIG_BIG_ENDIAN= CONFIG_SOFT_FLOAT=; then
  out=$("$bin" --selftest-builtins 2>&1)
  if ! grep -q 'bytecode/client_bytecode_little.c' "$WORK/le.log"; then fail $t "did not link the little-endian bytecode"
  elif [ "$out" != "$BUILTINS_OUT" ]; then fail $t "binary self-test: $(tr '\n' '|' <<<"$out")"
  else pass $t; fi
  # installed files, from the stand-in's view of Package/tunneldigger/install
  t=sdk-install
  make -s -C openwrt TOPDIR="$sdk" install DEST="$WORK/root" >/dev/null 2>&1
  got=$(cd "$WORK/root" 2>/dev/null && find . -type f -printf '%M %p\n' | sort | tr '\n' ',')
  if [ "$got" != "-rw-r--r-- ./etc/config/tunneldigger,-rwxr-xr-x ./etc/init.d/tunneldigger,-rwxr-xr-x ./usr/bin/tunneldigger," ]; then
    fail $t "installed files: $got"
  elif ! cmp -s "$WORK/root/etc/init.d/tunneldigger" openwrt/files/tunneldigger.init \
      || ! cmp -s "$WORK/root/etc/config/tunneldigger" openwrt/files/tunneldigger.config \
      || ! cmp -s "$WORK/root/usr/bin/tunneldigger" "$bin"; then
    fail $t "installed contents differ from openwrt/files and the built binary"
  else pass $t; fi
else
  fail $t "stand-in SDK build failed: $(grep -m1 -iE 'error|giving up|not found' "$WORK/le.log" || tail -1 "$WORK/le.log")"
fi

t=sdk-offline-big-endian-mips
MCC=$CACHE/mips/bin/mips-musl-gcc
if [ ! -x "$MCC" ] || ! command -v qemu-mips-static >/dev/null; then
  skip $t "needs $MCC (make mips-client-toolchain) and qemu-mips-static to run the result"
elif sdk_build be TARGET_CC="$MCC" ARCH=mips CONFIG_BIG_ENDIAN=y CONFIG_SOFT_FLOAT=y TARGET_LDFLAGS= \
    TARGET_CFLAGS="-Os -pipe -mno-branch-likely -mips32r2 -mtune=24kc -fno-caller-saves -mips16 -minterlink-mips16"; then
  mkdir -p "$WORK/sysroot/lib"
  cp "$CACHE/mips/musl/lib/libc.so" "$WORK/sysroot/lib/ld-musl-mips-sf.so.1"
  out=$(timeout -s KILL 60 qemu-mips-static -cpu 24Kc -L "$WORK/sysroot" "$bin" --selftest-builtins 2>&1)
  info=$(file -b "$bin")
  if ! grep -q 'bytecode/client_bytecode_big.c' "$WORK/be.log"; then fail $t "did not link the big-endian bytecode"
  elif [[ "$info" != *"ELF 32-bit MSB"*MIPS* ]]; then fail $t "not a big-endian MIPS executable: $info"
  elif [ "$out" != "$BUILTINS_OUT" ]; then fail $t "binary self-test under qemu: $(tr '\n' '|' <<<"$out")"
  else pass $t; fi
else
  fail $t "stand-in SDK build failed: $(grep -m1 -iE 'error|giving up|not found' "$WORK/be.log" || tail -1 "$WORK/be.log")"
fi

t=sdk-hash-mismatch
sdk=$(new_sdk)
if env -i HOME="$WORK" PATH="$WORK/bin" make -C openwrt TOPDIR="$sdk" PKG_HASH=$(printf '0%.0s' $(seq 64)) download >"$WORK/bad.log" 2>&1; then
  fail $t "a wrong PKG_HASH was accepted"
elif ! grep -q 'Hash of the downloaded file does not match' "$WORK/bad.log" || [ -e "$sdk/dl/$name.tar.gz" ]; then
  fail $t "no hash message, or the file was kept: $(tail -2 "$WORK/bad.log" | tr '\n' ' ')"
else pass $t; fi
exit 0
