// Where a Node process's CPU went, from a V8 CPU profile (node --cpu-prof), optionally cut to a
// window of CLOCK_MONOTONIC µs (the load generator prints its phases in that clock).
//
//   node build/js/bench/profile-summary.js <file.cpuprofile> [--from US] [--to US] [--top N]
//
// Each sample is charged to a category: V8's own buckets (GC, program, idle); the native addon
// call its leaf JS function makes (fork+exec of hooks, netlink syscalls, UDP socket calls; addon
// functions have no frames of their own; the batched receive runs before JS is entered, so it
// is in "(program)"); else the first of netlink encode/decode, logging,
// cookie HMAC found walking towards the root; then broker/protocol JS, else other JS.
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

// Calls into the native addon do not get frames of their own: their time is the self time of
// the JS function that made them. These are the ones the broker makes.
const NATIVE_CALLERS: [RegExp, string, string][] = [
  [/\/broker\/job-runner\.js$/, 'startNext', 'fork+exec of hooks (JobRunner.startNext → spawn)'],
  // since the spawn moved into src/process/supervisor.ts: posix_spawn, pidfd_open, the fd watches;
  // the caller waits in posix_spawn until the child has exec'd (vfork semantics)
  [/\/process\/supervisor\.js$/, 'start', 'spawn of hooks (Supervisor.start → posix_spawn until exec)'],
  [/\/process\/supervisor\.js$/, 'check', 'reaping hooks (Supervisor.check/finish: waitpid, close, unwatch)'],
  [/\/process\/supervisor\.js$/, 'finish', 'reaping hooks (Supervisor.check/finish: waitpid, close, unwatch)'],
  [/\/netlink\/kernel\.js$/, 'transact', 'netlink syscalls (NetlinkKernel.transact)'],
  [/\/netlink\/kernel\.js$/, 'socket', 'netlink syscalls (NetlinkKernel.transact)'],
  [/\/broker\/executor\.js$/, 'send', 'UDP socket calls (send, recv, socket setup)'],
  [/\/broker\/executor\.js$/, 'readable', 'UDP socket calls (send, recv, socket setup)'],
  [/\/broker\/executor\.js$/, 'boundSocket', 'UDP socket calls (send, recv, socket setup)'],
  [/\/runtime\/node\/loop\.js$/, 'onReadable', 'UDP socket calls (send, recv, socket setup)'],
  [/\/broker\/executor\.js$/, 'flushSends', 'UDP socket calls (send, recv, socket setup)'],
  [/\/runtime\/node\/datagram-reader\.js$/, 'sendBatch', 'UDP socket calls (send, recv, socket setup)'],
  [/\/broker\/executor\.js$/, 'watchSocket', 'UDP socket calls (send, recv, socket setup)'],
];

export function category(chain: ProfNode[]): string {
  const leaf = chain[0].callFrame;
  if (leaf.functionName === '(idle)') return 'idle';
  if (leaf.functionName === '(garbage collector)') return 'GC';
  // with batched reception the addon reads the sockets (recvmmsg) before it enters JS: no JS
  // frame is on the stack then, so that time is V8's "(program)"
  if (leaf.functionName === '(program)') return 'V8/native (program; includes batched recvmmsg)';
  for (const [url, fn, cat] of NATIVE_CALLERS) if (leaf.functionName === fn && url.test(leaf.url)) return cat;
  for (const n of chain) {
    const { functionName: f, url } = n.callFrame;
    if (url.includes('/src/netlink/')) return 'netlink encode/decode (JS)';
    if (f === 'log' && url.includes('/runtime/node/loop')) return 'logging (format + synchronous stderr write)';
    if (f === 'mac' || f === 'createHmac' || f === 'Hmac' || url.includes('/src/protocol/cookie')) return 'cookie HMAC';
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
  console.log(`${'category'.padEnd(50)}     time  of busy`);
  for (const [c, us] of [...cats].sort((a, b) => b[1] - a[1])) {
    if (c === 'idle') continue;
    console.log(`${c.padEnd(50)} ${ms(us).padStart(8)}  ${pct(us).padStart(7)}`);
  }
  console.log(`\ntop ${top} functions by self time`);
  for (const [name, us] of [...selfBy].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${ms(us).padStart(8)}  ${pct(us).padStart(7)}  ${name}`);
  }
  return 0;
}

if (process.argv[1]?.endsWith('profile-summary.js')) process.exitCode = main(process.argv.slice(2));
