// Hidden self-tests of the QuickJS runtime (test/unit/qjs-binary.test.ts runs them): they
// exercise tdnative + the event loop (qjs-native/td_qjs_loop.c) without any client logic.
import { writeString } from 'tdproc';
import type { Native } from '../../native.js';
import type { Loop } from '../../runtime/loop.js';

const say = (line: string): void => {
  writeString(1, `${line}\n`);
};

function ascii(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0x7f;
  return b;
}

function text(b: Uint8Array, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(b[i]!);
  return s;
}

function fail(loop: Loop, what: string): never {
  loop.log('error', `selftest: ${what}`);
  return loop.exit(1);
}

/** A timer sends a datagram to our own socket on 127.0.0.1; the read handler prints it. A
 *  cancelled timer must never fire. The process ends by itself once nothing is watched. */
function udp(native: Native, loop: Loop): void {
  const fd = native.udpSocket();
  if (fd < 0) fail(loop, `udpSocket: ${native.strerror(-fd)}`);
  const rc = native.bind(fd, '127.0.0.1', 0);
  if (rc < 0) fail(loop, `bind: ${native.strerror(-rc)}`);
  const port = native.localPort(fd);
  if (port <= 0) fail(loop, `localPort: ${native.strerror(-port)}`);
  const start = loop.now();
  const cancelled = loop.setTimer(5, () => fail(loop, 'a cancelled timer fired'));
  loop.cancelTimer(cancelled);
  loop.onReadable(fd, () => {
    const buf = new Uint8Array(1500);
    const from = { ip: '', port: 0 };
    const n = native.recvFrom(fd, buf, from);
    if (n === -native.errno.EAGAIN) return;
    if (n < 0) fail(loop, `recvFrom: ${native.strerror(-n)}`);
    say(`selftest-udp: received ${n} bytes "${text(buf, n)}" from ${from.ip}:${from.port} own port ${port}`);
    loop.onReadable(fd, null);
    native.close(fd);
  });
  loop.setTimer(30, () => {
    say(`selftest-udp: timer fired after ${Math.round(loop.now() - start)} ms`);
    const sent = native.sendTo(fd, ascii('tunneldigger!'), '127.0.0.1', port);
    if (sent < 0) fail(loop, `sendTo: ${native.strerror(-sent)}`);
  });
}

/** Waits for SIGTERM (sent by the test) and exits 3 from the handler; exits 4 after 10 s. */
function signal(loop: Loop): void {
  loop.onSignal(15, () => {
    say('selftest-signal: got SIGTERM');
    loop.exit(3);
  });
  loop.setTimer(10000, () => fail(loop, 'no SIGTERM within 10 s'));
  say('selftest-signal: ready');
}

/** An exception in a callback is fatal (exit 70) instead of being printed and ignored. */
function throwing(loop: Loop): void {
  loop.setTimer(1, () => {
    throw new Error('boom from a timer');
  });
  loop.setTimer(200, () => say('selftest-throw: still running (wrong)'));
}

/** Event loop rules (qjs-native/td_qjs_loop.c): timers fire by deadline, not creation order; a
 *  0 ms timer that keeps re-arming itself cannot starve a readable fd; an fd closed while
 *  watched is reported once on stderr and dropped (no busy loop), and the loop still ends by
 *  itself once nothing is left. */
function loopRules(native: Native, loop: Loop): void {
  const events: string[] = [];
  loop.setTimer(40, () => events.push('t40'));
  loop.setTimer(20, () => events.push('t20'));
  const fd = native.udpSocket();
  const gone = native.udpSocket();
  if (fd < 0 || gone < 0 || native.bind(fd, '127.0.0.1', 0) < 0) fail(loop, 'udp socket setup');
  let got = false;
  let spins = 0;
  const spin = (): void => {
    spins++;
    if (!got) loop.setTimer(0, spin);
  };
  loop.setTimer(0, spin);
  loop.onReadable(fd, () => {
    native.recvFrom(fd, new Uint8Array(64), { ip: '', port: 0 });
    got = true;
    events.push('fd');
    loop.onReadable(fd, null);
    native.close(fd);
  });
  loop.onReadable(gone, () => fail(loop, 'handler of a closed fd called'));
  native.close(gone);
  if (native.sendTo(fd, ascii('x'), '127.0.0.1', native.localPort(fd)) < 0) fail(loop, 'sendTo');
  loop.setTimer(60, () => say(`selftest-loop: ${events.join(',')}, 0 ms timer ran ${spins < 50 ? 'a few times' : `${spins} times`}`));
}

/** A timer armed for a fractional deadline (ms = ceil(deadline - now()), as the client driver
 *  arms its one timer) never fires before now() reaches the deadline: an early wake-up finds
 *  nothing due and costs a second one. 40 timers in a row, 2.3..6.2 ms each, while a 1 ms
 *  timer keeps waking the loop (as datagrams do) at every fraction of a ms. */
function timers(loop: Loop): void {
  let early = 0;
  let n = 0;
  const noise = (): void => {
    if (n < 40) loop.setTimer(1, noise);
  };
  noise();
  const next = (): void => {
    if (n === 40) return say(`selftest-timers: ${n} fired, ${early} early`);
    const deadline = loop.now() + 2.3 + (n % 4) * 1.3;
    n++;
    loop.setTimer(Math.ceil(deadline - loop.now()), () => {
      if (loop.now() < deadline) early++;
      next();
    });
  };
  next();
}

/** The engine features the client relies on, computed on the target (big-endian byte order,
 *  soft-float number formatting), a promise job run by the event loop, and the intrinsics the
 *  binary leaves out on purpose (qjs-native/qjs_main.c). */
function builtins(): void {
  const m = new Map<string, number>([['a', 1], ['b', 2]]);
  m.delete('a');
  const dv = new DataView(new ArrayBuffer(6));
  dv.setUint16(0, 0x0102);
  dv.setUint32(2, 0x7f000001);
  const b = new Uint8Array(dv.buffer).subarray(1, 3);
  const g = globalThis as unknown as Record<string, unknown>;
  const absent = ['RegExp', 'Date', 'JSON', 'Proxy'].filter((n) => g[n] === undefined);
  say(`selftest-builtins: Map ${m.size}:${m.get('b')}, DataView ${dv.getUint32(2).toString(16)} ${b[0]},${b[1]}, ` +
    `toFixed ${(1234.5678).toFixed(1)}, parseInt ${parseInt('1f', 16)}, padStart ${'7'.padStart(3, '0')}, ` +
    `absent ${absent.join(',')}`);
  void Promise.resolve(42).then((v) => say(`selftest-builtins: promise job ran (${v})`));
}

/** An unhandled promise rejection ends the process (exit 1) with one line on stderr. */
function rejection(loop: Loop): void {
  void Promise.reject(new Error('nobody handles this'));
  loop.setTimer(200, () => say('selftest-reject: still running (wrong)'));
}

/** Runs the self-test named by args[0]; false when args[0] is not a self-test flag. */
export function runSelfTest(args: string[], native: Native, loop: Loop): boolean {
  switch (args[0]) {
    case '--selftest-udp':
      udp(native, loop);
      return true;
    case '--selftest-signal':
      signal(loop);
      return true;
    case '--selftest-throw':
      throwing(loop);
      return true;
    case '--selftest-loop':
      loopRules(native, loop);
      return true;
    case '--selftest-timers':
      timers(loop);
      return true;
    case '--selftest-builtins':
      builtins();
      return true;
    case '--selftest-reject':
      rejection(loop);
      return true;
    default:
      return false;
  }
}
