#!/bin/bash
# usage: test/cross/run-user.sh <openwrt-arch>   (mipsel_24kc, arm_cortex-a7_neon-vfpv4,
#                                                  aarch64_cortex-a53, x86_64)
# User-mode tests of one router build (mk/router-client.mk) under the qemu-user CPU model of the
# routers that arch serves (scripts/cross/arch.sh: 24Kc without FPU, Cortex-A7, Cortex-A53,
# baseline x86-64), with a sysroot that holds only the device's loader /lib/ld-musl-*.so.1 (=
# musl's libc.so), so a stray library dependency fails here too. The same checks as
# test/mips/run-user.sh (which keeps testing mips_24kc), plus:
#   <arch>/cpu-model-traps  the qemu CPU model really refuses what the router lacks (FPU on the
#                           24Kc, ARMv8 on the A7, LSE atomics on the A53, AVX on x86-64)
#   <arch>/bytecode         the little-endian host bytecode linked into the binary is
#                           byte-identical to what a qjsc built for this arch writes (not on
#                           x86_64, whose bytecode comes from an x86-64 qjsc already)
#   <arch>/openwrt-client-little-endian  (arm only) `make openwrt-client` with the SDK's
#                           variables, little-endian path: runs, and links the host bytecode
# Prints "VMTEST PASS <arch>/<name>" / "VMTEST FAIL <arch>/<name>: why" (test/run.sh counts
# them); one "VMTEST SKIP <arch>/user: why" line and exit 0 when qemu-user or the toolchain is
# not available (test/run.sh counts a skip, and a failure under CI=true).
set -u
cd "$(dirname "$0")/../.."
[ $# -eq 1 ] || { echo "usage: $0 <openwrt-arch>" >&2; exit 2; }
A=$1
. scripts/cross/arch.sh
cross_arch "$A" || exit 2
[ "$A" = mips_24kc ] && { echo "$0: mips_24kc is tested by test/mips/run-user.sh" >&2; exit 2; }
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
D=build/$A; [ "$A" = x86_64 ] && D=build/x86_64-musl
BIN=$D/tunneldigger
UNSTRIPPED=$D/tunneldigger.unstripped
OUT=$D/test-user
SYSROOT=$OUT/sysroot
X=$X_TRIPLE-
read -r -a QEMU <<<"$X_QEMU"
QEMU+=(-L "$SYSROOT")
mkdir -p "$OUT"

pass() { echo "VMTEST PASS $A/$1"; }
fail() { echo "VMTEST FAIL $A/$1: $2"; }

# ---- build (up to date: make only checks) -------------------------------------------------------
command -v "${QEMU[0]}" >/dev/null || { echo "VMTEST SKIP $A/user: ${QEMU[0]} not installed (make deps installs qemu-user-static)"; exit 0; }
if ! make -s "router-toolchain-$A" >"$OUT/toolchain.log" 2>&1; then
  echo "VMTEST SKIP $A/user: the $A musl toolchain cannot be built here (see $OUT/toolchain.log): $(tail -1 "$OUT/toolchain.log")"
  exit 0
fi
t0=$(date +%s)
if ! make -s "$BIN" >"$OUT/build.log" 2>&1; then
  fail build "make $BIN failed: $(grep -m1 -iE 'error|FPU' "$OUT/build.log" || tail -1 "$OUT/build.log")"
  exit 1
fi
pass build
echo "info: make $BIN took $(( $(date +%s) - t0 )) s"

rm -rf "$SYSROOT"; mkdir -p "$SYSROOT/lib"
cp "$CACHE/$A/musl/lib/libc.so" "$SYSROOT/lib/$X_LDSO"

# run <name> args...: runs the client under qemu; sets rc, out, err
run() {
  local name=$1; shift
  timeout -s KILL 30 "${QEMU[@]}" "$BIN" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  rc=$?
  out=$(cat "$OUT/$name.out"); err=$(cat "$OUT/$name.err")
}
add() { why="${why:+$why; }$1"; }

# ---- the ELF is what the router can load --------------------------------------------------------
t=elf-abi
hdr=$("${X}readelf" -h -l -d -A "$BIN" 2>&1)
why=""
grep -q "little endian" <<<"$hdr" || add "not little-endian"
grep -q "Requesting program interpreter: /lib/$X_LDSO" <<<"$hdr" || add "interpreter is not /lib/$X_LDSO"
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$hdr" | tr '\n' ' ')
[ "$needed" = "libc.so " ] || add "needs '$needed' instead of only libc.so"
grep -q "Type: *EXEC" <<<"$hdr" || add "not a non-PIE executable"
"${X}readelf" -S "$BIN" | grep -qE '\.symtab|\.comment' && add "not stripped"
case "$A" in
  mipsel_*)
    grep -q "Machine: *MIPS R3000" <<<"$hdr" || add "not a MIPS ELF"
    grep -q "ISA: MIPS32r2" <<<"$hdr" || add "ISA is not mips32r2"
    grep -q "FP ABI: Soft float" <<<"$hdr" || add "FP ABI is not soft float" ;;
  arm_*)
    grep -q "Machine: *ARM$" <<<"$hdr" || add "not an ARM ELF"
    grep -q "Flags:.*Version5 EABI, hard-float ABI" <<<"$hdr" || add "not the EABI5 hard-float ABI (armhf)"
    grep -q "Tag_CPU_arch: v7$" <<<"$hdr" || add "Tag_CPU_arch is not v7"
    grep -q "Tag_ABI_VFP_args: VFP registers" <<<"$hdr" || add "floats are not passed in VFP registers"
    grep -q "Tag_FP_arch: VFPv4$" <<<"$hdr" || add "Tag_FP_arch is not VFPv4" ;;
  aarch64_*)
    grep -q "Machine: *AArch64" <<<"$hdr" || add "not an AArch64 ELF" ;;
  x86_64)
    grep -q "Machine: *Advanced Micro Devices X86-64" <<<"$hdr" || add "not an x86-64 ELF"
    grep -q "Class: *ELF64" <<<"$hdr" || add "not ELF64" ;;
esac
[ -z "$why" ] && pass $t || fail $t "$why"

# Instructions the router's CPU does not have, found statically (the qemu runs below only catch
# what the self-tests execute). Scanned on the unstripped ELF (symbols: MIPS16 decoding).
t=isa-scan
case "$A" in
  mipsel_*)
    r=$(OBJDUMP=${X}objdump scripts/mips/check-no-fpu.sh "$UNSTRIPPED" 2>&1)
    [ $? -eq 0 ] && pass $t || fail $t "$(echo "$r" | head -3 | tr '\n' ' ')" ;;
  *)
    case "$A" in
      arm_*)     re='^(aes[demc]|sha1[a-z0-9]*|sha256[a-z0-9]*|vmull\.p64|vrint[a-z]*|vcvt[amnp]\.|vsel[a-z]*|vmaxnm|vminnm|lda|stl|crc32)'
                 what="ARMv8 (crypto, VRINT, acquire/release, CRC)" ;;
      aarch64_*) re='^(cas|casp|ldadd|ldclr|ldeor|ldset|ldsmax|ldsmin|ldumax|ldumin|swp|stadd|stclr|steor|stset)[alhb]*$|^(sqrdmlah|sqrdmlsh|fcmla|fcadd|ldapr|rev64b)'
                 what="ARMv8.1+ (LSE atomics, RDMA, ...)" ;;
      x86_64)    re='^(v[a-z0-9]+|pshufb|palignr|ptest|pblendvb|blendv[a-z]*|pmovzx[a-z]*|pmovsx[a-z]*|popcnt|lzcnt|tzcnt|crc32[a-z]*|andn|bextr|blsi|blsr|shlx|shrx|sarx|rorx|pdep|pext|movbe)$'
                 what="SSSE3/SSE4/AVX/BMI/POPCNT" ;;
    esac
    hits=$("${X}objdump" -d "$UNSTRIPPED" | awk -F'\t' -v re="$re" 'NF >= 3 { m=$3; sub(/ .*/, "", m); if (m ~ re) { n++; if (n <= 3) printf "%s; ", $0 } } END { if (n) print "total " n }')
    [ -z "$hits" ] && pass $t || fail $t "$what instructions: $hits" ;;
esac

# ---- the CPU model refuses what the router lacks (negative control of the runs below) ----------
t=cpu-model-traps
probe=$OUT/probe
case "$A" in
  mipsel_*)  insn='".set push\n.set hardfloat\nadd.d $f0, $f2, $f4\n.set pop"' ;;
  arm_*)     insn='".arch armv8-a\n.fpu crypto-neon-fp-armv8\naese.8 q0, q1"' ;;
  aarch64_*) insn='".arch armv8.1-a\nldadd w1, w2, [sp]"' ;;
  x86_64)    insn='"vpaddd %%ymm0, %%ymm0, %%ymm0"' ;;
esac
cat >"$probe.c" <<EOF
#include <stdio.h>
int main(int argc, char **argv) {
  if (argc > 1) __asm__ volatile($insn ::: "memory");
  printf("probe ok\n");
  return 0;
}
EOF
why=""
if ! "$CACHE/$A/bin/$A-musl-gcc" -O1 -static -o "$probe" "$probe.c" >"$probe.log" 2>&1; then
  add "probe does not compile: $(head -1 "$probe.log")"
else
  r=$(timeout -s KILL 20 "${QEMU[@]}" "$probe" 2>&1); rc=$?
  [ $rc -eq 0 ] && [ "$r" = "probe ok" ] || add "plain probe: rc=$rc '$r'"
  # (inner bash: no "Illegal instruction" job message)
  rc=0; bash -c '"$@" >/dev/null 2>&1; exit $?' _ timeout -s KILL 20 "${QEMU[@]}" "$probe" trap 2>/dev/null || rc=$?
  [ $rc -eq 132 ] || add "the instruction the router lacks ran (rc=$rc, expected 132 = SIGILL) under $X_QEMU"
fi
[ -z "$why" ] && pass $t || fail $t "$why"

# ---- the bytecode in the binary is what this arch's own qjsc writes ----------------------------
# The build links the host (x86-64) qjsc's output; QuickJS bytecode is little-endian here and
# has no word-size or char-signedness dependent field. A static qjsc for the arch (cached in
# $CACHE/<arch>/qjsc, rebuilt when the QuickJS source changes) proves it on every run.
t=bytecode
qjsc=$CACHE/$A/qjsc/qjsc
vars=$(make -s router-qjs-vars 2>/dev/null)
qsrc=$(sed -n 's/^QJS_SRC=//p' <<<"$vars")
qdefs=$(sed -n 's/^QJS_MIN_DEFS=//p' <<<"$vars")
why=""
if [ "$A" = x86_64 ]; then
  : # the host qjsc that wrote it is an x86-64 build of the same sources: nothing to compare
elif [ ! -x "$qjsc" ] || [ "$qsrc/.td-unpacked" -nt "$qjsc" ]; then
  mkdir -p "$(dirname "$qjsc")"
  # shellcheck disable=SC2086 # qdefs is a list of -D flags
  (cd "$qsrc" && eval "\"$CACHE/$A/bin/$A-musl-gcc\" -O1 -static $qdefs -w -o '$qjsc.tmp' qjsc.c quickjs.c libregexp.c libunicode.c cutils.c quickjs-libc.c dtoa.c") \
    >"$OUT/qjsc-build.log" 2>&1 && mv "$qjsc.tmp" "$qjsc" || add "qjsc for $A does not build: $(grep -m1 error "$OUT/qjsc-build.log")"
fi
if [ -z "$why" ] && [ "$A" != x86_64 ]; then
  if ! timeout -s KILL 120 "${QEMU[@]}" "$qjsc" -c -s -N qjsc_client -M tdnative,tdnative -M tdproc,tdproc -m \
      -o "$OUT/client_bytecode.c" build/qjs/client.js >"$OUT/qjsc-run.log" 2>&1; then
    add "qjsc under qemu failed: $(head -1 "$OUT/qjsc-run.log")"
  elif ! cmp -s "$OUT/client_bytecode.c" build/qjs/client_bytecode.c; then
    add "differs from the host's build/qjs/client_bytecode.c ($(cmp "$OUT/client_bytecode.c" build/qjs/client_bytecode.c | head -1))"
  fi
fi
if [ "$A" = x86_64 ]; then echo "info: $t: not checked on x86_64 (the host qjsc is an x86-64 build)"
elif [ -z "$why" ]; then pass $t; else fail $t "$why"; fi

# ---- command line -------------------------------------------------------------------------------
t=help
run help -h
# like the original: the help goes to stderr, exit status 1
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q 'Usage: tunneldigger \[options\]' <<<"$(head -1 <<<"$err")" \
    && grep -q -- '-b host:port' <<<"$err" && ! grep -q '^error' <<<"$err"; then pass $t
else fail $t "rc=$rc, stdout '${out:0:60}', stderr '$(head -1 <<<"$err")'"; fi

t=bad-args
why=""
i=0
for spec in '-Z|invalid option -Z' \
    '-u x -b 203.0.113.1:8942 -i l2tp0 -t abc|-t' \
    '-u x -b 203.0.113.1:0 -i l2tp0|port must be 1..65535' \
    '-u x -i l2tp0 -b nocolon|-b' \
    'extra|unexpected argument'; do
  i=$((i + 1))
  args=${spec%%|*}; mention=${spec#*|}
  # shellcheck disable=SC2086 # word splitting of the argument list is intended
  run "badargs$i" $args
  first=$(head -1 <<<"$err")
  if [ $rc -ne 1 ] || [ -n "$out" ] || [[ "$first" != "error: "* ]] || [[ "$first" != *"$mention"* ]]; then
    add "'$args': rc=$rc, stderr '$first'"
  fi
done
[ "$(wc -l <"$OUT/badargs1.err")" -eq 1 ] || add "'-Z' printed $(wc -l <"$OUT/badargs1.err") lines instead of 1"
run missing -u x
grep -q '^error: missing required option -b host:port, -i iface' <<<"$err" && [ $rc -eq 1 ] \
  || add "'-u x': rc=$rc, stderr '$(head -1 <<<"$err")'"
[ -z "$why" ] && pass $t || fail $t "$why"

# ---- runtime self-tests of the bundle (src/main/client/selftest.ts) --------------------------
BUILTINS_OUT=$'selftest-builtins: Map 1:2, DataView 7f000001 2,127, toFixed 1234.6, parseInt 31, padStart 007, absent RegExp,Date,JSON,Proxy\nselftest-builtins: promise job ran (42)'
t=builtins
run builtins --selftest-builtins
[ $rc -eq 0 ] && [ "$out" = "$BUILTINS_OUT" ] && [ -z "$err" ] && pass $t \
  || fail $t "rc=$rc, stdout '$(tr '\n' '|' <<<"$out")', stderr '$(head -2 <<<"$err" | tr '\n' ' ')'"

t=loop-rules
loop_ok() {
  run loop --selftest-loop
  [ $rc -eq 0 ] && [ "$out" = "selftest-loop: fd,t20,t40, 0 ms timer ran a few times" ] \
    && grep -qx 'warning: fd [0-9]* was closed while watched, no longer watching it' <<<"$err" && [ "$(wc -l <<<"$err")" -eq 1 ]
}
# The self-test arms its 20 ms timer before the loop first polls: when qemu needs longer than that
# to get there (a loaded machine), the timer is due before the datagram is seen (t20,fd,t40).
# Up to two retries, reported; a wrong order on all three runs fails.
first=""
for try in 1 2 3; do
  if loop_ok; then pass $t; [ -n "$first" ] && echo "info: $t passed on run $try; earlier: $first"; break; fi
  first="${first:+$first; }'$out'"
  [ $try -eq 3 ] && fail $t "rc=$rc, stdout '$out', stderr '$(head -2 <<<"$err" | tr '\n' ' ')' (3 runs: $first)"
done

t=promise-rejection
run reject --selftest-reject
[ $rc -eq 1 ] && [ "$err" = "error: unhandled promise rejection, exiting: Error: nobody handles this" ] && [ -z "$out" ] \
  && pass $t || fail $t "rc=$rc, stderr '$(head -2 <<<"$err" | tr '\n' ' ')'"

t=udp-loop
run udp --selftest-udp
l1=$(sed -n 1p <<<"$out"); l2=$(sed -n 2p <<<"$out")
if [ $rc -eq 0 ] && [ -z "$err" ] && [[ "$l1" =~ ^selftest-udp:\ timer\ fired\ after\ ([0-9]+)\ ms$ ]] \
    && [ "${BASH_REMATCH[1]}" -ge 29 ] \
    && [[ "$l2" =~ ^selftest-udp:\ received\ 13\ bytes\ \"tunneldigger!\"\ from\ 127\.0\.0\.1:([0-9]+)\ own\ port\ ([0-9]+)$ ]] \
    && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]; then pass $t
else fail $t "rc=$rc, stdout '$(tr '\n' '|' <<<"$out")', stderr '$(head -1 <<<"$err")'"; fi

t=callback-exception
run throw --selftest-throw
[ $rc -eq 70 ] && grep -q '^error: internal error in timer callback, exiting: Error: boom from a timer' <<<"$err" \
    && ! grep -q 'still running' <<<"$out" && pass $t || fail $t "rc=$rc, stderr '$(head -1 <<<"$err")'"

t=sigterm
sigterm_run() {
  "${QEMU[@]}" "$BIN" --selftest-signal >"$OUT/signal$1.out" 2>"$OUT/signal$1.err" &
  local pid=$!
  for _ in $(seq 100); do grep -q 'selftest-signal: ready' "$OUT/signal$1.out" 2>/dev/null && break; sleep 0.1; done
  kill -TERM $pid 2>/dev/null
  wait $pid; rc=$?
  [ $rc -eq 3 ] && [ "$(cat "$OUT/signal$1.out")" = $'selftest-signal: ready\nselftest-signal: got SIGTERM' ]
}
# one retry, as in test/mips/run-user.sh (qemu-user's signal emulation, seen under heavy load)
if sigterm_run 1; then pass $t
else
  first="rc=$rc, stdout '$(tr '\n' '|' <"$OUT/signal1.out")'"
  if sigterm_run 2; then pass $t; echo "info: $t passed on the retry; first run: $first"
  else fail $t "$first; retry: rc=$rc, stdout '$(tr '\n' '|' <"$OUT/signal2.out")'"; fi
fi

# ---- `make openwrt-client`, little-endian (the SDK contract in openwrt/README.md) ---------------
# Once, on arm: the musl wrapper stands in for the SDK's TARGET_CC with ipq40xx's TARGET_CFLAGS;
# the little-endian path links the host qjsc's bytecode (big-endian: test/mips/run-user.sh).
if [ "$A" = arm_cortex-a7_neon-vfpv4 ]; then
  t=openwrt-client-little-endian
  owrt=$OUT/openwrt-out/tunneldigger
  rm -f "$owrt"
  if ! make -s openwrt-client TD_TARGET_CC="$CACHE/$A/bin/$A-musl-gcc" \
      TD_TARGET_CFLAGS="-Os -pipe -mcpu=cortex-a7 -mfpu=neon-vfpv4 -fno-caller-saves -mthumb" \
      TD_TARGET_LDFLAGS= TD_TARGET_ARCH=arm TD_TARGET_ENDIAN=little TD_TARGET_SOFT_FLOAT=0 \
      TD_OUT="$owrt" >"$OUT/openwrt-client.log" 2>&1; then
    fail $t "make openwrt-client failed: $(grep -m1 -i 'error' "$OUT/openwrt-client.log" || tail -1 "$OUT/openwrt-client.log")"
  else
    re=$(timeout -s KILL 30 "${QEMU[@]}" "$owrt" --selftest-builtins 2>&1)
    if [ "$re" != "$BUILTINS_OUT" ]; then fail $t "SDK-style binary: '$(tr '\n' '|' <<<"$re")'"
    elif ! cmp -s build/openwrt-arm-little/client_bytecode.c build/qjs/client_bytecode.c; then
      fail $t "its bytecode differs from build/qjs/client_bytecode.c"
    else pass $t; fi
  fi
fi

# ---- the client proper, as far as qemu-user lets it go (no NETLINK_GENERIC under qemu-user) ------
t=client-kernel-retry
broker_log=$OUT/fake-broker.log
node -e '
  const s = require("dgram").createSocket("udp4");
  let n = 0;
  s.on("message", () => { n++; });
  s.bind(0, "127.0.0.1", () => console.log(`port ${s.address().port}`));
  const end = () => { console.log(`total ${n}`); process.exit(0); };
  process.on("SIGTERM", end);
  setTimeout(end, 30000);
' >"$broker_log" 2>&1 &
bpid=$!
for _ in $(seq 50); do grep -q '^port ' "$broker_log" && break; sleep 0.1; done
bport=$(sed -n 's/^port //p' "$broker_log")
"${QEMU[@]}" -strace -D "$OUT/client.strace" "$BIN" -f -u 5e0b1a2c-cross-user \
  -b "127.0.0.1:${bport:-8942}" -i l2tp-x -t 7 >"$OUT/client.out" 2>"$OUT/client.err" &
cpid=$!
sleep 11.5   # attempts at about 0, 5 and 10 s
alive=no; kill -0 $cpid 2>/dev/null && alive=yes
rss=$(awk '/^VmHWM/ {print $2}' /proc/$cpid/status 2>/dev/null)
kill -TERM $cpid 2>/dev/null
code=timeout
for _ in $(seq 50); do kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $cpid 2>/dev/null; then kill -KILL $cpid; wait $cpid 2>/dev/null; else wait $cpid; code=$?; fi
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null
attempts=$(awk '/socket\((PF_NETLINK|16),.*,16\)/ { if (!prev) n++; prev = 1; next } { prev = 0 } END { print n + 0 }' "$OUT/client.strace")
errs=$(grep -c 'kernel L2TP netlink interface unavailable' "$OUT/client.err")
why=""
[ "$alive" = yes ] || add "client died before the SIGTERM (stderr: $(tail -1 "$OUT/client.err"))"
grep -q 'starting: tunnel 7 on l2tp-x, uuid 5e0b1a2c-cross-user' "$OUT/client.err" || add "no 'starting' line"
[ "$errs" -eq 1 ] || add "the kernel error was logged $errs times instead of once"
grep -q 'kernel L2TP netlink interface unavailable (.*), retrying every 5 s$' "$OUT/client.err" || add "no one-line kernel error"
[ "$attempts" -ge 3 ] || add "only $attempts netlink attempts in 11.5 s (expected 3: 0, 5, 10 s)"
[ "$code" = 0 ] || add "exit status after SIGTERM: $code (expected 0)"
grep -q 'internal error\|SIGSEGV\|Illegal' "$OUT/client.err" && add "unexpected: $(grep -m1 'internal error\|SIGSEGV\|Illegal' "$OUT/client.err")"
[ -z "$why" ] && pass $t || fail $t "$why"
echo "info: $A client under qemu-user: $attempts netlink attempts in 11.5 s, qemu VmHWM ${rss:-?} kB"
exit 0
