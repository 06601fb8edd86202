// Spawn cost from a large process: Native.spawn (posix_spawn, vfork semantics) against the
// former fork()+execv() path (spawnFork, in build/bench/tdnative-fork.node only), in the same
// run, from a Node process holding ~50 MB (what the broker holds at a few thousand tunnels).
// The figure is how long the caller is blocked per spawn (until the child has exec'd): the time
// the broker's event loop stands still for each hook or tc run; and the caller's CPU time per
// spawn (fork copies page tables, so it grows with the process; less load-sensitive than wall).
//   make build/bench/tdnative-fork.node && node build/js/bench/spawn.js [--spawns N] [--heap-mb M]
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Native } from '../src/native.js';

type SpawnFn = Native['spawn'];
interface BenchNative extends Native {
  spawnFork?: SpawnFn;
}

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const spawns = arg('--spawns', 200);
const heapMb = arg('--heap-mb', 50);

const addonPath = fileURLToPath(new URL('../../bench/tdnative-fork.node', import.meta.url));
let n: BenchNative;
try {
  n = createRequire(import.meta.url)(addonPath) as BenchNative;
} catch (e) {
  console.error(`cannot load ${addonPath} (${(e as Error).message.split('\n')[0]}); run 'make build/bench/tdnative-fork.node'`);
  process.exit(2);
}
const spawnFork = n.spawnFork;
if (!spawnFork) {
  console.error(`${addonPath} has no spawnFork: it was not built with -DTD_LEGACY_FORK_SPAWN`);
  process.exit(2);
}

// the large process: a touched buffer (page tables to copy) and a JS heap of small objects
const ballast = Buffer.alloc(heapMb << 20, 1);
const objects: { id: number; name: string }[] = [];
for (let i = 0; i < heapMb * 2000; i++) objects.push({ id: i, name: `tunnel-${i}` });

const rssMb = (): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** CPU µs (user+system, all threads of this process) spent inside the spawn calls, per path. */
const cpu = new Map<SpawnFn, number>();

/** Blocked time per spawn in µs for count spawns of /bin/true; each child is reaped untimed. */
function run(spawn: SpawnFn, count: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    const r = spawn.call(n, '/bin/true', [], false);
    const t1 = process.hrtime.bigint();
    const c1 = process.cpuUsage(c0);
    cpu.set(spawn, (cpu.get(spawn) ?? 0) + c1.user + c1.system);
    if (typeof r === 'number') throw new Error(`spawn failed: ${n.strerror(-r)}`);
    out.push(Number(t1 - t0) / 1000);
    let code = n.waitPid(r.pid);
    while (code === null) {
      Atomics.wait(sleeper, 0, 0, 1);
      code = n.waitPid(r.pid);
    }
    if (code !== 0) throw new Error(`/bin/true exited ${code}`);
  }
  return out;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

// warm-up, then alternate the two in rounds so machine load hits both alike
run(n.spawn, 5);
run(spawnFork, 5);
cpu.clear();
const posix: number[] = [];
const fork: number[] = [];
const rounds = 10;
for (let r = 0; r < rounds; r++) {
  posix.push(...run(n.spawn, Math.ceil(spawns / rounds)));
  fork.push(...run(spawnFork, Math.ceil(spawns / rounds)));
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`spawn of /bin/true from a Node process of ${rssMb().toFixed(0)} MB RSS (${heapMb} MB ballast, ${objects.length} objects, sink ${ballast[7]}), ${posix.length} spawns each, load ${load}`);
const cpuPer = (f: SpawnFn, k: number): number => (cpu.get(f) ?? 0) / k;
console.log('path                     blocked median µs   blocked mean µs   CPU µs/spawn');
console.log(`posix_spawn (td_spawn)  ${median(posix).toFixed(0).padStart(18)} ${mean(posix).toFixed(0).padStart(17)} ${cpuPer(n.spawn, posix.length).toFixed(0).padStart(14)}`);
console.log(`fork+execv (former)     ${median(fork).toFixed(0).padStart(18)} ${mean(fork).toFixed(0).padStart(17)} ${cpuPer(spawnFork, fork.length).toFixed(0).padStart(14)}`);
console.log(`ratio fork/posix_spawn: blocked median ${(median(fork) / median(posix)).toFixed(1)}x, mean ${(mean(fork) / mean(posix)).toFixed(1)}x; ` +
  `CPU ${(cpuPer(spawnFork, fork.length) / cpuPer(n.spawn, posix.length)).toFixed(1)}x`);
