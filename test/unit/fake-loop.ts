// The Loop fake of the driver suites (broker-runtime, broker-hardening, broker-load through
// broker-fakes.ts; client-driver): a manual clock with timers run in time order, readiness
// callbacks by fd, recorded signal handlers and log lines.
import type { DeadlineTimer, Loop, LogLevel } from '../../src/runtime/loop.js';

export class FakeLoop implements Loop {
  t = 1_000_000;
  timers: { at: number; cb: () => void; id: number }[] = [];
  readable = new Map<number, () => void>();
  logs: string[] = [];
  private nextId = 1;
  onReadable(fd: number, cb: (() => void) | null): void {
    if (cb) this.readable.set(fd, cb);
    else this.readable.delete(fd);
  }
  setTimer(ms: number, cb: () => void): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, cb, id });
    return id;
  }
  cancelTimer(handle: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== handle);
  }
  print(text: string): void {
    this.logs.push(text);
  }
  now(): number {
    return this.t;
  }
  /** Signal handlers by number; a test raises one with signals.get(n)!(). */
  signals = new Map<number, () => void>();
  onSignal(signal: number, cb: () => void): void {
    this.signals.set(signal, cb);
  }
  log(level: LogLevel, message: string): void {
    this.logs.push(`${level}: ${message}`);
  }
  /** The code of the last exit() (which throws, as the real one does not return). */
  exited: number | null = null;
  exit(code: number): never {
    this.exited = code;
    throw new Error(`exit ${code}`);
  }
  /** Runs due timers in time order up to t+ms. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.cb();
    }
    this.t = end;
  }
}

/** A FakeLoop with the Node runtime's re-armable deadline timer: one entry among the timers,
 *  replaced when armed again; `deadlineFires` counts its wake-ups. */
export class DeadlineFakeLoop extends FakeLoop {
  deadlineFires = 0;
  deadlineAt = Infinity;
  private deadlineId: unknown = null;
  turnNow(): number {
    return this.t;
  }
  deadlineTimer(cb: () => void): DeadlineTimer {
    const stop = (): void => {
      if (this.deadlineId !== null) this.cancelTimer(this.deadlineId);
      this.deadlineId = null;
      this.deadlineAt = Infinity;
    };
    return {
      arm: (ms) => {
        stop();
        this.deadlineAt = this.t + Math.max(0, ms);
        this.deadlineId = this.setTimer(Math.max(0, ms), () => {
          this.deadlineId = null;
          this.deadlineAt = Infinity;
          this.deadlineFires++;
          cb();
        });
      },
      stop,
    };
  }
}
