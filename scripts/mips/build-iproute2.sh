#!/bin/bash
# Static iproute2 (`ip` with l2tp/netns, `tc`, `genl`) for the big-endian MIPS VM, from
# Debian bookworm's iproute2 source, built with mips-musl-gcc.
# Output: $CACHE/mips/userland/{ip,tc,genl}.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
dst="$MIPS_CACHE/userland"
[ -x "$dst/ip" ] && [ -x "$dst/genl" ] && [ -x "$dst/tc" ] && { echo "$dst"; exit 0; }
cc=$("$here/build-musl.sh")
"$here/install-kernel-headers.sh"
src=$(debian_source iproute2)
bld="$MIPS_CACHE/iproute2-build"; rm -rf "$bld"; cp -a "$src" "$bld"; cd "$bld"
# no pkg-config: no libmnl/libelf/libbpf/selinux/cap (none are in the sysroot)
PKG_CONFIG=/bin/false CC="$cc" ./configure >configure.log 2>&1 || { cat configure.log >&2; die "iproute2 configure failed"; }
t0=$(date +%s)
# SHARED_LIBS=n: a static `genl` with SHARED_LIBS=y dlsym()s its ctrl module and fails
# with "Unknown genl ctrl".
make -j"$JOBS" CC="$cc" HOSTCC=gcc SHARED_LIBS=n LDFLAGS=-static SUBDIRS="lib ip tc genl" >build.log 2>&1 \
  || { tail -30 build.log >&2; die "iproute2 build failed, see $bld/build.log"; }
log "iproute2 built in $(( $(date +%s) - t0 )) s"
mkdir -p "$dst"
cp ip/ip tc/tc genl/genl "$dst/"
echo "$dst"
