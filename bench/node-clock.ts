// CPU clock for the Node benchmarks (see harness.ts for why CPU time and not wall time).
import type { Clock } from './harness.js';

/** getrusage user+system of the whole process (includes V8's GC and compiler threads), in ms. */
export const nodeCpuClock: Clock = {
  name: 'process CPU time (getrusage, all threads)',
  now: () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  },
};
