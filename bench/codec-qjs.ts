// QuickJS entry of the codec benchmark: bundled by bench/rollup.config.js into
// build/bench/codec-qjs.js and run with `qjs --std -m build/bench/codec-qjs.js [--json]`.
// Uses only globals of qjs (console, scriptArgs, and `std` with --std): no module imports.
import { codecCases } from './codec-cases.js';
import { type Clock, measure, resultTable, wallClock } from './harness.js';

interface StdFile { readAsString(): string; close(): number }
const g = globalThis as unknown as {
  console: { log(s: string): void };
  scriptArgs?: string[];
  std?: { open(path: string, mode: string): StdFile | null };
};

/** utime + stime of /proc/self/stat (clock ticks; USER_HZ is 100 on Linux: 10 ms resolution).
 *  QuickJS is single-threaded, so this is the benchmark's own CPU time. */
function cpuClock(): Clock | null {
  const std = g.std;
  if (!std) return null;
  const read = (): number => {
    const f = std.open('/proc/self/stat', 'r');
    if (!f) return NaN;
    const s = f.readAsString();
    f.close();
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  };
  return Number.isFinite(read()) ? { name: 'process CPU time (/proc/self/stat, 10 ms ticks)', now: read } : null;
}

const json = (g.scriptArgs ?? []).includes('--json');
const clock = cpuClock() ?? wallClock();
// 10 ms clock ticks: batches of >= 400 ms keep the rounding error under 3%
const results = codecCases().map((c) => measure(c, clock, { warmupMs: 100, minBatchMs: 400, rounds: 3 }));
g.console.log(json ? JSON.stringify({ clock: clock.name, results }) : `${clock.name}\n\n${resultTable(results)}`);
