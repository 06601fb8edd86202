// Loop (src/runtime/loop.ts) on top of quickjs-libc's `os` event loop (js_std_loop in
// qjs_main.c): select() over the read handlers, one-shot timers, signals delivered between
// callbacks. The loop ends, and the process exits 0, when no fd handler or timer is left.
import * as os from 'quickjs:os';
import { exit, writeString } from 'tdproc';
import type { Loop, LogLevel } from '../loop.js';

// One line: the bytecode is built with `qjsc -s`, so stack traces hold no names or lines anyway.
function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export function createLoop(): Loop {
  const log = (level: LogLevel, message: string): void => {
    writeString(2, `${level}: ${message}\n`);
  };
  // quickjs-libc prints an exception thrown by a callback and carries on; a half-updated state
  // machine is worse than a restart by procd, so report it and exit like Node would.
  const guard = (what: string, cb: () => void) => (): void => {
    try {
      cb();
    } catch (e) {
      log('error', `internal error in ${what} callback, exiting: ${errorText(e)}`);
      exit(70); // EX_SOFTWARE
    }
  };
  return {
    onReadable(fd, cb) {
      os.setReadHandler(fd, cb ? guard(`fd ${fd}`, cb) : null);
    },
    setTimer(ms, cb) {
      return os.setTimeout(guard('timer', cb), Math.max(0, Math.ceil(ms)));
    },
    cancelTimer(handle) {
      if (typeof handle === 'number') os.clearTimeout(handle);
    },
    now: () => os.now(),
    onSignal(signal, cb) {
      os.signal(signal, guard(`signal ${signal}`, cb));
    },
    log,
    print(text) {
      writeString(2, text);
    },
    exit(code) {
      return exit(code);
    },
  };
}
