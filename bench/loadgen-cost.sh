#!/bin/sh
# The load generator's own cost (bench/README.md "The load generator's own cost"), on this
# machine, no VM and no L2TP: bench/loadgen/host-broker.js (the real broker core and driver on
# loopback, a kernel that only says yes) against the load generator in each of its ways of
# reading its clients' sockets, one after the other in the same run:
#   --per-socket (one readiness callback and recvfrom per datagram: the baseline),
#   batched (the default: every readable socket of an event-loop turn in one callback),
#   --read-ms 100 (the sockets read together at most every 100 ms, as bench-scale's D).
# Prints the load generator's CPU while its clients arrive and per minute of the hold (each half:
# the second has fewer PMTU rounds), the ratio to the baseline, its event loop's worst lag, and
# the host broker's CPU per minute beside it. Knobs (env): LG_COST_N (clients, 10000),
# LG_COST_RATE (arrivals/s, 500), LG_COST_HOLD_S (120), LG_COST_PORT (18942).
# Usage: bench/loadgen-cost.sh  (after `make ts build/node/tdnative.node`; `make bench-loadgen`)
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
JS=$ROOT/build/js/bench/loadgen
N=${LG_COST_N:-10000}
RATE=${LG_COST_RATE:-500}
HOLD=${LG_COST_HOLD_S:-120}
PORT=${LG_COST_PORT:-18942}
need=$((N + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || { echo "loadgen-cost: $N clients need $need file descriptors, ulimit -n is $(ulimit -n) (hard $(ulimit -Hn)); set LG_COST_N lower" >&2; exit 2; }
fi
W=$(mktemp -d /tmp/td-lgcost.XXXXXX)
BPID=
cleanup() { [ -n "$BPID" ] && kill "$BPID" 2>/dev/null; rm -rf "$W"; }
trap cleanup EXIT INT TERM

echo "loadgen-cost: $N control-only clients at $RATE/s against the host broker on 127.0.0.1:$PORT, held $HOLD s; machine load $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
# run <tag> <loadgen args...>: one host broker, one load generator; the result line in $W/<tag>.out
run() {
  tag=$1; shift
  node "$JS/host-broker.js" --port "$PORT" --max-tunnels $((N + 100)) > "$W/$tag.log" 2>&1 &
  BPID=$!
  i=0; until grep -q 'host broker started' "$W/$tag.log" 2>/dev/null; do
    i=$((i + 1)); [ $i -gt 100 ] && { echo "loadgen-cost: the host broker did not start:" >&2; cat "$W/$tag.log" >&2; exit 1; }
    sleep 0.1
  done
  node "$JS/main.js" --broker "127.0.0.1:$PORT" --source 127.0.1.1-20 --clients "$N" --rate "$RATE" --deadlines \
    --up-timeout 120 --duration "$HOLD" --windows 2 --progress 0 --broker-pid "$BPID" --broker-log "$W/$tag.log" "$@" > "$W/$tag.out"
  echo "loadgen-cost: $tag: exit $? at $(date -u +%H:%M:%S), machine load $(cut -d' ' -f1-3 /proc/loadavg)"
  kill "$BPID"; wait "$BPID" 2>/dev/null; BPID=
}
run per-socket --per-socket
run batched
run read-ms-100 --read-ms 100

node -e '
  const fs = require("fs");
  const [dir, ...tags] = process.argv.slice(1);
  const r = Object.fromEntries(tags.map((t) => {
    const line = fs.readFileSync(`${dir}/${t}.out`, "utf8").split("\n").find((l) => l.startsWith("LOADGEN-RESULT "));
    return [t, line ? JSON.parse(line.slice(15)) : null];
  }));
  const f = (v, d = 2) => (v === null || v === undefined ? "?" : v.toFixed(d));
  const base = r[tags[0]] && r[tags[0]].loadgen.holdCpuPerMinS;
  console.log("\n| reading | all up after | never up | load generator CPU: arrivals | hold, per minute (1st / 2nd half) | vs --per-socket | worst loop lag, arrivals / hold | host broker, hold per minute |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const t of tags) {
    const x = r[t];
    if (!x) { console.log(`| ${t} | no result line | | | | | | |`); continue; }
    const l = x.loadgen, w = l.holdWindowsCpuPerMinS;
    console.log(`| ${t} | ${x.allUpS === null ? "never" : f(x.allUpS) + " s"} | ${x.neverUp} | ${f(l.arrivalCpuS)} s | ${f(l.holdCpuPerMinS, 3)} s (${f(w[0], 3)} / ${f(w[1], 3)}) | ` +
      `${base && l.holdCpuPerMinS !== null ? f(l.holdCpuPerMinS / base) + "×" : "?"} | ${l.maxLagMs.arrival} / ${l.maxLagMs.hold} ms | ${f(x.broker && x.broker.holdCpuPerMinS, 3)} s |`);
  }
' "$W" per-socket batched read-ms-100
