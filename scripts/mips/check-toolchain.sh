#!/bin/bash
# Proves the ath79 toolchain: builds test/vm-mips/toolchain-probe.c (double arithmetic + UDP
# on 127.0.0.1) with mips-musl-gcc -Os (dynamic, static, MIPS16e), runs each under
# `qemu-mips-static -cpu 24Kc` (no FPU, like the routers) and scans it with check-no-fpu.sh.
# Negative control: the same program from Debian's default hard-float glibc toolchain must
# be flagged by the checker (and dies with SIGILL on a 24Kc).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/common.sh"
root=$(cd "$here/../.." && pwd)
cc=$("$here/build-musl.sh")
SYSROOT="$MIPS_CACHE/musl"
src="$root/test/vm-mips/toolchain-probe.c"
out="$MIPS_CACHE/probe"; mkdir -p "$out"
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

build_and_run() { # name, extra flags...
  local name="$1"; shift
  "$cc" -Wall -Os "$@" -o "$out/$name" "$src" || { bad "$name: compile"; return; }
  local res rc=0; res=$(qemu-mips-static -cpu 24Kc -L "$SYSROOT" "$out/$name" 2>&1) || rc=$?
  if [ $rc -eq 0 ] && [[ "$res" == "PROBE OK"* ]]; then ok "$name runs on -cpu 24Kc: $res"; else bad "$name (rc=$rc): $res"; fi
  if "$here/check-no-fpu.sh" "$out/$name" >/dev/null; then ok "$name has no FPU instructions"; else bad "$name contains FPU instructions"; fi
}
build_and_run probe-dyn -Wl,-dynamic-linker=/lib/ld-musl-mips-sf.so.1
build_and_run probe-dyn-nopie -fno-pie -no-pie
build_and_run probe-static -static
build_and_run probe-mips16 -mips16 -minterlink-mips16 -fno-pie -no-pie
interp=$(${CROSS}readelf -l "$out/probe-dyn" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
[ "$interp" = /lib/ld-musl-mips-sf.so.1 ] && ok "interpreter $interp" || bad "interpreter is '$interp'"
${CROSS}readelf -A "$out/probe-dyn" | grep -q 'FP ABI: Soft float' && ok "FP ABI: soft float" || bad "FP ABI is not soft float"

# negative control: Debian's hard-float glibc toolchain
${CROSS}gcc -Os -static -o "$out/probe-hardfloat" "$src" || bad "hard-float compile"
if "$here/check-no-fpu.sh" "$out/probe-hardfloat" >"$out/probe-hardfloat.fpu"; then
  bad "checker did not flag the hard-float build"
else
  ok "checker flags the hard-float build: $(grep -c '^  [0-9a-f]* <' "$out/probe-hardfloat.fpu") sample lines, $(sed -n 's/^  total: //p' "$out/probe-hardfloat.fpu") FPU instructions"
fi
# (inner bash so the "Illegal instruction" job message does not clutter the output)
rc=0; bash -c '"$@"; exit $?' _ qemu-mips-static -cpu 24Kc "$out/probe-hardfloat" >/dev/null 2>&1 || rc=$?
[ $rc -ne 0 ] && ok "hard-float build fails on -cpu 24Kc (exit $rc, 132 = SIGILL)" || bad "hard-float build unexpectedly ran on 24Kc"
[ $fail -eq 0 ] && echo "mips toolchain: PASS" || echo "mips toolchain: FAIL"
exit $fail
