// Loop (src/runtime/loop.ts) on top of the event loop of qjs-native/td_qjs_loop.c (exported
// by the `tdproc` module): poll() over the read handlers, one-shot timers, signals delivered
// between callbacks. The loop ends, and the process exits 0, when no fd handler or timer is left.
//
// Callbacks go to C as they are, without a JS wrapper per callback (a closure per timer armed
// was a fifth of an idle client's JS work): an exception escaping one is reported by
// td_qjs_loop.c in one line, "error: internal error in timer callback, exiting: Error: ...", and
// ends the process with 70 (EX_SOFTWARE): a half-updated state machine is worse than a restart
// by procd.
import * as tdproc from 'tdproc';
import type { Loop, LogLevel } from '../loop.js';

export function createLoop(): Loop {
  const log = (level: LogLevel, message: string): void => {
    tdproc.writeString(2, `${level}: ${message}\n`);
  };
  return {
    onReadable(fd, cb) {
      tdproc.setReadHandler(fd, cb);
    },
    setTimer(ms, cb) {
      // fractional ms are fine: td_qjs_loop.c rounds the deadline up to the next µs
      return tdproc.setTimeout(cb, ms);
    },
    cancelTimer(handle) {
      if (typeof handle === 'number') tdproc.clearTimeout(handle);
    },
    // the C function itself: no JS frame per clock read
    now: tdproc.now,
    onSignal(signal, cb) {
      tdproc.signal(signal, cb);
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
