// Where a Node process's CPU went, from a V8 CPU profile (node --cpu-prof), optionally cut to a
// window of CLOCK_MONOTONIC µs (the load generator prints its phases in that clock).
//
//   node build/js/bench/profile-summary.js <file.cpuprofile> [--from US] [--to US] [--top N]
//
// Each sample is charged to the first category found walking from its leaf towards the root:
// fork+exec (the addon's spawn), netlink (src/netlink/ or the addon's netlink calls), logging
// (the loop's log), cookie HMAC, socket calls (other addon functions), broker/protocol JS,
// then V8's own buckets (GC, program, idle) and "other JS" (Node internals, timers).
import { readFileSync } from 'node:fs';

interface ProfNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const ADDON_NETLINK = new Set(['netlinkSend', 'netlinkRecv', 'netlinkSocket']);
const ADDON_SOCKET = new Set(['udpSocket', 'setReusePort', 'bindToDevice', 'setPmtuProbe', 'bind', 'connect', 'send', 'sendTo', 'recvFrom', 'close', 'watch', 'unwatch', 'waitPid', 'read', 'kill']);

export function category(chain: ProfNode[]): string {
  const leaf = chain[0].callFrame;
  if (leaf.functionName === '(idle)') return 'idle';
  if (leaf.functionName === '(garbage collector)') return 'GC';
  if (leaf.functionName === '(program)') return 'V8/native (program)';
  for (const n of chain) {
    const { functionName: f, url } = n.callFrame;
    if (f === 'spawn' && !url) return 'fork+exec (spawn)';
    if (url.includes('/src/netlink/') || (ADDON_NETLINK.has(f) && !url)) return 'netlink (encode, syscalls, decode)';
    if ((f === 'log' || f === 'write' || f === 'writeSync') && (url.includes('/runtime/node/loop') || url.includes('node:internal/fs') || url.includes('stream'))) return 'logging';
    if (f === 'mac' || f === 'createHmac' || url.includes('/src/protocol/cookie')) return 'cookie HMAC';
    if (ADDON_SOCKET.has(f) && !url) return 'socket calls';
  }
  for (const n of chain) {
    const url = n.callFrame.url;
    if (url.includes('/src/broker/') || url.includes('/src/protocol/')) return 'broker/protocol JS';
  }
  return 'other JS (node internals, timers)';
}

function main(argv: string[]): number {
  const file = argv[0];
  if (!file) {
    process.stderr.write('usage: profile-summary <file.cpuprofile> [--from US] [--to US] [--top N]\n');
    return 2;
  }
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv[i + 1]) : dflt;
  };
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const from = opt('--from', -Infinity);
  const to = opt('--to', Infinity);
  const top = opt('--top', 12);
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const chainOf = (id: number): ProfNode[] => {
    const out: ProfNode[] = [];
    for (let x: number | undefined = id; x !== undefined; x = parent.get(x)) out.push(byId.get(x)!);
    return out;
  };
  const cats = new Map<string, number>();
  const selfBy = new Map<string, number>();
  let t = p.startTime;
  let total = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (t < from || t > to) continue;
    // a sample stands for the time until the next one
    const w = p.timeDeltas[i + 1] ?? 0;
    const chain = chainOf(p.samples[i]);
    const c = category(chain);
    cats.set(c, (cats.get(c) ?? 0) + w);
    total += w;
    if (c !== 'idle') busy += w;
    if (c === 'idle') continue;
    const f = chain[0].callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url ? `${f.url.replace(/^.*\/(src|build|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : ''}`.trim();
    selfBy.set(name, (selfBy.get(name) ?? 0) + w);
  }
  const ms = (us: number): string => `${(us / 1000).toFixed(0)} ms`;
  const pct = (us: number): string => (busy ? `${((us / busy) * 100).toFixed(1)} %` : '-');
  console.log(`profile ${file}: window ${ms(total)} sampled, ${ms(busy)} not idle`);
  console.log('category                                   time    of busy');
  for (const [c, us] of [...cats].sort((a, b) => b[1] - a[1])) {
    if (c === 'idle') continue;
    console.log(`${c.padEnd(40)} ${ms(us).padStart(8)}  ${pct(us).padStart(7)}`);
  }
  console.log(`\ntop ${top} functions by self time`);
  for (const [name, us] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${ms(us).padStart(8)}  ${pct(us).padStart(7)}  ${name}`);
  }
  return 0;
}

if (process.argv[1]?.endsWith('profile-summary.js')) process.exitCode = main(process.argv.slice(2));
