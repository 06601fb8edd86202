// Loop (src/runtime/loop.ts) on top of the event loop of qjs-native/td_qjs_loop.c (exported
// by the `tdproc` module): poll() over the read handlers, one-shot timers, signals delivered
// between callbacks. The loop ends, and the process exits 0, when no fd handler or timer is left.
import * as tdproc from 'tdproc';
import type { Loop, LogLevel } from '../loop.js';

// One line: the bytecode is built with `qjsc -s`, so stack traces hold no names or lines anyway.
function errorText(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

export function createLoop(): Loop {
  const log = (level: LogLevel, message: string): void => {
    tdproc.writeString(2, `${level}: ${message}\n`);
  };
  // A half-updated state machine is worse than a restart by procd: report an exception thrown
  // by a callback and exit (td_qjs_loop.c would exit 70 too, with a less specific message).
  const guard = (what: string, cb: () => void) => (): void => {
    try {
      cb();
    } catch (e) {
      log('error', `internal error in ${what} callback, exiting: ${errorText(e)}`);
      tdproc.exit(70); // EX_SOFTWARE
    }
  };
  return {
    onReadable(fd, cb) {
      tdproc.setReadHandler(fd, cb ? guard(`fd ${fd}`, cb) : null);
    },
    setTimer(ms, cb) {
      return tdproc.setTimeout(guard('timer', cb), Math.max(0, Math.ceil(ms)));
    },
    cancelTimer(handle) {
      if (typeof handle === 'number') tdproc.clearTimeout(handle);
    },
    now: () => tdproc.now(),
    onSignal(signal, cb) {
      tdproc.signal(signal, guard(`signal ${signal}`, cb));
    },
    log,
    print(text) {
      tdproc.writeString(2, text);
    },
    exit(code) {
      return tdproc.exit(code);
    },
  };
}
