#!/bin/bash
# usage: scripts/cross/size-table.sh [<arch>:<binary>:<ipk>]...
# Prints the size table of the router builds, one row per package architecture: stripped
# binary, its gzip -9 (what the ipk's data.tar.gz costs) and xz -9 (what it costs in a squashfs
# image), the ipk and its budget: 192 KiB for MIPS and ARM, 256 KiB for x86_64 (issue 11).
# Without arguments it looks for the five arches' binaries and their newest ipk in dist/ and
# lists what it finds. Exit status 1 when an ipk is over budget or a named file is missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
budget_kib() { case "$1" in x86_64) echo 256 ;; *) echo 192 ;; esac; }
bin_of() { case "$1" in mips_24kc) echo build/mips_24kc/tunneldigger ;; x86_64) echo build/x86_64-musl/tunneldigger ;; *) echo "build/$1/tunneldigger" ;; esac; }
rows=("$@")
if [ ${#rows[@]} -eq 0 ]; then
  for a in mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64; do
    b=$(bin_of "$a"); i=$(ls -t dist/tunneldigger_*_"$a".ipk 2>/dev/null | head -1)
    [ -f "$b" ] || [ -n "$i" ] && rows+=("$a:$b:$i")
  done
fi
rc=0
printf '%-26s %9s %9s %9s %9s %7s  %s\n' arch stripped gzip-9 xz-9 ipk budget ""
for r in "${rows[@]}"; do
  IFS=: read -r a b i <<<"$r"
  s=- g=- x=- n=- st=""
  if [ -f "$b" ]; then s=$(stat -c %s "$b"); g=$(gzip -9 -n -c "$b" | wc -c); x=$(xz -9 -c "$b" | wc -c)
  else st="no binary $b"; rc=1; fi
  kib=$(budget_kib "$a")
  if [ -n "$i" ] && [ -f "$i" ]; then
    n=$(stat -c %s "$i")
    if [ "$n" -gt $((kib * 1024)) ]; then st="${st:+$st, }OVER BUDGET"; rc=1; else st="${st:+$st, }ok"; fi
  else st="${st:+$st, }no ipk${i:+ $i}"; [ -n "$i" ] && rc=1; fi
  kb() { [ "$1" = - ] && echo - || awk -v n="$1" 'BEGIN { printf "%.1fK", n / 1024 }'; }
  printf '%-26s %9s %9s %9s %9s %6sK  %s\n' "$a" "$(kb "$s")" "$(kb "$g")" "$(kb "$x")" "$(kb "$n")" "$kib" "$st"
done
echo "(KiB; stripped binary, gzip -9 and xz -9 of it, the .ipk; budget for the .ipk)"
exit $rc
