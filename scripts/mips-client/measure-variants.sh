#!/bin/bash
# usage: measure-variants.sh [variant | name='extra flags' ...]
# Builds the MIPS client with alternative code-generation flags (same sources, bytecode and
# link as mk/mips-client.mk) into build/mips_24kc/variants/<name>, checks each for FPU
# instructions, runs its builtins/UDP self-tests under qemu-mips-static -cpu 24Kc and prints its
# sizes. Used to pick the defaults recorded in bench/size.md. Needs `make mips_24kc` first.
set -uo pipefail
cd "$(dirname "$0")/../.."
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
CC=$CACHE/mips/bin/mips-musl-gcc
QJS_SRC=$(ls -d "$CACHE"/quickjs/quickjs-2025.04.26)
OUT=build/mips_24kc/variants
BC=build/mips_24kc/client_bytecode.c
[ -f "$BC" ] || { echo "measure-variants: $BC missing; run make mips_24kc first" >&2; exit 1; }
mkdir -p "$OUT/sysroot/lib"
cp "$CACHE/mips/musl/lib/libc.so" "$OUT/sysroot/lib/ld-musl-mips-sf.so.1"
base="-Os -ffunction-sections -fdata-sections -flto -fno-pie"
m16="-mips16 -minterlink-mips16"
declare -A V=(
  [mips32]=""
  [mips16]="$m16"
  [mips32-noshared]="-mno-shared -mplt"
  [mips16-noshared]="$m16 -mno-shared -mplt"
  [mips16-noshared-ndebug]="$m16 -mno-shared -mplt -DNDEBUG"
)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(mips32 mips16 mips32-noshared mips16-noshared)
for n in "${names[@]}"; do
  if [[ "$n" == *=* ]]; then flags=${n#*=}; n=${n%%=*}
  else
    [ -n "${V[$n]+x}" ] || { echo "unknown variant $n (known: ${!V[*]})" >&2; continue; }
    flags=${V[$n]}
  fi
  bin="$OUT/$n/tunneldigger"; mkdir -p "$OUT/$n"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  if ! $CC $base $flags -D_GNU_SOURCE -DCONFIG_VERSION=\"2025-04-26\" -DQJS_NO_ATOMICS -DQJS_NO_WORKER \
      -w -I"$QJS_SRC" -Iqjs-native -flto=2 -no-pie -Wl,--gc-sections \
      -o "$bin.unstripped" "$QJS_SRC"/{quickjs,libregexp,libunicode,cutils,dtoa}.c \
      qjs-native/{qjs_main,td_core,td_quickjs,td_qjs_loop}.c "$BC" >"$OUT/$n/build.log" 2>&1; then
    echo "$n: build failed: $(grep -m1 error "$OUT/$n/build.log")"; continue
  fi
  mips-linux-gnu-strip -s -R .comment -o "$bin" "$bin.unstripped"
  fpu=ok; OBJDUMP=mips-linux-gnu-objdump scripts/mips/check-no-fpu.sh "$bin.unstripped" >/dev/null || fpu=FPU-INSTRUCTIONS
  re=$(qemu-mips-static -cpu 24Kc -L "$OUT/sysroot" "$bin" --selftest-builtins 2>&1 | tail -1)
  udp=$(qemu-mips-static -cpu 24Kc -L "$OUT/sysroot" "$bin" --selftest-udp 2>&1 | tail -1)
  run=ok; [ "$re" = "selftest-builtins: promise job ran (42)" ] && [[ "$udp" == *'received 13 bytes'* ]] || run="FAILED ($re / $udp)"
  line=$(scripts/mips-client/sizes.sh "$bin" "$n [$flags]")
  echo "$line, fpu $fpu, run $run, $(( $(date +%s) - t0 )) s"
done
