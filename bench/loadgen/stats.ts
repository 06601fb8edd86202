// Figures of a load run: percentiles, /proc readings of another process (the broker), and the
// broker's own counters (SIGUSR1 → "counters: ..." and "status: N/M tunnels" in its log).
import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';

/** Nearest-rank percentile (p in 0..100) of unsorted values; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

export interface ProcCpu {
  /** utime + stime of the process itself, seconds. */
  self: number;
  /** cutime + cstime: its children that it has reaped (hooks, resolver helpers), seconds. */
  children: number;
}

/** A CPU reading of the broker at a time (ms). */
export interface CpuSample {
  at: number;
  cpu: ProcCpu | null;
}

/** CPU seconds per minute between two readings (itself and its reaped children), or null when
 *  one is missing or no time passed. */
export function cpuPerMinute(a: CpuSample, b: CpuSample): number | null {
  if (!a.cpu || !b.cpu || b.at <= a.at) return null;
  return (b.cpu.self + b.cpu.children - a.cpu.self - a.cpu.children) / ((b.at - a.at) / 60_000);
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ; 100 on every Linux port we run on). */
export const USER_HZ = 100;

/** Parses /proc/<pid>/stat text (the comm field may hold spaces and parentheses). */
export function parseProcStat(text: string): ProcCpu | null {
  const close = text.lastIndexOf(')');
  if (close < 0) return null;
  // fields after comm start at field 3 (state); utime is field 14
  const f = text.slice(close + 2).trim().split(/\s+/);
  const n = (i: number): number => Number(f[i - 3]);
  const [ut, st, cut, cst] = [n(14), n(15), n(16), n(17)];
  if (![ut, st, cut, cst].every(Number.isFinite)) return null;
  return { self: (ut + st) / USER_HZ, children: (cut + cst) / USER_HZ };
}

export function procCpu(pid: number): ProcCpu | null {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

/** VmRSS of a process in KiB, or null when it is gone. */
export function procRssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export interface BrokerCounters {
  counters: Record<string, number>;
  /** Tunnels the broker holds ("status: N/M tunnels"), null if that line was not seen. */
  tunnels: number | null;
}

/** The last "counters: a=1 b=2" line of a log and the "status: N/M tunnels" line after it. */
export function parseBrokerLog(text: string): BrokerCounters | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const at = lines[i].indexOf('counters: ');
    if (at < 0) continue;
    const counters: Record<string, number> = {};
    for (const kv of lines[i].slice(at + 10).trim().split(/\s+/)) {
      const m = /^([a-z0-9-]+)=(\d+)$/.exec(kv);
      if (m) counters[m[1]] = Number(m[2]);
    }
    let tunnels: number | null = null;
    for (const l of lines.slice(i + 1, i + 3)) {
      const s = /status: (\d+)\/\d+ tunnels/.exec(l);
      if (s) tunnels = Number(s[1]);
    }
    return { counters, tunnels };
  }
  return null;
}

/** SIGUSR1 the broker and wait (≤ timeoutMs; a broker closing 100 tunnels in a loaded TCG guest
 *  took more than 10 s) until its log shows the new counters and status. Only what the log gained
 *  since the signal is read: at thousands of clients the whole log is megabytes, and reading it
 *  every 100 ms took longer than the broker's answer. */
export async function brokerCounters(pid: number, logPath: string, timeoutMs = 30_000): Promise<BrokerCounters | null> {
  const size = (): number => {
    try {
      return statSync(logPath).size;
    } catch {
      return 0;
    }
  };
  const from = size();
  const readNew = (): string => {
    let fd = -1;
    try {
      fd = openSync(logPath, 'r');
      const n = Math.max(0, size() - from);
      const buf = Buffer.alloc(n);
      const got = n ? readSync(fd, buf, 0, n, from) : 0;
      return buf.subarray(0, got).toString('utf8');
    } catch {
      return '';
    } finally {
      if (fd >= 0) closeSync(fd);
    }
  };
  try {
    process.kill(pid, 'SIGUSR1');
  } catch {
    return null;
  }
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    const text = readNew();
    // the status table follows the counters line; give it the moment it needs
    const at = text.lastIndexOf('counters: ');
    if (at >= 0 && /status: \d+\/\d+ tunnels[^\n]*\n/.test(text.slice(at))) return parseBrokerLog(text);
  }
  return null;
}

/** Open file descriptors of a process (/proc/<pid>/fd), or null when it is gone or not ours. */
export function procFdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

/** Processes whose parent is `pid` (a scan of /proc: hooks and tc run by the broker). */
export function procChildCount(pid: number): number {
  let n = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (e.charCodeAt(0) < 48 || e.charCodeAt(0) > 57) continue;
    try {
      const t = readFileSync(`/proc/${e}/stat`, 'utf8');
      // field 4 (ppid) follows "pid (comm) state"
      if (Number(t.slice(t.lastIndexOf(')') + 2).split(' ', 3)[1]) === pid) n++;
    } catch {
      // gone meanwhile
    }
  }
  return n;
}

/** Whether a process runs: it exists and is no zombie (an exited child of the shell that
 *  started it stays one until that shell waits for it). */
export function alive(pid: number): boolean {
  try {
    const t = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return t.slice(t.lastIndexOf(')') + 2, t.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** How late a 1 s timer fires, worst case since the last take(): the load generator's own event
 *  loop falling behind (its clients' keepalives and answers then leave late or not at all). */
export class LagMonitor {
  private expected = 0;
  private worst = 0;
  private worstAll = 0;
  private readonly timer: ReturnType<typeof setInterval>;

  constructor(private readonly now: () => number, periodMs = 1_000) {
    this.expected = now() + periodMs;
    this.timer = setInterval(() => {
      const t = now();
      const lag = Math.max(0, t - this.expected);
      if (lag > this.worst) this.worst = lag;
      if (lag > this.worstAll) this.worstAll = lag;
      this.expected = t + periodMs;
    }, periodMs);
  }

  /** The worst lag since the last take() (ms), and starts a new period. */
  take(): number {
    const w = this.worst;
    this.worst = 0;
    return w;
  }

  /** The worst lag of the whole run (ms). */
  get max(): number {
    return this.worstAll;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
