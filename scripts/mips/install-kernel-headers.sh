#!/bin/bash
# Installs the Linux 6.1 UAPI headers (linux/, asm/, ...: l2tp.h, genetlink.h, rtnetlink.h)
# for big-endian MIPS into the musl sysroot, from the same Debian linux-source-6.1 the test
# kernel is built from. Needed by anything compiled with mips-musl-gcc that talks netlink.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
SYSROOT="$MIPS_CACHE/musl"
[ -f "$SYSROOT/include/linux/l2tp.h" ] && exit 0
[ -d "$SYSROOT/include" ] || die "musl sysroot missing; run scripts/mips/build-musl.sh first"
src=$(linux_source_dir)
tmp="$MIPS_CACHE/kernel/headers-build"; rm -rf "$tmp"; mkdir -p "$tmp"
make -s -C "$src" O="$tmp" ARCH=mips CROSS_COMPILE="$CROSS" headers_install INSTALL_HDR_PATH="$tmp/out" >&2 \
  || die "kernel headers_install failed"
cp -a "$tmp/out/include/." "$SYSROOT/include/"
rm -rf "$tmp"
log "kernel UAPI headers installed into $SYSROOT/include"
