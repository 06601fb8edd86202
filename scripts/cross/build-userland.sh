#!/bin/bash
# usage: scripts/cross/build-userland.sh <openwrt-arch>
# Static busybox and iproute2 (`ip` with l2tp/netns, `tc`, `genl`) for a test VM of that arch,
# from Debian bookworm's sources, built with the arch's musl wrapper (scripts/cross/build-musl.sh;
# for mips_24kc scripts/mips/build-musl.sh). Kernel UAPI headers: for mips_24kc from the
# linux-source-6.1 its VM kernel is built from (scripts/mips/install-kernel-headers.sh), for the
# others from Debian's linux-libc-dev of the arch, fetched with a private apt state.
# Output: $CACHE/<arch>/userland/{busybox,ip,tc,genl} ($CACHE/mips/userland for mips_24kc);
# prints that dir.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 <openwrt-arch>" >&2; exit 2; }
X_ARCH=$1
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
dst="$X_CACHE/userland"
[ -x "$dst/busybox" ] && [ -x "$dst/ip" ] && [ -x "$dst/genl" ] && [ -x "$dst/tc" ] && { echo "$dst"; exit 0; }
cc=$("$here/build-musl.sh" "$X_ARCH")
mkdir -p "$dst"
if [ "$X_ARCH" = mips_24kc ]; then
  "$here/../mips/install-kernel-headers.sh"
elif [ ! -f "$X_SYSROOT/include/linux/l2tp.h" ]; then
  deb=$("$here/debian-deb.sh" "$X_ARCH" linux-libc-dev)
  tmp="$X_CACHE/lld"; rm -rf "$tmp"; dpkg-deb -x "$deb" "$tmp"
  inc="$tmp/usr/include"
  for d in "$inc"/*/; do case "$(basename "$d")" in *-linux-gnu*) ;; *) cp -a "$d" "$X_SYSROOT/include/" ;; esac; done
  cp -a "$inc"/*-linux-gnu*/asm "$X_SYSROOT/include/asm"
  rm -rf "$tmp"
  log "kernel UAPI headers from $(basename "$deb") installed into $X_SYSROOT/include"
fi
if [ ! -x "$dst/busybox" ]; then
  src=$(debian_source busybox)
  bld="$X_CACHE/busybox-build"; rm -rf "$bld"; mkdir -p "$bld"
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
  cp "$bld/busybox" "$dst/busybox.tmp"; mv "$dst/busybox.tmp" "$dst/busybox"; rm -rf "$bld"
fi
if [ ! -x "$dst/ip" ] || [ ! -x "$dst/tc" ] || [ ! -x "$dst/genl" ]; then
  src=$(debian_source iproute2)
  bld="$X_CACHE/iproute2-build"; rm -rf "$bld"; cp -a "$src" "$bld"; cd "$bld"
  # no pkg-config: no libmnl/libelf/libbpf/selinux/cap (none are in the sysroot)
  PKG_CONFIG=/bin/false CC="$cc" ./configure >configure.log 2>&1 || { cat configure.log >&2; die "iproute2 configure failed"; }
  t0=$(date +%s)
  # SHARED_LIBS=n: a static `genl` with SHARED_LIBS=y dlsym()s its ctrl module and fails
  # with "Unknown genl ctrl".
  make -j"$JOBS" CC="$cc" HOSTCC=gcc SHARED_LIBS=n LDFLAGS=-static SUBDIRS="lib ip tc genl" >build.log 2>&1 \
    || { tail -30 build.log >&2; die "iproute2 build failed, see $bld/build.log"; }
  log "iproute2 built in $(( $(date +%s) - t0 )) s"
  cp ip/ip tc/tc genl/genl "$dst/"
  cd /; rm -rf "$bld"
fi
echo "$dst"
