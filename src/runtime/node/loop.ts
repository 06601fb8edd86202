// Loop (src/runtime/loop.ts) on the Node event loop: fd readiness through the addon's uv_poll
// watchers, setTimeout timers, performance.now() as the monotonic clock, process signals, and
// log lines on stderr filtered by level. With the addon's clock functions also the loop's own
// time (uv_now, mapped onto performance.now()) and its one re-armable uv timer.
import { constants } from 'node:os';
import { performance } from 'node:perf_hooks';
import type { DeadlineTimer, Loop, LogLevel } from '../loop.js';

export interface FdWatcher {
  watch(fd: number, cb: () => void): number;
  unwatch(fd: number): void;
}

/** The addon's loop clock and deadline timer (qjs-native/td_napi.c). */
export interface LoopClock {
  /** uv_now: ms of libuv's clock as read at this turn's wake-up. */
  loopNow(): number;
  /** uv_hrtime in ms (reads the clock). */
  hrtimeMs(): number;
  deadlineTimer(cb: () => void): number;
  deadlineTimerStart(ms: number): number;
  deadlineTimerStop(): number;
}

const RANK: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3 };
const LABEL: Record<LogLevel, string> = { error: 'ERROR', warning: 'WARNING', info: 'INFO', debug: 'DEBUG' };

export class NodeLoop implements Loop {
  /** performance.now() minus libuv's clock: both CLOCK_MONOTONIC, so a constant (read in this
   *  order it errs low by the µs between the two reads, so turnNow() is never ahead). */
  private readonly clockOffset: number;

  constructor(
    private readonly watcher: FdWatcher & Partial<LoopClock>,
    public level: LogLevel = 'info',
    private readonly write: (line: string) => void = stderrLines().write,
  ) {
    this.clockOffset = typeof watcher.hrtimeMs === 'function' ? performance.now() - watcher.hrtimeMs() : NaN;
  }

  onReadable(fd: number, cb: (() => void) | null): void {
    if (cb === null) {
      this.watcher.unwatch(fd);
      return;
    }
    const r = this.watcher.watch(fd, cb);
    if (r < 0) this.log('error', `cannot watch file descriptor ${fd} (error ${-r}); it will not be read`);
  }

  setTimer(ms: number, cb: () => void): unknown {
    return setTimeout(cb, Math.max(0, ms));
  }

  cancelTimer(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }

  now(): number {
    return performance.now();
  }

  /** uv_now mapped onto now(): at most ~1 ms behind the wake-up (uv_now is whole ms). Not
   *  ahead of now(). Without the addon's clock: now(). */
  turnNow(): number {
    return Number.isNaN(this.clockOffset) ? performance.now() : this.watcher.loopNow!() + this.clockOffset;
  }

  deadlineTimer(cb: () => void): DeadlineTimer | null {
    const w = this.watcher;
    if (Number.isNaN(this.clockOffset) || typeof w.deadlineTimer !== 'function' || w.deadlineTimer(cb) < 0) return null;
    return { arm: (ms) => { w.deadlineTimerStart!(Math.max(0, ms)); }, stop: () => { w.deadlineTimerStop!(); } };
  }

  onSignal(signal: number, cb: () => void): void {
    const name = (Object.keys(constants.signals) as (keyof typeof constants.signals)[])
      .find((n) => constants.signals[n] === signal);
    if (!name) throw new RangeError(`unknown signal number ${signal}`);
    process.on(name, () => cb());
  }

  enabled(level: LogLevel): boolean {
    return RANK[level] <= RANK[this.level];
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.write(`${new Date().toISOString()} ${LABEL[level]} ${clipLogMessage(message)}\n`);
  }

  print(text: string): void {
    this.write(text);
  }

  exit(code: number): never {
    process.exit(code);
  }
}

/** Writes to stderr with one write(2) per turn of the event loop instead of one per line: a
 *  burst of lines (a shutdown's one "closed" line per tunnel, 10,000 of them) costs one system
 *  call, not 10,000 (2.6 ms each to a log file on a slow file system under TCG). The text goes
 *  out in setImmediate, at once when 64 KiB have gathered, and before the process exits. */
export function stderrLines(out: (text: string) => void = (t) => { process.stderr.write(t); }): { write: (text: string) => void; flush: () => void } {
  let pending: string[] = [];
  let size = 0;
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    size = 0;
    out(text);
  };
  let hooked = false;
  const write = (text: string): void => {
    pending.push(text);
    size += text.length;
    if (!hooked) {
      hooked = true;
      process.on('exit', flush);
    }
    if (size >= 65_536) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return { write, flush };
}

/** A log line stays below 1 KiB (journald and syslog split or drop longer ones): 32 bytes of
 *  timestamp and level plus at most MAX_LOG_MESSAGE bytes of message. */
export const MAX_LOG_MESSAGE = 960;

export function clipLogMessage(message: string): string {
  if (message.length * 3 <= MAX_LOG_MESSAGE) return message;
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= MAX_LOG_MESSAGE) return message;
  const note = ` ... (${bytes.length - MAX_LOG_MESSAGE + 40} more bytes cut)`;
  // cut on a character boundary: drop UTF-8 continuation bytes at the cut
  let end = MAX_LOG_MESSAGE - 40;
  while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8') + note;
}
