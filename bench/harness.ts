// Minimal benchmark loop shared by Node and QuickJS (no imports: the runtime entry passes its
// clock in).
//
// Timing uses the process's CPU time, not wall time: the build machine is shared (2 cores, other
// builds running), and wall time would mostly measure the scheduler. Each case runs a warm-up (so
// V8 has tiered up), then batches of doubling size until one batch costs at least `minBatchMs`
// of CPU; the best of `rounds` such batches is reported.

export interface Case {
  name: string;
  /** One operation; its return value is folded into a sink so the work cannot be optimised away. */
  run: () => number;
}

export interface Result {
  name: string;
  opsPerSec: number;
  nsPerOp: number;
}

export interface Options {
  warmupMs: number;
  /** Should be >= 30x the clock's resolution. */
  minBatchMs: number;
  rounds: number;
}

export interface Clock {
  /** e.g. "process CPU time (getrusage)". */
  name: string;
  /** Milliseconds on this clock. */
  now: () => number;
}

/** Wall clock (global performance.now()): only when no CPU clock is available. */
export function wallClock(): Clock {
  const perf = (globalThis as unknown as { performance?: { now(): number } }).performance;
  if (!perf) throw new Error('benchmark: no CPU clock and no global performance.now() in this runtime');
  return { name: 'wall time (performance.now; inflated on a loaded machine)', now: () => perf.now() };
}

/** Kept global so a JIT cannot prove the accumulated results dead. */
export let sink = 0;

function batch(c: Case, n: number, clock: Clock): number {
  let acc = 0;
  const t0 = clock.now();
  for (let i = 0; i < n; i++) acc = (acc + c.run()) | 0;
  const elapsed = clock.now() - t0;
  sink = (sink + acc) | 0;
  return elapsed;
}

export function measure(c: Case, clock: Clock, opts: Options): Result {
  let n = 16;
  const warmEnd = clock.now() + opts.warmupMs;
  while (clock.now() < warmEnd) batch(c, n, clock);
  while (batch(c, n, clock) < opts.minBatchMs) n *= 2;
  let best = Infinity;
  for (let r = 0; r < opts.rounds; r++) best = Math.min(best, batch(c, n, clock) / n);
  return { name: c.name, opsPerSec: 1000 / best, nsPerOp: best * 1e6 };
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function fmtInt(x: number): string {
  const s = String(Math.round(x));
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

export function fmtNs(x: number): string {
  return x >= 100 ? fmtInt(x) : x.toFixed(1);
}

export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cols: string[]): string =>
    cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function resultTable(results: Result[]): string {
  return table(['operation', 'ops/s', 'ns/op'], results.map((r) => [r.name, fmtInt(r.opsPerSec), fmtNs(r.nsPerOp)]));
}

/** Thrown when a benchmarked operation does not produce what it should (a broken bench must not
 *  print a fast figure). */
export function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(`benchmark self-check failed: ${what}`);
}
