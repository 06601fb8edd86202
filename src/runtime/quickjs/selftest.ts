// Hidden self-tests of the QuickJS runtime (test/unit/qjs-binary.test.ts runs them): they
// exercise tdnative + the os event loop without any client logic.
import { writeString } from 'tdproc';
import type { Native } from '../../native.js';
import type { Loop } from '../loop.js';

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

/** A regexp literal (precompiled into the bytecode by qjsc) and one compiled at run time. */
function regexp(): void {
  const lit = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec('203.0.113.7');
  const dyn = new RegExp('^--([a-z-]+)=(.*)$').exec('--bind=eth0');
  say(`selftest-regexp: ${lit ? lit.slice(1).join(',') : 'no match'} ${dyn ? dyn.slice(1).join(',') : 'no match'}`);
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
    case '--selftest-regexp':
      regexp();
      return true;
    default:
      return false;
  }
}
