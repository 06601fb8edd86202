// Load generator (bench/loadgen): the simulated clients' main loops (ours vs the original
// client's silent give-up), its figures (percentiles, /proc/<pid>/stat, the broker's counters
// lines) and its options.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Action } from '../../src/client/actions.js';
import { ClientErrorCode, MessageType, timers } from '../../src/protocol/constants.js';
import * as m from '../../src/protocol/messages.js';
import { OptionError, parseLoadOptions, parseSources } from '../../bench/loadgen/options.js';
import { ORIGINAL_NO_ANSWER_PAUSE_MS, OriginalSim, OursSim, type Sim, type SimConfig } from '../../bench/loadgen/sim.js';
import { ClientScheduler, MIN_RETRY_MS } from '../../bench/loadgen/schedule.js';
import { alive, brokerCounters, cpuPerMinute, LagMonitor, parseBrokerLog, parseProcStat, percentile, procChildCount, procFdCount } from '../../bench/loadgen/stats.js';
import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { category } from '../../bench/profile-summary.js';

const CFG: SimConfig = { host: '198.51.100.1', port: 8942, uuid: 'lg-7', tunnelId: 1007, ifname: 'lg7' };
const COOKIE = Uint8Array.from([0, 3, 0x79, 0x24, 0xfb, 0xc7, 2, 0x4b]);

const sends = (out: Action[]): Uint8Array[] => out.flatMap((a) => (a.a === 'send' ? [a.data] : []));
const types = (out: Action[]): number[] => sends(out).map((d) => d[4]);
const opens = (out: Action[]): Extract<Action, { a: 'open' }>[] => out.flatMap((a) => (a.a === 'open' ? [a] : []));

/** Runs a sim to the point where PREPARE is out (the broker answered USAGE and COOKIE). */
function toPrepare(sim: Sim, now: number): Action[] {
  const start = sim.start(now);
  const open = opens(start)[0];
  assert.ok(open, 'the first round opens a socket');
  const connect = sim.opened(open.gen, [{ ip: CFG.host, port: CFG.port }], now);
  assert.equal(connect.filter((a) => a.a === 'connect').length, 1, 'one address: one socket');
  assert.equal(types(sim.connected(open.gen, 4, null, now)), [MessageType.USAGE]);
  const afterUsage = sim.feed(m.encodeUsageReply(0), now);
  assert.equal(types(afterUsage), [MessageType.COOKIE], 'selected at once: cookie request');
  const afterCookie = sim.feed(m.encodeCookieReply(COOKIE), now);
  assert.equal(types(afterCookie), [MessageType.PREPARE]);
  return afterCookie;
}

test('both sims over IPv6: the resolved family drives the socket, and answers count only on that family', () => {
  // the load generator passes the broker's family to opened() and feed(); without it a v6 run
  // connected nothing (the core waited for an IPv4 socket) and no client ever came up
  const v6: SimConfig = { ...CFG, host: '2001:db8::1' };
  for (const sim of [new OursSim(v6, () => 0.5), new OriginalSim(v6)]) {
    const open = opens(sim.start(0))[0];
    const connect = sim.opened(open.gen, [{ ip: v6.host, port: v6.port, family: 6 }], 0).filter((a) => a.a === 'connect');
    assert.equal(connect.map((a) => (a.a === 'connect' ? a.fam : 0)), [6]);
    assert.equal(types(sim.connected(open.gen, 6, null, 0)), [MessageType.USAGE]);
    assert.equal(types(sim.feed(m.encodeUsageReply(0), 0)), [], 'an answer said to come from an IPv4 socket is not this path\'s');
    assert.equal(types(sim.feed(m.encodeUsageReply(0), 0, 6)), [MessageType.COOKIE]);
    assert.equal(types(sim.feed(m.encodeCookieReply(COOKIE), 0, 6)), [MessageType.PREPARE]);
  }
});

test('original client: no TUNNEL within 15 s → gives up silently (no ERROR), new socket at once', () => {
  const sim = new OriginalSim(CFG);
  toPrepare(sim, 0);
  const before = sim.tick(timers.establishTimeout - 1);
  assert.not.ok(types(before).includes(MessageType.ERROR));
  assert.equal(opens(before).length, 0);
  const out = sim.tick(timers.establishTimeout);
  assert.not.ok(types(out).includes(MessageType.ERROR), 'the broker is told nothing');
  assert.ok(out.some((a) => a.a === 'close'), 'the old socket is closed');
  assert.equal(opens(out).length, 1, 'and a new one opened without backoff');
  assert.equal(sim.silentGiveUps, 1);
  assert.equal(sim.phase, 'round');
});

test('our client in the same situation tells the broker (ERROR 0x13) and backs off', () => {
  const sim = new OursSim(CFG, () => 0.5);
  toPrepare(sim, 0);
  const out = sim.tick(timers.establishTimeout);
  const err = sends(out).find((d) => d[4] === MessageType.ERROR);
  assert.ok(err, 'ERROR sent');
  assert.equal(m.decodeError(err!.subarray(6, 6 + err![5])).reason, ClientErrorCode.FAILURE);
  assert.equal(opens(out).length, 0, 'no new socket before the backoff delay');
  assert.equal(sim.silentGiveUps, 0);
});

test('original client: TUNNEL → setup → up; lost tunnel → new round at once; shutdown sends ERROR 0x11', () => {
  const sim = new OriginalSim(CFG);
  toPrepare(sim, 0);
  const setup = sim.feed(m.encodeTunnel(120, 1), 10).find((a) => a.a === 'setup');
  assert.ok(setup && setup.a === 'setup');
  assert.equal([setup.tunnelId, setup.peerTunnelId, setup.sessionId, setup.peerSessionId], [1007, 120, 1007, 120]);
  sim.setupDone(null, 20);
  assert.equal(sim.ctx.state, 'up');
  assert.equal(sim.phase, 'up');
  // the broker closes the tunnel: the original starts over at once
  const lost = sim.feed(m.encodeError(2), 30);
  assert.equal(opens(lost).length, 1);
  assert.equal(sim.phase, 'round');
  // up again, then SIGTERM-like shutdown
  const sim2 = new OriginalSim(CFG);
  toPrepare(sim2, 0);
  sim2.feed(m.encodeTunnel(121, 1), 10);
  sim2.setupDone(null, 20);
  const bye = sends(sim2.shutdown(30));
  assert.equal(bye.map((d) => [d[4], d[6]]), [[MessageType.ERROR, ClientErrorCode.SHUTDOWN]]);
});

test('original client: nobody answers within 10 s → 5 s pause, then a new round', () => {
  const sim = new OriginalSim(CFG);
  const open = opens(sim.start(0))[0];
  sim.opened(open.gen, [{ ip: CFG.host, port: CFG.port }], 0);
  sim.connected(open.gen, 4, null, 0);
  const out = sim.tick(timers.selectionWindow);
  assert.ok(out.some((a) => a.a === 'close'));
  assert.equal(sim.phase, 'pause');
  assert.equal(opens(sim.tick(timers.selectionWindow + ORIGINAL_NO_ANSWER_PAUSE_MS - 1)).length, 0);
  assert.equal(opens(sim.tick(timers.selectionWindow + ORIGINAL_NO_ANSWER_PAUSE_MS)).length, 1);
});

test('our sim shutdown: ERROR 0x11, no exit action', () => {
  const sim = new OursSim(CFG, () => 0.5);
  toPrepare(sim, 0);
  sim.feed(m.encodeTunnel(120, 1), 10);
  sim.setupDone(null, 20);
  const out = sim.shutdown(30);
  assert.not.ok(out.some((a) => a.a === 'exit'));
  assert.equal(sends(out).map((d) => [d[4], d[6]]), [[MessageType.ERROR, ClientErrorCode.SHUTDOWN]]);
});

test('--limit: both sims ask for the downstream limit (reliable LIMIT) once the tunnel is up', () => {
  for (const sim of [new OursSim({ ...CFG, limitKbps: 1024 }, () => 0.5), new OriginalSim({ ...CFG, limitKbps: 1024 })]) {
    toPrepare(sim, 0);
    sim.feed(m.encodeTunnel(120, 1), 10);
    const up = sim.setupDone(null, 20);
    const limit = sends(up).find((d) => d[4] === MessageType.LIMIT);
    assert.ok(limit, 'LIMIT sent');
    assert.is(m.decodeLimit(limit!.subarray(6, 6 + limit![5]))?.bandwidthKbps, 1024);
  }
  const plain = new OursSim(CFG, () => 0.5);
  toPrepare(plain, 0);
  plain.feed(m.encodeTunnel(120, 1), 10);
  assert.not.ok(types(plain.setupDone(null, 20)).includes(MessageType.LIMIT));
});

test('percentile: nearest rank', () => {
  const v = Array.from({ length: 100 }, (_, i) => 100 - i); // 100..1, unsorted
  assert.equal([percentile(v, 50), percentile(v, 95), percentile(v, 99), percentile(v, 100)], [50, 95, 99, 100]);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('parseProcStat: comm with blanks and parentheses; utime+stime and children', () => {
  const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 1 0 0 0 150 50 30 20 20 0 11 0 99 1 2';
  assert.equal(parseProcStat(stat), { self: 2, children: 0.5 });
  assert.equal(parseProcStat('garbage'), null);
});

test('cpuPerMinute: CPU seconds (itself + reaped children) per minute between two readings; null without one', () => {
  const a = { at: 10_000, cpu: { self: 1.5, children: 0.25 } };
  assert.is(cpuPerMinute(a, { at: 40_000, cpu: { self: 2.0, children: 0.5 } }), 1.5);
  assert.is(cpuPerMinute(a, { at: 40_000, cpu: null }), null);
  assert.is(cpuPerMinute(a, { at: 10_000, cpu: a.cpu }), null);
});

test('parseBrokerLog: last counters line and the status line after it', () => {
  const log = [
    '2026-12-01T21:00:00.000Z INFO counters: tunnels-created=3',
    '2026-12-01T21:00:00.001Z INFO status: 3/1100 tunnels, 1097 ids free',
    '2026-12-01T21:00:05.000Z INFO counters: cookies-issued=120 datagrams=900 tunnels-created=100',
    '2026-12-01T21:00:05.001Z INFO status: 98/1100 tunnels, 1002 ids free',
    '',
  ].join('\n');
  assert.equal(parseBrokerLog(log), { counters: { 'cookies-issued': 120, datagrams: 900, 'tunnels-created': 100 }, tunnels: 98 });
  assert.equal(parseBrokerLog('nothing here\n'), null);
});

test('brokerCounters: SIGUSR1, then the counters the log gained after it, not older ones', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'td-lg-'));
  const log = join(dir, 'broker.log');
  // a long log with older counters, as a broker that has refused thousands of clients writes
  const old = 'INFO counters: tunnels-created=1\nINFO status: 1/1100 tunnels\n' + 'INFO refusing 198.51.100.9:4000\n'.repeat(20000);
  writeFileSync(log, old);
  // the broker stand-in: answers SIGUSR1 by appending a counters and a status line
  const js = `const fs = require('fs'); process.on('SIGUSR1', () => fs.appendFileSync(${JSON.stringify(log)}, ` +
    `'INFO counters: tunnels-created=42 datagrams=7\\nINFO status: 40/1100 tunnels, 1060 ids free\\n')); ` +
    `process.stdout.write('ready\\n'); setTimeout(() => {}, 10000);`;
  const child = spawn(process.execPath, ['-e', js], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((r) => child.stdout!.once('data', () => r()));
    const got = await brokerCounters(child.pid!, log, 5000);
    assert.equal(got, { counters: { 'tunnels-created': 42, datagrams: 7 }, tunnels: 40 });
    // a broker that is gone: null, never the old counters
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    assert.is(await brokerCounters(child.pid!, log, 300), null);
  } finally {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('options: sources, required options and errors naming the option', () => {
  assert.equal(parseSources('198.51.100.10-12,203.0.113.5'), ['198.51.100.10', '198.51.100.11', '198.51.100.12', '203.0.113.5']);
  const o = parseLoadOptions(['--broker', '198.51.100.1:8942', '--clients', '100', '--original', '--rate', '20']);
  if (o === 'help') throw new Error('options parsed as --help');
  assert.equal([o.brokerIp, o.brokerPort, o.clients, o.mode, o.rate, o.kernel], ['198.51.100.1', 8942, 100, 'original', 20, false]);
  const err = (argv: string[]): string => {
    try {
      parseLoadOptions(argv);
    } catch (e) {
      assert.instance(e, OptionError);
      return (e as Error).message;
    }
    return '';
  };
  assert.match(err(['--broker', 'broker.example:8942', '--clients', '1']), /--broker: 'broker.example' is not an IPv4 address/);
  // IPv6: brackets, sources of the broker's family, hex ranges in the last group
  const v6 = parseLoadOptions(['--broker', '[2001:DB8::1]:8942', '--clients', '3', '--source', '2001:db8:0:7::a-c,2001:db8:0:8::1']);
  if (v6 === 'help') throw new Error('options parsed as --help');
  assert.equal([v6.brokerIp, v6.family, v6.brokerPort], ['2001:db8::1', 6, 8942]);
  assert.equal(v6.sources, ['2001:db8:0:7::a', '2001:db8:0:7::b', '2001:db8:0:7::c', '2001:db8:0:8::1']);
  const any = (broker: string) => {
    const o = parseLoadOptions(['--broker', broker, '--clients', '1']);
    return o === 'help' ? null : [o.sources, o.family];
  };
  assert.equal(any('[2001:db8::1]:8942'), [['::'], 6]);
  assert.equal(any('198.51.100.1:8942'), [['0.0.0.0'], 4]);
  assert.match(err(['--broker', '2001:db8::1:8942', '--clients', '1']), /--broker: '2001:db8::1:8942': an IPv6 address needs brackets around it/);
  assert.match(err(['--broker', '[2001:db8::1%eth0]:8942', '--clients', '1']), /--broker: '2001:db8::1%eth0' is not an IPv6 address/);
  assert.match(err(['--broker', '[2001:db8::1]:8942', '--clients', '1', '--source', '198.51.100.7']),
    /--source: '198\.51\.100\.7' is not of the broker's address family \(IPv6: 2001:db8::1\)/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '1', '--source', '2001:db8::7']), /not of the broker's address family \(IPv4/);
  assert.match(err(['--broker', '[2001:db8::1]:8942', '--clients', '1', '--source', '2001:db8::f-a']), /is not a range/);
  const lim = parseLoadOptions(['--broker', '198.51.100.1:8942', '--clients', '1', '--limit', '1024']);
  assert.is(lim !== 'help' && lim.limitKbps, 1024);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '1', '--limit', '0']), /--limit: '0'/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '0']), /--clients: '0'/);
  assert.match(err(['--broker', '198.51.100.1:8942']), /--clients N is required/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '5', '--source', '198.51.100.9-3']), /--source: '198.51.100.9-3'/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '5', '--churn', '2']), /--churn needs --duration/);
  const win = parseLoadOptions(['--broker', '198.51.100.1:8942', '--clients', '5', '--duration', '180', '--windows', '3']);
  assert.is(win !== 'help' && win.windows, 3);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '5', '--windows', '3']), /--windows needs --duration/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '5', '--duration', '9', '--windows', '0']), /--windows: '0' is not an integer/);
  assert.match(err(['--broker', '198.51.100.1:8942', '--clients', '5', '--broker-pid', '9']), /go together/);
  assert.equal(parseLoadOptions(['--help']), 'help');
});

test('options: --stop-broker TERM|KILL needs the broker pid; --stop-wait', () => {
  const base = ['--broker', '198.51.100.1:8942', '--clients', '5', '--broker-pid', '9', '--broker-log', '/tmp/x'];
  const o = parseLoadOptions([...base, '--stop-broker', 'term', '--stop-wait', '30']);
  if (o === 'help') throw new Error('help');
  assert.equal([o.stopSignal, o.stopWaitS], ['SIGTERM', 30]);
  const k = parseLoadOptions([...base, '--stop-broker', 'SIGKILL']);
  assert.is(k !== 'help' && k.stopSignal, 'SIGKILL');
  assert.throws(() => parseLoadOptions([...base, '--stop-broker', 'HUP']), /--stop-broker: 'HUP' is not TERM or KILL/);
  assert.throws(() => parseLoadOptions(['--broker', '198.51.100.1:8942', '--clients', '5', '--stop-broker', 'TERM']), /needs --broker-pid/);
});

test('options: how the sockets are read: batched by default, --read-ms, --per-socket, not both', () => {
  const base = ['--broker', '198.51.100.1:8942', '--clients', '5'];
  const d = parseLoadOptions(base);
  assert.equal(d !== 'help' && [d.readMs, d.perSocket], [0, false]);
  const r = parseLoadOptions([...base, '--read-ms', '100']);
  assert.equal(r !== 'help' && [r.readMs, r.perSocket], [100, false]);
  const p = parseLoadOptions([...base, '--per-socket']);
  assert.equal(p !== 'help' && [p.readMs, p.perSocket], [0, true]);
  assert.throws(() => parseLoadOptions([...base, '--read-ms', '1001']), /--read-ms/);
  assert.throws(() => parseLoadOptions([...base, '--read-ms', '2.5']), /--read-ms/);
  assert.throws(() => parseLoadOptions([...base, '--read-ms', '50', '--per-socket']), /--read-ms .*cannot go with --per-socket/);
});

test('LagMonitor: a blocked event loop shows as the timer firing late; take() starts a new period, max keeps the worst', async () => {
  const lag = new LagMonitor(() => performance.now(), 20);
  try {
    await new Promise((r) => setTimeout(r, 50));
    lag.take();
    const until = performance.now() + 300;
    while (performance.now() < until) { /* the loop stands still */ }
    await new Promise((r) => setTimeout(r, 60));
    const late = lag.take();
    assert.ok(late >= 250, `late by ${late} ms after a 300 ms block`);
    await new Promise((r) => setTimeout(r, 60));
    assert.ok(lag.take() < 250, 'the next period does not carry the block');
    assert.ok(lag.max >= late);
  } finally {
    lag.stop();
  }
});

test('broker figures from /proc: open fds, child processes, alive (a zombie is not)', () => {
  const n0 = procFdCount(process.pid)!;
  const fd = openSync('/dev/null', 'r');
  assert.is(procFdCount(process.pid), n0 + 1);
  closeSync(fd);
  assert.is(procFdCount(process.pid), n0);
  assert.is(procFdCount(2 ** 22 + 1), null);
  const before = procChildCount(process.pid);
  const child = spawn('sleep', ['5'], { stdio: 'ignore' });
  assert.is(procChildCount(process.pid), before + 1);
  assert.ok(alive(child.pid!));
  // exited but not yet waited for: a zombie; Node reaps on SIGCHLD only when the loop runs
  spawnSync('kill', ['-KILL', String(child.pid)]);
  spawnSync('sleep', ['0.2']);
  assert.not.ok(alive(child.pid!), 'a zombie is not alive');
  assert.not.ok(alive(2 ** 22 + 1));
});

test('profile-summary: addon time goes to the category of its JS caller, else by ancestry', () => {
  const f = (functionName: string, url = '') => ({ id: 0, callFrame: { functionName, url, lineNumber: 0 } });
  const B = 'file:///r/build/js/src';
  assert.is(category([f('startNext', `${B}/broker/job-runner.js`), f('submit', `${B}/broker/job-runner.js`)]), 'fork+exec of hooks (JobRunner.startNext → spawn)');
  assert.is(category([f('start', `${B}/process/supervisor.js`), f('startHead', `${B}/broker/job-runner.js`)]),
    'spawn of hooks (Supervisor.start → posix_spawn until exec)');
  assert.is(category([f('check', `${B}/process/supervisor.js`)]), 'reaping hooks (Supervisor.check/finish: waitpid, close, unwatch)');
  assert.is(category([f('start', `${B}/broker/executor.js`)]), 'broker/protocol JS', 'only the supervisor\'s start is a spawn');
  assert.is(category([f('transact', `${B}/netlink/kernel.js`)]), 'netlink syscalls (NetlinkKernel.transact)');
  assert.is(category([f('u32', `${B}/netlink/netlink.js`), f('setup', `${B}/broker/executor.js`)]), 'netlink encode/decode (JS)');
  assert.is(category([f('writeBuffer'), f('log', `${B}/runtime/node/loop.js`), f('execute', `${B}/broker/executor.js`)]), 'logging (format + synchronous stderr write)');
  assert.is(category([f('decodePrepare', `${B}/protocol/messages.js`)]), 'broker/protocol JS');
  assert.is(category([f('(garbage collector)')]), 'GC');
  assert.is(category([f('listOnTimeout', 'node:internal/timers')]), 'other JS (node internals, timers)');
});

/** A client of the scheduler tests: a sim and what it sent (time, message type). */
interface Driven { sim: Sim; scheduledAt: number; sent: [number, number][]; opens: number }

/** Executes a sim's actions as the load generator does without a broker that answers: a socket
 *  opens and connects at once, sends are recorded. */
function drive(c: Driven, out: Action[], now: number): void {
  for (const a of out) {
    if (a.a === 'open') {
      c.opens++;
      drive(c, c.sim.opened(a.gen, [{ ip: CFG.host, port: CFG.port }], now), now);
    } else if (a.a === 'connect') drive(c, c.sim.connected(a.gen, 4, null, now), now);
    else if (a.a === 'send') c.sent.push([now, a.data[4]]);
  }
}

test('--deadlines: a client ticked only at its deadlines sends what one ticked every 10 ms sends, at the same times (within the slack)', () => {
  const SLACK = 20;
  const END = 60_000;
  for (const make of [() => new OursSim(CFG, () => 0.5), () => new OriginalSim(CFG)]) {
    // reference: ticked every 10 ms
    const ref: Driven = { sim: make(), scheduledAt: Infinity, sent: [], opens: 0 };
    drive(ref, ref.sim.start(0), 0);
    let refTicks = 0;
    for (let t = 10; t <= END; t += 10, refTicks++) drive(ref, ref.sim.tick(t), t);
    // scheduled: the heap's earliest deadline, nothing in between
    const sched = new ClientScheduler<Driven>();
    const c: Driven = { sim: make(), scheduledAt: Infinity, sent: [], opens: 0 };
    drive(c, c.sim.start(0), 0);
    sched.schedule(c, 0);
    let ticks = 0;
    for (let t = sched.nextAt(); t <= END; t = sched.nextAt()) {
      ticks += sched.runDue(t, SLACK, (x, now) => {
        drive(x, x.sim.tick(now), now);
        sched.schedule(x, now);
      });
    }
    const name = c.sim.constructor.name;
    assert.ok(ref.sent.length >= 6, `${name}: the reference retried (${ref.sent.length} sends)`);
    assert.is(c.opens, ref.opens, `${name}: the same rounds`);
    assert.equal(c.sent.map(([, type]) => type), ref.sent.map(([, type]) => type), `${name}: the same messages`);
    c.sent.forEach(([t], i) => {
      const d = t - ref.sent[i][0];
      assert.ok(d >= -SLACK && d <= 10, `${name}: send ${i} at ${t} ms, the reference's at ${ref.sent[i][0]} ms`);
    });
    assert.ok(ticks < refTicks / 50, `${name}: ${ticks} ticks against ${refTicks}`);
  }
});

test('ClientScheduler: ticks only the clients due, each once per pass; a client that stays due is retried later, not in the same pass', () => {
  // fake clients whose deadline is a field
  interface F { sim: { nextDeadline(): number }; scheduledAt: number; at: number; ticks: number }
  const mk = (at: number): F => {
    const f: F = { sim: { nextDeadline: () => f.at }, scheduledAt: Infinity, at, ticks: 0 };
    return f;
  };
  const sched = new ClientScheduler<F>();
  const fs = Array.from({ length: 1000 }, (_, i) => mk(1000 + i * 10)); // 1000 .. 10990
  for (const f of fs) sched.schedule(f, 0);
  assert.is(sched.nextAt(), 1000);
  // at 1095 with 0 slack: the ten due (1000..1090), not the others
  const n = sched.runDue(1095, 0, (f) => { f.ticks++; f.at += 5000; sched.schedule(f, 1095); });
  assert.is(n, 10);
  assert.equal(fs.filter((f) => f.ticks > 0).length, 10);
  // a deadline moved later without a tick: its old entry is dropped on the way, no tick
  fs[20].at = 20_000;
  sched.schedule(fs[20], 1095);
  assert.is(sched.runDue(1205, 0, (f) => { f.ticks++; f.at += 5000; sched.schedule(f, 1205); }), 10, 'ids 10..19 and not 20');
  assert.is(fs[20].ticks, 0);
  // a client whose tick leaves it due (waiting for something): one tick per pass, then retried
  const stuck = mk(2000);
  sched.schedule(stuck, 1205);
  let passes = 0;
  sched.runDue(2000, 0, (f) => { f.ticks++; passes++; sched.schedule(f, 2000); });
  assert.is(stuck.ticks, 1, 'not spun within the pass');
  assert.is(stuck.scheduledAt, 2000 + MIN_RETRY_MS, 'retried MIN_RETRY_MS later');
  assert.ok(passes >= 1);
});

test.run();
