// Types of the C modules the QuickJS client bundle imports. They exist only inside
// build/x86_64/tunneldigger (qjs-native/qjs_main.c registers them), never under Node.

// qjs-native/td_quickjs.c; src/runtime/quickjs/native.ts gives it the `Native` type.
declare module 'tdnative';

// qjs-native/qjs_main.c: process-level helpers, and the event loop of qjs-native/td_qjs_loop.c.
declare module 'tdproc' {
  /** Command-line arguments without the program name. */
  export const argv: string[];
  /** Flushes stdio and ends the process. */
  export function exit(code: number): never;
  /** Writes s as UTF-8 to fd; bytes written or -errno. */
  export function writeString(fd: number, s: string): number;
  /** Calls cb whenever fd is readable (or has an error/hangup); null removes it. */
  export function setReadHandler(fd: number, cb: (() => void) | null): void;
  /** One-shot timer after ms (fractional; ≤ 0 or NaN: next round); returns its id. */
  export function setTimeout(cb: () => void, ms: number): number;
  export function clearTimeout(id: number): void;
  /** CLOCK_MONOTONIC in milliseconds (fractional). */
  export function now(): number;
  /** Runs cb from the event loop after signal sig; null = default action, undefined = ignore. */
  export function signal(sig: number, cb: (() => void) | null | undefined): void;
}
