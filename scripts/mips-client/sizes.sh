#!/bin/bash
# usage: sizes.sh <binary> [label]
# Prints one size line for a client binary: stripped bytes, gzip -9 and xz -9 (the squashfs
# image compresses with xz; the ipk's data.tar.gz with gzip), plus the bytecode size when the
# generated client_bytecode.c is next to it.
set -euo pipefail
bin=${1:?usage: sizes.sh <binary> [label]}
label=${2:-$bin}
[ -f "$bin" ] || { echo "sizes: $bin not found; build it first (make mips_24kc)" >&2; exit 1; }
raw=$(stat -c %s "$bin")
gz=$(gzip -9 -n -c "$bin" | wc -c)
xz=$(xz -9 -c "$bin" | wc -c)
bc=""
bcfile="$(dirname "$bin")/client_bytecode.c"
[ -f "$bcfile" ] && bc=$(grep -o 'qjsc_client_size = [0-9]*' "$bcfile" | grep -o '[0-9]*$' || true)
awk -v l="$label" -v r="$raw" -v g="$gz" -v x="$xz" -v b="${bc:+, bytecode $bc B}" 'BEGIN {
  printf "%s: stripped %d B (%.1f KiB), gzip -9 %d B (%.1f KiB), xz -9 %d B (%.1f KiB)%s\n",
    l, r, r / 1024, g, g / 1024, x, x / 1024, b }'
