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
  /** Installs a handler for SIGTERM/SIGINT/SIGHUP... (signal numbers per platform are the same
   *  for these on x86 and MIPS: HUP 1, INT 2, TERM 15). */
  onSignal(signal: number, cb: () => void): void;
  log(level: LogLevel, message: string): void;
  /** Writes text to stderr as is (help and usage texts). */
  print(text: string): void;
  /** Ends the process with the given code. */
  exit(code: number): never;
}
