// What the sans-IO cores need from a runtime (QuickJS or Node): fd readiness, timers, a
// monotonic clock, signals and logging. src/runtime/node/ and src/runtime/quickjs/ implement it.

export type LogLevel = 'error' | 'warning' | 'info' | 'debug';

export interface Loop {
  /** Calls cb whenever fd is readable; cb = null stops watching. */
  onReadable(fd: number, cb: (() => void) | null): void;
  /** One-shot timer; returns a handle for cancelTimer. */
  setTimer(ms: number, cb: () => void): unknown;
  cancelTimer(handle: unknown): void;
  /** Monotonic milliseconds. */
  now(): number;
  /** The clock as of this loop turn's wake-up, without reading the clock (a syscall where the
   *  vDSO cannot be used): now()'s domain, never ahead of it. Absent: use now(). */
  turnNow?(): number;
  /** The runtime's one re-armable timer, calling cb: arm(ms) fires ms after turnNow(), and
   *  arming again (earlier or later) replaces the time armed before without a wake-up for it.
   *  One per runtime (the broker driver's): a second call takes it over with its own cb.
   *  Absent or null: use setTimer. */
  deadlineTimer?(cb: () => void): DeadlineTimer | null;
  /** Installs a handler for SIGTERM/SIGINT/SIGHUP... (signal numbers per platform are the same
   *  for these on x86 and MIPS: HUP 1, INT 2, TERM 15). */
  onSignal(signal: number, cb: () => void): void;
  log(level: LogLevel, message: string): void;
  /** Writes text to stderr as is (help and usage texts). */
  print(text: string): void;
  /** Ends the process with the given code. */
  exit(code: number): never;
}

export interface DeadlineTimer {
  arm(ms: number): void;
  stop(): void;
}
