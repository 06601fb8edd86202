#!/bin/bash
# Builds libgcc-sf.a: libgcc's soft-fp routines (__adddf3, __fixdfsi, ...) and the libgcc2.c
# integer/complex helpers (__divdi3, __muldc3, ...) compiled -msoft-float from Debian's
# gcc-12-source. Debian's mips cross libgcc is hard-float (__adddf3 is a literal add.d),
# which SIGILLs on FPU-less 24Kc cores. Output: $CACHE/mips/musl/lib/libgcc-sf.a.
# The little-endian build (scripts/cross/build-musl.sh mipsel_24kc) sets LIBGCC_SF_CROSS,
# LIBGCC_SF_CFLAGS, LIBGCC_SF_OUT and LIBGCC_SF_OBJ to reuse this with mipsel-linux-gnu-gcc.
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
CROSS=${LIBGCC_SF_CROSS:-$CROSS}
MIPS_CFLAGS=${LIBGCC_SF_CFLAGS:-$MIPS_CFLAGS}
out="${LIBGCC_SF_OUT:-$MIPS_CACHE/musl/lib/libgcc-sf.a}"
[ -f "$out" ] && { echo "$out"; exit 0; }
deb=$(debian_deb gcc-12-source)
ver=$(basename "$deb" .deb | cut -d_ -f2)
G="$MIPS_SRC/gcc-12-$ver"
if [ ! -f "$G/libgcc/libgcc2.c" ]; then
  log "unpacking libgcc/ from $(basename "$deb")"
  tmp="$MIPS_SRC/.gcc-tmp"; rm -rf "$tmp" "$G"; mkdir -p "$tmp"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/gcc-12/gcc-*.tar.xz'
  # only what libgcc2.c and soft-fp need: libgcc/, include/ and gcc/*.h
  tar -xJf "$tmp"/usr/src/gcc-12/gcc-12.*-dfsg.tar.xz -C "$tmp" --wildcards \
    'gcc-12.*/libgcc/*' 'gcc-12.*/include/*' 'gcc-12.*/gcc/*.h' 'gcc-12.*/gcc/*.def'
  mv "$tmp"/gcc-12.*/ "$G"; rm -rf "$tmp"
fi
obj="${LIBGCC_SF_OBJ:-$MIPS_CACHE/libgcc-sf-obj}"; rm -rf "$obj"; mkdir -p "$obj/stub"
# Stand-ins for the headers gcc's own build would generate (tconfig.h, tm.h, ...):
# libgcc2.h only needs MIN_UNITS_PER_WORD from tm.h; the rest comes from the
# __LIBGCC_*__ macros gcc predefines under -fbuilding-libgcc.
echo '#define USED_FOR_TARGET 1' >"$obj/stub/tconfig.h"
echo '#define MIN_UNITS_PER_WORD 4' >"$obj/stub/tm.h"
: >"$obj/stub/libgcc_tm.h"; : >"$obj/stub/auto-target.h"
CC="${CROSS}gcc $MIPS_CFLAGS -O2 -fPIC -fbuilding-libgcc -fno-stack-protector -fvisibility=hidden \
  -DIN_GCC -DIN_LIBGCC2 -DHIDE_EXPORTS -DCROSS_DIRECTORY_STRUCTURE -Dinhibit_libc \
  -Wno-missing-prototypes -Wno-type-limits \
  -I$obj/stub -I$G/libgcc -I$G/libgcc/config/mips -I$G/gcc -I$G/include"
# libgcc/Makefile.in lib2funcs + LIB2_DIVMOD_FUNCS (without __main/ctors/trampoline/cache,
# which a musl userland never uses); XF/TF/HC variants compile to empty objects.
lib2="_muldi3 _negdi2 _lshrdi3 _ashldi3 _ashrdi3 _cmpdi2 _ucmpdi2 _absvsi2 _absvdi2
  _addvsi3 _addvdi3 _subvsi3 _subvdi3 _mulvsi3 _mulvdi3 _negvsi2 _negvdi2 _ffssi2 _ffsdi2
  _clz _clzsi2 _clzdi2 _ctzsi2 _ctzdi2 _popcount_tab _popcountsi2 _popcountdi2 _paritysi2
  _paritydi2 _powisf2 _powidf2 _mulsc3 _muldc3 _divsc3 _divdc3 _bswapsi2 _bswapdi2
  _clrsbsi2 _clrsbdi2 _divdi3 _moddi3 _divmoddi4 _udivdi3 _umoddi3 _udivmoddi4 _udiv_w_sdiv"
# config/t-softfp with mips' t-softfp-sfdf modes (sf, df; si, di; sfdf; dfsf)
sfp=""
for m in sf df; do
  sfp="$sfp add${m}3 div${m}3 eq${m}2 ge${m}2 le${m}2 mul${m}3 neg${m}2 sub${m}3 unord${m}2"
  for i in si di; do sfp="$sfp fix${m}${i} fixuns${m}${i} float${i}${m} floatun${i}${m}"; done
done
sfp="$sfp extendsfdf2 truncdfsf2"
log "compiling $(echo $lib2 | wc -w) libgcc2 + $(echo $sfp | wc -w) soft-fp objects"
pids=()
for f in $lib2; do $CC -DL$f -c "$G/libgcc/libgcc2.c" -o "$obj/$f.o" & pids+=($!); [ ${#pids[@]} -ge "$JOBS" ] && { wait "${pids[0]}"; pids=("${pids[@]:1}"); }; done
for f in $sfp; do $CC -c "$G/libgcc/soft-fp/$f.c" -o "$obj/sf_$f.o" & pids+=($!); [ ${#pids[@]} -ge "$JOBS" ] && { wait "${pids[0]}"; pids=("${pids[@]:1}"); }; done
for p in "${pids[@]}"; do wait "$p"; done
n=$(ls "$obj"/*.o | wc -l); want=$(( $(echo $lib2 $sfp | wc -w) ))
[ "$n" -eq "$want" ] || die "libgcc-sf: only $n of $want objects compiled"
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"; ${CROSS}ar rcs "$out.tmp" "$obj"/*.o
OBJDUMP=${CROSS}objdump "$here/check-no-fpu.sh" "$out.tmp" >/dev/null || die "libgcc-sf.a contains FPU instructions"
mv "$out.tmp" "$out"
log "libgcc-sf.a: $n objects, $(stat -c %s "$out") bytes"
echo "$out"
