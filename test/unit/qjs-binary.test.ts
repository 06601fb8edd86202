// Runs the QuickJS client executable build/x86_64/tunneldigger (make build/x86_64/tunneldigger)
// and checks its runtime: tdnative UDP through the event loop (qjs-native/td_qjs_loop.c), timers,
// signals, fatal callback errors and promise rejections, the engine built-ins the client uses,
// rejection of bad flags.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// this file runs as build/js/test/unit/qjs-binary.test.js
const BIN = fileURLToPath(new URL('../../../x86_64/tunneldigger', import.meta.url));

function run(...args: string[]) {
  const r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, error: r.error };
}

test('the executable has been built', () => {
  assert.ok(existsSync(BIN), `${BIN} missing: run make build/x86_64/tunneldigger`);
});

test('UDP datagram to itself through tdnative, sent from a timer, read by a read handler', () => {
  const r = run('--selftest-udp');
  assert.is(r.error, undefined);
  assert.is(r.stderr, '');
  assert.is(r.status, 0, 'the loop ends by itself once no fd or timer is left');
  const lines = r.stdout.trim().split('\n');
  assert.is(lines.length, 2, r.stdout);
  const timer = /^selftest-udp: timer fired after (\d+) ms$/.exec(lines[0]!);
  assert.ok(timer, lines[0]);
  assert.ok(Number(timer![1]) >= 29, `30 ms timer fired early: ${lines[0]}`);
  const rx = /^selftest-udp: received 13 bytes "tunneldigger!" from 127\.0\.0\.1:(\d+) own port (\d+)$/.exec(lines[1]!);
  assert.ok(rx, lines[1]);
  assert.is(rx![1], rx![2], 'source port is the socket own port');
  assert.ok(Number(rx![1]) > 0);
});

test('IPv6 through tdnative: a v6 socket on ::1, v4 addresses refused, resolver gives all', () => {
  const r = run('--selftest-udp6');
  assert.is(r.error, undefined);
  assert.is(r.stderr, '');
  assert.is(r.status, 0);
  const lines = r.stdout.trim().split('\n');
  assert.is(lines[0], 'selftest-udp6: v4 address on a v6 socket EAFNOSUPPORT,EAFNOSUPPORT,EAFNOSUPPORT');
  const rx = /^selftest-udp6: received "six" from \[::1\]:(\d+) family 6 own port (\d+)$/.exec(lines[1] ?? '');
  assert.ok(rx, lines[1]);
  assert.is(rx![1], rx![2]);
  assert.is(lines[2], 'selftest-udp6: resolved 2001:db8::5 53 family 6, all 2001:db8::5/6');
});

test('the built-ins the client uses work, promise jobs run, RegExp/Date/JSON/Proxy are left out', () => {
  const r = run('--selftest-builtins');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stderr, '');
  assert.is(r.stdout,
    'selftest-builtins: Map 1:2, DataView 7f000001 2,127, toFixed 1234.6, parseInt 31, padStart 007, absent RegExp,Date,JSON,Proxy\n' +
    'selftest-builtins: promise job ran (42)\n');
});

test('event loop: deadline order, no fd starvation by 0 ms timers, closed watched fd dropped', () => {
  const r = run('--selftest-loop');
  assert.is(r.error, undefined, 'the loop ends by itself (a closed watched fd must not keep it spinning)');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'selftest-loop: fd,t20,t40, 0 ms timer ran a few times\n');
  assert.match(r.stderr, /^warning: fd \d+ was closed while watched, no longer watching it\n$/);
});

test('timers never fire before now() reaches their deadline (no early, wasted wake-ups)', () => {
  const r = run('--selftest-timers');
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout, 'selftest-timers: 40 fired, 0 early\n');
});

test('an unhandled promise rejection is fatal (exit 1) with one line on stderr', () => {
  const r = run('--selftest-reject');
  assert.is(r.status, 1, r.stderr);
  assert.is(r.stderr, 'error: unhandled promise rejection, exiting: Error: nobody handles this\n');
  assert.is(r.stdout, '');
});

test('an exception in a timer callback is fatal (exit 70) with a message on stderr', () => {
  const r = run('--selftest-throw');
  assert.is(r.status, 70, r.stderr);
  assert.match(r.stderr, /^error: internal error in timer callback, exiting: Error: boom from a timer/);
  assert.not.match(r.stdout, /still running/);
});

test('SIGTERM runs the signal handler from the event loop', async () => {
  const child = spawn(BIN, ['--selftest-signal'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const done = new Promise<number | null>((resolve, reject) => {
    const guard = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit within 10 s, stdout: ${out}`));
    }, 10_000);
    child.on('exit', (code) => {
      clearTimeout(guard);
      resolve(code);
    });
  });
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    if (out.includes('selftest-signal: ready\n')) child.kill('SIGTERM');
  });
  const code = await done;
  assert.is(code, 3, out);
  assert.is(out, 'selftest-signal: ready\nselftest-signal: got SIGTERM\n');
});

test('bad flags reach the client and are rejected with one line on stderr and status 1', () => {
  for (const [args, mention] of [
    [['-Z'], '-Z'],
    [['-u', 'x', '-b', '203.0.113.1:8942', '-i', 'l2tp0', '-t', 'abc'], '-t'],
    [['--no-such-flag'], 'invalid option'],
  ] as const) {
    const r = run(...args);
    assert.is(r.signal, null);
    assert.is(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
    assert.is(r.stdout, '');
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, r.stderr);
    assert.ok(lines[0]!.startsWith('error: ') && lines[0]!.includes(mention), lines[0]);
  }
});

test('-h prints the plain help text (every option of the original client) and exits 1', () => {
  const r = run('-h');
  assert.is(r.status, 1);
  assert.ok(r.stderr.startsWith('Usage: tunneldigger'), r.stderr);
  for (const flag of ['-h', '-f', '-u', '-l', '-b', '-i', '-I', '-s', '-t', '-L', '-a', '-g', '-r']) {
    assert.ok(new RegExp(`^  ${flag} `, 'm').test(r.stderr), `help lacks ${flag}`);
  }
});

test('the client ignores SIGPIPE (as the original) and survives SIGHUP; SIGTERM still ends it with 0', async () => {
  // the host kernel has no L2TP: the client waits for it, logging one line, which is all we need
  const child = spawn(BIN, ['-f', '-u', 'sig-test', '-b', '192.0.2.1:8942', '-i', 'l2tp9'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })));
  const waitFor = async (what: string, ms = 8000): Promise<void> => {
    for (const end = Date.now() + ms; !err.includes(what); await new Promise((r) => setTimeout(r, 20))) {
      if (Date.now() > end || child.exitCode !== null || child.signalCode !== null) {
        child.kill('SIGKILL');
        throw new Error(`no '${what}' (exit ${child.exitCode}/${child.signalCode}), stderr: ${err}`);
      }
    }
  };
  try {
    await waitFor('retrying every 5 s');
    child.kill('SIGPIPE');
    await new Promise((r) => setTimeout(r, 300));
    assert.is(child.signalCode, null, `killed by SIGPIPE; stderr: ${err}`);
    assert.is(child.exitCode, null);
    child.kill('SIGHUP');
    await waitFor('SIGHUP: not connected yet, nothing to reconnect');
    assert.is(child.signalCode, null, 'killed by SIGHUP');
    child.kill('SIGTERM');
    const r = await exited;
    assert.equal(r, { code: 0, signal: null }, err);
    assert.ok(err.includes('info: terminating'), err);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
});

test('-h lists -m, the opt-in for session.mtu-changed', () => {
  const r = run('-h');
  assert.match(r.stderr, /^  -m +also run <script> session\.mtu-changed/m);
});

test.run();
