# Router targets built from Debian's cross compilers and musl (sourced, not executed).
# cross_arch <openwrt-arch> sets, for that OpenWrt package architecture:
#   X_TRIPLE    Debian cross prefix (binutils, gcc): $X_TRIPLE-gcc
#   X_MUSL_ARCH musl's ARCH for --target, X_LDSO the dynamic loader OpenWrt ships
#               (/lib/$X_LDSO, from musl's own subarch rules: -sf = soft float, hf = VFP args)
#   X_ABI       ABI flags baked into the compiler wrapper (the musl build uses them too)
#   X_SOFT_LIBGCC 1: Debian's libgcc is hard-float for this ABI; use the soft-float rebuild
#   X_QEMU      qemu-user command emulating the router's CPU (any instruction it lacks traps)
#   X_ENDIAN, X_BITS, X_KARCH (Linux ARCH for headers_install), X_APT (Debian packages)
# mips_24kc (ath79) keeps its own scripts in scripts/mips/; it is listed here so the per-arch
# tests and size table can treat all five alike.
CROSS_ARCHES="mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64"
cross_arch() {
  X_ARCH=$1 X_SOFT_LIBGCC=0
  case "$1" in
    mips_24kc)   # ath79: big-endian 24Kc, no FPU
      X_TRIPLE=mips-linux-gnu X_MUSL_ARCH=mips X_LDSO=ld-musl-mips-sf.so.1
      X_ABI="-march=mips32r2 -mtune=24kc -msoft-float" X_SOFT_LIBGCC=1
      X_QEMU="qemu-mips-static -cpu 24Kc" X_ENDIAN=big X_BITS=32 X_KARCH=mips ;;
    mipsel_24kc) # ramips MT7621 (1004Kc) / MT76x8 (24KEc): little-endian, no FPU
      X_TRIPLE=mipsel-linux-gnu X_MUSL_ARCH=mips X_LDSO=ld-musl-mipsel-sf.so.1
      X_ABI="-march=mips32r2 -mtune=24kc -msoft-float" X_SOFT_LIBGCC=1
      X_QEMU="qemu-mipsel-static -cpu 24Kc" X_ENDIAN=little X_BITS=32 X_KARCH=mips ;;
    arm_cortex-a7_neon-vfpv4) # ipq40xx: Cortex-A7, VFPv4 + NEON, hard-float EABI (armhf)
      X_TRIPLE=arm-linux-gnueabihf X_MUSL_ARCH=arm X_LDSO=ld-musl-armhf.so.1
      X_ABI="-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard"
      X_QEMU="qemu-arm-static -cpu cortex-a7" X_ENDIAN=little X_BITS=32 X_KARCH=arm ;;
    aarch64_cortex-a53) # MediaTek Filogic (MT7981/MT7986), also ipq807x/bcm27xx: ARMv8.0-A
      # -mno-outline-atomics: Debian's gcc 12 otherwise calls libgcc's LSE probes (glibc's
      # __getauxval); the A53 has no LSE anyway.
      X_TRIPLE=aarch64-linux-gnu X_MUSL_ARCH=aarch64 X_LDSO=ld-musl-aarch64.so.1
      X_ABI="-mcpu=cortex-a53 -mno-outline-atomics"
      X_QEMU="qemu-aarch64-static -cpu cortex-a53" X_ENDIAN=little X_BITS=64 X_KARCH=arm64 ;;
    x86_64)      # x86/64 (offloaders, VMs): baseline x86-64, nothing newer than SSE2 assumed
      X_TRIPLE=x86_64-linux-gnu X_MUSL_ARCH=x86_64 X_LDSO=ld-musl-x86_64.so.1
      X_ABI="-march=x86-64 -mtune=generic"
      X_QEMU="qemu-x86_64-static -cpu qemu64" X_ENDIAN=little X_BITS=64 X_KARCH=x86 ;;
    *) echo "cross: unknown architecture '$1' (known: $CROSS_ARCHES)" >&2; return 1 ;;
  esac
  X_APT="gcc-$X_TRIPLE binutils-$X_TRIPLE"
  [ "$1" = x86_64 ] && X_APT="gcc binutils"
  return 0
}
