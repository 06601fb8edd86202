#!/bin/bash
# usage: check-no-fpu.sh <elf|.o|.a>...
# Fails (exit 1) when the MIPS disassembly contains any FPU (coprocessor 1) instruction:
# ath79's 24Kc has no FPU and OpenWrt's ath79 kernels have no FPU emulator, so a single
# such instruction is a SIGILL on the router. Disassemble UNSTRIPPED binaries: without
# symbols objdump decodes MIPS16 code as 32-bit garbage (false hits and misses).
set -uo pipefail
OBJDUMP="${OBJDUMP:-mips-linux-gnu-objdump}"
[ $# -ge 1 ] || { echo "usage: $0 <elf>..." >&2; exit 2; }
# mnemonic patterns: arithmetic/convert/compare with .s/.d/.ps/.w/.l formats, FP loads/stores,
# moves to/from cop1 and FP branches.
fpu_re='^(add|sub|mul|div|abs|neg|sqrt|mov|recip|rsqrt|madd|msub|nmadd|nmsub|round|trunc|ceil|floor|cvt|c|cmp|sel|seleqz|selnez|min|max|mina|maxa|class|rint|movf|movt|movz|movn)\.[a-z0-9.]*(s|d|ps|w|l)$|^(lwc1|ldc1|swc1|sdc1|lwxc1|ldxc1|swxc1|sdxc1|luxc1|suxc1|mtc1|mfc1|mthc1|mfhc1|ctc1|cfc1|bc1t|bc1f|bc1tl|bc1fl|bc1eqz|bc1nez|l\.s|l\.d|s\.s|s\.d|li\.s|li\.d)$'
rc=0
for f in "$@"; do
  [ -r "$f" ] || { echo "check-no-fpu: cannot read $f" >&2; rc=2; continue; }
  if ! dis=$("$OBJDUMP" -d "$f" 2>&1); then
    echo "check-no-fpu: $OBJDUMP failed on $f: $(echo "$dis" | head -1)" >&2; rc=2; continue
  fi
  # objdump -d lines: "  addr:\tHEX \tmnemonic\toperands"; MIPS16 lines have the same shape.
  hits=$(echo "$dis" | awk -F'\t' -v re="$fpu_re" '
    /^[0-9a-f]+ <.*>:$/ { sym=$0 }
    NF >= 3 { m=$3; sub(/ .*/, "", m); if (m ~ re) { n++; if (n <= 10) print "  " sym " " $0 } }
    END { if (n) print "  total: " n }')
  if [ -n "$hits" ]; then
    echo "FPU instructions found in $f (SIGILL on a 24Kc without FPU):"
    echo "$hits"
    rc=1
  else
    echo "no FPU instructions in $f"
  fi
done
exit $rc
