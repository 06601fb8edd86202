// Codec benchmark on Node (the broker's runtime): control messages, cookies, netlink requests.
//
//   node build/js/bench/codec.js                      Node table + handshake budget
//   node build/js/bench/codec.js --json               results as JSON
//   node build/js/bench/codec.js --compare-qjs QJS BUNDLE
//                                                     also runs BUNDLE (build/bench/codec-qjs.js)
//                                                     under the qjs interpreter and prints the
//                                                     QuickJS/Node ratio per operation
import { createHmac } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { nodeCpuClock } from './node-clock.js';
import { CLIENT_HANDSHAKE_MIX, HANDSHAKE_MIX, codecCases, cookieCases } from './codec-cases.js';
import { type Result, fmtInt, fmtNs, measure, resultTable, table } from './harness.js';

/** Stated need: a broker with 2000 tunnels whose clients all reconnect within 60 s (e.g. after an
 *  uplink outage) — and, stricter, within 5 s (broker restart; clients retry every few seconds). */
const NEED_TUNNELS = 2000;
const NEED_WINDOWS_S = [60, 5];

const OPTIONS = { warmupMs: 300, minBatchMs: 100, rounds: 5 };

function main(argv: string[]): number {
  const json = argv.includes('--json');
  const cmp = argv.indexOf('--compare-qjs');
  const mac = (key: Uint8Array, msg: Uint8Array): Uint8Array => createHmac('sha1', key).update(msg).digest();
  const results = [...codecCases(), ...cookieCases(mac)].map((c) => measure(c, nodeCpuClock, OPTIONS));
  if (json) {
    console.log(JSON.stringify({ clock: nodeCpuClock.name, results }));
    return 0;
  }
  console.log(`Node ${process.version} (${process.arch}); ${nodeCpuClock.name}; best of ${OPTIONS.rounds} batches ` +
    `of >= ${OPTIONS.minBatchMs} ms after ${OPTIONS.warmupMs} ms warm-up\n`);
  console.log(resultTable(results));
  console.log('\n' + handshakeBudget(results));
  if (cmp < 0) return 0;
  const [qjs, bundle] = [argv[cmp + 1], argv[cmp + 2]];
  if (!qjs || !bundle) {
    console.error('codec bench: --compare-qjs needs the qjs path and the bundle path; no QuickJS comparison');
    return 2;
  }
  return compareQuickJs(results, qjs, bundle);
}

/** Sum of count x ns/op over a mix of operations. */
function mixCost(results: Result[], mix: Record<string, number>): number {
  const byName = new Map(results.map((r) => [r.name, r]));
  let ns = 0;
  for (const [name, count] of Object.entries(mix)) {
    const r = byName.get(name);
    if (!r) throw new Error(`codec bench: handshake mix names unknown case "${name}"`);
    ns += count * r.nsPerOp;
  }
  return ns;
}

function handshakeBudget(results: Result[]): string {
  const ns = mixCost(results, HANDSHAKE_MIX);
  const capacity = 1e9 / ns;
  const lines = [
    `Codec work per broker handshake (USAGE + COOKIE + PREPARE -> TUNNEL, 2 netlink requests + ACKs): ` +
      `${fmtInt(ns)} ns -> ${fmtInt(capacity)} handshakes/s on one core (codec only, no syscalls).`,
  ];
  for (const window of NEED_WINDOWS_S) {
    const need = NEED_TUNNELS / window;
    lines.push(`Need: ${NEED_TUNNELS} tunnels reconnecting within ${window} s = ${need.toFixed(1)} handshakes/s -> ` +
      `headroom x${fmtInt(capacity / need)}.`);
  }
  return lines.join('\n');
}

function compareQuickJs(node: Result[], qjs: string, bundle: string): number {
  for (const f of [qjs, bundle]) {
    if (!existsSync(f)) {
      console.error(`codec bench: ${f} does not exist (make bench-qjs builds it); no QuickJS comparison`);
      return 1;
    }
  }
  const run = spawnSync(qjs, ['--std', '-m', bundle, '--json'], { encoding: 'utf8', timeout: 1_200_000 });
  const out = (run.stdout ?? '').trim().split('\n').pop() ?? '';
  let quick: Result[];
  let quickClock: string;
  try {
    ({ results: quick, clock: quickClock } = JSON.parse(out) as { results: Result[]; clock: string });
  } catch {
    console.error(`codec bench: ${qjs} ${bundle} did not print results (exit ${run.status}): ` +
      `${(run.stderr || out).trim().split('\n')[0] ?? ''}; no QuickJS comparison`);
    return 1;
  }
  const byName = new Map(node.map((r) => [r.name, r]));
  const rows = quick.map((q) => {
    const n = byName.get(q.name);
    return [q.name, fmtInt(q.opsPerSec), fmtNs(q.nsPerOp), n ? fmtNs(n.nsPerOp) : '-', n ? `x${(q.nsPerOp / n.nsPerOp).toFixed(1)}` : '-'];
  });
  const ratios = quick.flatMap((q) => { const n = byName.get(q.name); return n ? [q.nsPerOp / n.nsPerOp] : []; });
  const geo = Math.exp(ratios.reduce((a, r) => a + Math.log(r), 0) / ratios.length);
  console.log(`\nQuickJS (${qjs}; ${quickClock}) vs Node, same code (cookies are broker-only: Node only)\n`);
  console.log(table(['operation', 'qjs ops/s', 'qjs ns/op', 'node ns/op', 'qjs/node'], rows));
  console.log(`\nQuickJS is x${geo.toFixed(1)} slower than Node (geometric mean over ${ratios.length} operations).`);
  const clientUs = mixCost(quick, CLIENT_HANDSHAKE_MIX) / 1000;
  console.log(`Client handshake codec work (3 requests, 3 replies, 2 netlink requests + ACKs) under QuickJS on this ` +
    `x86 core: ${clientUs.toFixed(0)} us; keepalive every 5 s: ${fmtNs(byNameQ(quick, 'encode client KEEPALIVE'))} ns.`);
  return 0;
}

function byNameQ(results: Result[], name: string): number {
  return results.find((r) => r.name === name)?.nsPerOp ?? NaN;
}

process.exitCode = main(process.argv.slice(2));
