#!/bin/bash
# User-mode tests of the router build build/mips_24kc/tunneldigger under
# `qemu-mips-static -cpu 24Kc` (the FPU-less ath79 core: any FPU instruction is a SIGILL), with
# the device's dynamic loader supplied by a minimal sysroot (only lib/ld-musl-mips-sf.so.1 =
# musl's libc.so, so a stray library dependency fails here too).
#
# Prints "VMTEST PASS <name>" / "VMTEST FAIL <name>: why" (test/run.sh counts them). Without
# qemu-mips-static, or if the MIPS toolchain itself cannot be built, it prints one
# "VMTEST SKIP mips-user: why" line and exits 0; test/run.sh counts that as a skip (a failure
# under CI=true).
#
# qemu-user refuses NETLINK_GENERIC sockets, so the client cannot get past resolving the l2tp
# family (it does that before contacting brokers): the last test checks that it reports this
# once, keeps retrying every 5 s without crashing, and stops cleanly on SIGTERM.
set -u
cd "$(dirname "$0")/../.."
CACHE=${CACHE:-$HOME/.cache/tunneldigger}
BIN=build/mips_24kc/tunneldigger
UNSTRIPPED=build/mips_24kc/tunneldigger.unstripped
OUT=build/mips_24kc/test-user
SYSROOT=$OUT/sysroot
QEMU=(qemu-mips-static -cpu 24Kc -L "$SYSROOT")
mkdir -p "$OUT"

pass() { echo "VMTEST PASS $1"; }
fail() { echo "VMTEST FAIL $1: $2"; }

# ---- build (up to date: make only checks) -------------------------------------------------------
command -v qemu-mips-static >/dev/null || { echo "VMTEST SKIP mips-user: qemu-mips-static not installed (make deps installs qemu-user-static)"; exit 0; }
if ! make -s mips-client-toolchain >"$OUT/toolchain.log" 2>&1; then
  echo "VMTEST SKIP mips-user: the MIPS musl toolchain cannot be built here (see $OUT/toolchain.log): $(tail -1 "$OUT/toolchain.log")"
  exit 0
fi
if ! make -s "$BIN" >"$OUT/build.log" 2>&1; then
  fail mips-build "make $BIN failed: $(grep -m1 -iE 'error|FPU' "$OUT/build.log" || tail -1 "$OUT/build.log")"
  exit 1
fi
pass mips-build

rm -rf "$SYSROOT"; mkdir -p "$SYSROOT/lib"
cp "$CACHE/mips/musl/lib/libc.so" "$SYSROOT/lib/ld-musl-mips-sf.so.1"

# run <name> args...: runs the client under qemu; sets rc, out, err
run() {
  local name=$1; shift
  timeout -s KILL 30 "${QEMU[@]}" "$BIN" "$@" >"$OUT/$name.out" 2>"$OUT/$name.err"
  rc=$?
  out=$(cat "$OUT/$name.out"); err=$(cat "$OUT/$name.err")
}

# ---- the ELF is what an ath79 router can load ---------------------------------------------------
t=mips-elf-abi
hdr=$(mips-linux-gnu-readelf -h -l -d -A "$BIN" 2>&1)
why=""
grep -q "big endian" <<<"$hdr" || why="not big-endian"
grep -q "Machine: *MIPS R3000" <<<"$hdr" || why="${why:+$why; }not a MIPS ELF"
grep -q "mips32r2" <<<"$hdr" || why="${why:+$why; }ISA is not mips32r2"
grep -q "Requesting program interpreter: /lib/ld-musl-mips-sf.so.1" <<<"$hdr" || why="${why:+$why; }interpreter is not /lib/ld-musl-mips-sf.so.1"
grep -q "FP ABI: Soft float" <<<"$hdr" || why="${why:+$why; }FP ABI is not soft float"
needed=$(sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' <<<"$hdr" | tr '\n' ' ')
[ "$needed" = "libc.so " ] || why="${why:+$why; }needs '$needed' instead of only libc.so"
grep -q "Type: *EXEC" <<<"$hdr" || why="${why:+$why; }not a non-PIE executable"
mips-linux-gnu-readelf -S "$BIN" | grep -qE '\.symtab|\.comment' && why="${why:+$why; }not stripped"
[ -z "$why" ] && pass $t || fail $t "$why"

t=mips-no-fpu
fpu=$(OBJDUMP=mips-linux-gnu-objdump scripts/mips/check-no-fpu.sh "$UNSTRIPPED" 2>&1)
[ $? -eq 0 ] && pass $t || fail $t "$(echo "$fpu" | head -3 | tr '\n' ' ')"

# ---- command line -------------------------------------------------------------------------------
t=mips-help
run help -h
# like the original: the help goes to stderr, exit status 1
if [ $rc -eq 1 ] && [ -z "$out" ] && grep -q 'Usage: tunneldigger \[options\]' <<<"$(head -1 <<<"$err")" \
    && grep -q -- '-b host:port' <<<"$err" && ! grep -q '^error' <<<"$err"; then pass $t
else fail $t "rc=$rc, stdout '${out:0:60}', stderr '$(head -1 <<<"$err")'"; fi

t=mips-bad-args
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
    why="${why:+$why; }'$args': rc=$rc, stderr '$first'"
  fi
done
[ "$(wc -l <"$OUT/badargs1.err")" -eq 1 ] || why="${why:+$why; }'-Z' printed $(wc -l <"$OUT/badargs1.err") lines instead of 1"
run missing -u x
grep -q '^error: missing required option -b host:port, -i iface' <<<"$err" && [ $rc -eq 1 ] \
  || why="${why:+$why; }'-u x': rc=$rc, stderr '$(head -1 <<<"$err")'"
[ -z "$why" ] && pass $t || fail $t "$why"

# ---- runtime self-tests of the bundle (src/main/client/selftest.ts) --------------------------
# The engine built-ins the client uses, computed on the big-endian soft-float target (byte order,
# number formatting), a promise job, and the intrinsics left out of the binary (no RegExp: the
# `qjsc -x` regexp byte-order bug cannot bite any more, bytecode still comes from the BE qjsc).
BUILTINS_OUT=$'selftest-builtins: Map 1:2, DataView 7f000001 2,127, toFixed 1234.6, parseInt 31, padStart 007, absent RegExp,Date,JSON,Proxy\nselftest-builtins: promise job ran (42)'
t=mips-builtins
run builtins --selftest-builtins
[ $rc -eq 0 ] && [ "$out" = "$BUILTINS_OUT" ] && [ -z "$err" ] && pass $t \
  || fail $t "rc=$rc, stdout '$(tr '\n' '|' <<<"$out")', stderr '$(head -2 <<<"$err" | tr '\n' ' ')'"

t=mips-loop-rules
run loop --selftest-loop
[ $rc -eq 0 ] && [ "$out" = "selftest-loop: fd,t20,t40, 0 ms timer ran a few times" ] \
  && grep -qx 'warning: fd [0-9]* was closed while watched, no longer watching it' <<<"$err" && [ "$(wc -l <<<"$err")" -eq 1 ] \
  && pass $t || fail $t "rc=$rc, stdout '$out', stderr '$(head -2 <<<"$err" | tr '\n' ' ')'"

t=mips-promise-rejection
run reject --selftest-reject
[ $rc -eq 1 ] && [ "$err" = "error: unhandled promise rejection, exiting: Error: nobody handles this" ] && [ -z "$out" ] \
  && pass $t || fail $t "rc=$rc, stderr '$(head -2 <<<"$err" | tr '\n' ' ')'"

t=mips-udp-loop
run udp --selftest-udp
l1=$(sed -n 1p <<<"$out"); l2=$(sed -n 2p <<<"$out")
if [ $rc -eq 0 ] && [ -z "$err" ] && [[ "$l1" =~ ^selftest-udp:\ timer\ fired\ after\ ([0-9]+)\ ms$ ]] \
    && [ "${BASH_REMATCH[1]}" -ge 29 ] \
    && [[ "$l2" =~ ^selftest-udp:\ received\ 13\ bytes\ \"tunneldigger!\"\ from\ 127\.0\.0\.1:([0-9]+)\ own\ port\ ([0-9]+)$ ]] \
    && [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ]; then pass $t
else fail $t "rc=$rc, stdout '$(tr '\n' '|' <<<"$out")', stderr '$(head -1 <<<"$err")'"; fi

t=mips-callback-exception
run throw --selftest-throw
[ $rc -eq 70 ] && grep -q '^error: internal error in timer callback, exiting: Error: boom from a timer' <<<"$err" \
    && ! grep -q 'still running' <<<"$out" && pass $t || fail $t "rc=$rc, stderr '$(head -1 <<<"$err")'"

t=mips-sigterm
# sigterm_run <n>: starts --selftest-signal, sends SIGTERM once it is ready; sets rc
sigterm_run() {
  "${QEMU[@]}" "$BIN" --selftest-signal >"$OUT/signal$1.out" 2>"$OUT/signal$1.err" &
  local pid=$!
  for _ in $(seq 100); do grep -q 'selftest-signal: ready' "$OUT/signal$1.out" 2>/dev/null && break; sleep 0.1; done
  kill -TERM $pid 2>/dev/null
  wait $pid; rc=$?
  [ $rc -eq 3 ] && [ "$(cat "$OUT/signal$1.out")" = $'selftest-signal: ready\nselftest-signal: got SIGTERM' ]
}
# Seen once in ~10 runs under heavy load: the JS handler ran ("got SIGTERM" printed) but qemu
# itself then ended with SIGTERM (143). That is qemu-user's signal emulation (native and VM
# runs do not show it), so one retry is allowed and reported.
if sigterm_run 1; then pass $t
else
  first="rc=$rc, stdout '$(tr '\n' '|' <"$OUT/signal1.out")'"
  if sigterm_run 2; then pass $t; echo "info: $t passed on the retry; first run: $first"
  else fail $t "$first; retry: rc=$rc, stdout '$(tr '\n' '|' <"$OUT/signal2.out")'"; fi
fi

# ---- `make openwrt-client` (the SDK contract in openwrt/README.md) ------------------------------
# The musl wrapper stands in for the SDK's TARGET_CC with ath79's TARGET_CFLAGS; the big-endian
# path builds its own target qjsc and runs it under qemu. Its bytecode must equal ours.
t=mips-openwrt-client
owrt=$OUT/openwrt-out/tunneldigger
rm -f "$owrt"
if ! make -s openwrt-client TD_TARGET_CC="$CACHE/mips/bin/mips-musl-gcc" \
    TD_TARGET_CFLAGS="-Os -pipe -mno-branch-likely -mips32r2 -mtune=24kc -fno-caller-saves -mips16 -minterlink-mips16" \
    TD_TARGET_LDFLAGS= TD_TARGET_ARCH=mips TD_TARGET_ENDIAN=big TD_TARGET_SOFT_FLOAT=1 \
    TD_OUT="$owrt" >"$OUT/openwrt-client.log" 2>&1; then
  fail $t "make openwrt-client failed: $(grep -m1 -i 'error' "$OUT/openwrt-client.log" || tail -1 "$OUT/openwrt-client.log")"
else
  re=$(timeout -s KILL 30 "${QEMU[@]}" "$owrt" --selftest-builtins 2>&1)
  if [ "$re" != "$BUILTINS_OUT" ]; then fail $t "SDK-style binary: '$(tr '\n' '|' <<<"$re")'"
  elif ! cmp -s build/openwrt-mips-big/client_bytecode.c build/mips_24kc/client_bytecode.c; then
    fail $t "its bytecode differs from build/mips_24kc/client_bytecode.c"
  else pass $t; fi
fi

# ---- the client proper, as far as qemu-user lets it go ------------------------------------------
# A UDP socket on 127.0.0.1 plays the broker's address (it records what arrives); qemu's -strace
# log shows each attempt to open the generic netlink socket.
t=mips-client-kernel-retry
broker_log=$OUT/broker.log
node -e '
  const s = require("node:dgram").createSocket("udp4");
  let n = 0;
  s.on("message", (m, r) => { n++; console.log(`datagram ${m.length} B from ${r.address}:${r.port} type 0x${m.length > 3 ? m[3].toString(16) : "?"}`); });
  s.bind(0, "127.0.0.1", () => console.log(`port ${s.address().port}`));
  const end = () => { console.log(`total ${n}`); process.exit(0); };
  process.on("SIGTERM", end);
  setTimeout(end, 30000);
' >"$broker_log" 2>&1 &
bpid=$!
for _ in $(seq 50); do grep -q '^port ' "$broker_log" && break; sleep 0.1; done
bport=$(sed -n 's/^port //p' "$broker_log")
qemu-mips-static -cpu 24Kc -L "$SYSROOT" -strace -D "$OUT/client.strace" "$BIN" -f -u 5e0b1a2c-mips-user \
  -b "127.0.0.1:${bport:-8942}" -i l2tp-mips -t 7 >"$OUT/client.out" 2>"$OUT/client.err" &
cpid=$!
sleep 11.5   # attempts at about 0, 5 and 10 s
alive=no; kill -0 $cpid 2>/dev/null && alive=yes
rss=$(awk '/^VmHWM/ {print $2}' /proc/$cpid/status 2>/dev/null)
kill -TERM $cpid 2>/dev/null
code=timeout
for _ in $(seq 50); do kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
if kill -0 $cpid 2>/dev/null; then kill -KILL $cpid; wait $cpid 2>/dev/null; else wait $cpid; code=$?; fi
kill $bpid 2>/dev/null; wait $bpid 2>/dev/null
# one attempt = a run of consecutive netlink socket() calls (td_core may retry without flags)
attempts=$(awk '/socket\((PF_NETLINK|16),.*,16\)/ { if (!prev) n++; prev = 1; next } { prev = 0 } END { print n + 0 }' "$OUT/client.strace")
errs=$(grep -c 'kernel L2TP netlink interface unavailable' "$OUT/client.err")
why=""
[ "$alive" = yes ] || why="client died before the SIGTERM (stderr: $(tail -1 "$OUT/client.err"))"
grep -q 'starting: tunnel 7 on l2tp-mips, uuid 5e0b1a2c-mips-user' "$OUT/client.err" || why="${why:+$why; }no 'starting' line"
[ "$errs" -eq 1 ] || why="${why:+$why; }the kernel error was logged $errs times instead of once"
grep -q 'kernel L2TP netlink interface unavailable (.*), retrying every 5 s$' "$OUT/client.err" || why="${why:+$why; }no one-line kernel error"
[ "$attempts" -ge 3 ] || why="${why:+$why; }only $attempts netlink attempts in 11.5 s (expected 3: 0, 5, 10 s)"
[ "$code" = 0 ] || why="${why:+$why; }exit status after SIGTERM: $code (expected 0)"
grep -q 'internal error\|SIGSEGV\|Illegal' "$OUT/client.err" && why="${why:+$why; }unexpected: $(grep -m1 'internal error\|SIGSEGV\|Illegal' "$OUT/client.err")"
[ -z "$why" ] && pass $t || fail $t "$why"
echo "info: client under qemu-user: $attempts netlink attempts in 11.5 s, $(sed -n 's/^total //p' "$broker_log") datagrams reached the fake broker, qemu VmHWM ${rss:-?} kB, log: $(sed -n 2p "$OUT/client.err")"
echo "${rss:-?}" >"$OUT/rss-kb"
exit 0
