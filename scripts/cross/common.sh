# Shared helpers of the per-arch router toolchains (sourced). Reuses scripts/mips/common.sh for
# the private Debian apt state and the downloaded sources ($CACHE/mips/dl, shared by all arches),
# and scripts/cross/arch.sh for the table of targets. Needs X_ARCH set by the caller.
cross_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$cross_here/../mips/common.sh"
. "$cross_here/arch.sh"
# `make ipk ARCH=...` exports ARCH=... to sub-makes through MAKEFLAGS: musl's, busybox's and the
# kernel's makefiles must see their own ARCH, not the OpenWrt package architecture.
unset MAKEFLAGS MFLAGS MAKELEVEL ARCH
cross_arch "$X_ARCH" || exit 2
X_CACHE="$CACHE/$X_ARCH"
X_CC="$X_CACHE/bin/$X_ARCH-musl-gcc"
# mips_24kc's toolchain is scripts/mips/'s: cache $CACHE/mips, wrapper mips-musl-gcc
if [ "$X_ARCH" = mips_24kc ]; then X_CACHE="$MIPS_CACHE" X_CC="$MIPS_CACHE/bin/mips-musl-gcc"; fi
X_SYSROOT="$X_CACHE/musl"
CROSS="$X_TRIPLE-"
log() { echo "[$X_ARCH] $*" >&2; }
die() { echo "[$X_ARCH] error: $*" >&2; exit 1; }
command -v "${CROSS}gcc" >/dev/null || die "${CROSS}gcc not found; install the Debian packages: $X_APT (make deps)"
