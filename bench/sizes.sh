#!/bin/bash
# Prints the client's size and memory figures (recorded in bench/size.md):
#  * stripped / gzip -9 / xz -9 of build/mips_24kc/tunneldigger (and build/x86_64/tunneldigger),
#  * the ipk in dist/ (make ipk),
#  * the per-arch table of the router builds (scripts/cross/size-table.sh: binary, gzip, xz, ipk
#    and budget for each of the five package architectures that are built; make ipks),
#  * peak RSS (VmHWM) under qemu-mips-static -cpu 24Kc: the client waiting for the kernel's
#    L2TP interface, and a trivial static MIPS program as qemu's own baseline. qemu-user RSS
#    includes the emulator and its translation cache, so this is an upper bound, not the device
#    figure (that comes from the MIPS VM).
# usage: bench/sizes.sh   (after make mips_24kc; make ipk for the ipk line)
set -uo pipefail
cd "$(dirname "$0")/.."
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
BIN=build/mips_24kc/tunneldigger
OUT=build/mips_24kc/bench
mkdir -p "$OUT/sysroot/lib"
[ -f "$BIN" ] || { echo "sizes: $BIN missing; run make mips_24kc first" >&2; exit 1; }

echo "== sizes"
scripts/mips-client/sizes.sh "$BIN" "mips_24kc"
[ -f build/x86_64/tunneldigger ] && scripts/mips-client/sizes.sh build/x86_64/tunneldigger "x86_64 (host)"
for ipk in dist/tunneldigger_*_mips_24kc.ipk; do
  [ -f "$ipk" ] || continue
  n=$(stat -c %s "$ipk")
  awk -v f="$ipk" -v n="$n" 'BEGIN { printf "ipk %s: %d B (%.1f KiB)\n", f, n, n / 1024 }'
  [ "$ipk" -ot "$BIN" ] && echo "  (older than $BIN: run make ipk to refresh)"
done

echo "== router builds (make ipks)"
scripts/cross/size-table.sh || echo "(an ipk over budget or a file missing, see above)"

echo "== peak RSS under qemu-mips-static -cpu 24Kc (upper bound; includes qemu)"
cp "$CACHE/mips/musl/lib/libc.so" "$OUT/sysroot/lib/ld-musl-mips-sf.so.1"
# vmhwm <seconds> cmd...: runs cmd in the background, reads VmHWM just before killing it
vmhwm() {
  local secs=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$! kb
  sleep "$secs"
  kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null
  echo "${kb:-?}"
}
printf '#include <unistd.h>\nint main(void) { sleep(30); return 0; }\n' >"$OUT/sleeper.c"
"$CACHE/mips/bin/mips-musl-gcc" -Os -static -o "$OUT/sleeper" "$OUT/sleeper.c"
base=$(vmhwm 2 qemu-mips-static -cpu 24Kc "$OUT/sleeper")
idle=$(vmhwm 3 qemu-mips-static -cpu 24Kc -L "$OUT/sysroot" "$BIN" --selftest-signal)
client=$(vmhwm 7 qemu-mips-static -cpu 24Kc -L "$OUT/sysroot" "$BIN" -f -u bench-rss \
  -b 127.0.0.1:8942 -i l2tp-bench)
echo "qemu baseline (static sleep):            ${base} kB"
echo "client bundle loaded, idle (selftest):   ${idle} kB"
echo "client running (kernel-retry loop, 7 s): ${client} kB"
# The device figure: written by test/vm-mips/run-scenarios.sh (client in the MIPS VM, tunnel up).
if [ -f build/vm-mips/mips-client-rss.txt ]; then
  echo "== in the MIPS VM (real kernel, tunnel up; no emulator in the figure)"
  cat build/vm-mips/mips-client-rss.txt
fi
