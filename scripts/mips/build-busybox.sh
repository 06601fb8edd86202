#!/bin/bash
# Static busybox for the big-endian MIPS VM, built from Debian bookworm's busybox source
# with mips-musl-gcc (soft-float musl, the router's ABI). Output: $CACHE/mips/userland/busybox.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
out="$MIPS_CACHE/userland/busybox"
[ -x "$out" ] && { echo "$out"; exit 0; }
cc=$("$here/build-musl.sh")
"$here/install-kernel-headers.sh"
src=$(debian_source busybox)
bld="$MIPS_CACHE/busybox-build"; rm -rf "$bld"; mkdir -p "$bld"
B="make -C $src O=$bld CROSS_COMPILE=$CROSS CC=$cc"
$B defconfig >/dev/null
# static; nothing that needs glibc-only interfaces or extra libraries
sed -i -e 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/' \
  -e 's/^CONFIG_FEATURE_HAVE_RPC=y/# CONFIG_FEATURE_HAVE_RPC is not set/' \
  -e 's/^CONFIG_SELINUX=y/# CONFIG_SELINUX is not set/' \
  -e 's/^CONFIG_PAM=y/# CONFIG_PAM is not set/' "$bld/.config"
(yes "" || true) | $B oldconfig >/dev/null
t0=$(date +%s)
$B -j"$JOBS" busybox >"$bld/build.log" 2>&1 || { tail -30 "$bld/build.log" >&2; die "busybox build failed, see $bld/build.log"; }
log "busybox built in $(( $(date +%s) - t0 )) s"
mkdir -p "$(dirname "$out")"
cp "$bld/busybox" "$out"
echo "$out"
