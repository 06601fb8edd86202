// Client driver against the shared Native and Loop fakes and a fake kernel: sockets, resolver,
// kernel calls, hooks and signals as the core asks for them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../../src/client/client.js';
import { ClientDriver, type ClientKernel, KERNEL_RETRY_MS } from '../../src/client/driver.js';
import type { Options } from '../../src/client/options.js';
import { timers } from '../../src/protocol/constants.js';
import type { LogLevel } from '../../src/runtime/loop.js';
import { FakeLoop } from './fake-loop.js';
import { ERRNO, FakeNative } from './fake-native.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));
const E = ERRNO;

/** The shared fakes (fake-loop.ts, fake-native.ts; the broker suites use the same), the clock
 *  started at 0, and a kernel that records into the same call list as Native, so that a test sees
 *  socket and kernel calls in their order. Hooks (/etc/td-hook) run until finish() or a kill. */
class Fake {
  loop = new FakeLoop();
  native = new FakeNative(this.loop);
  logs: string[] = [];
  family = -E.EPROTONOSUPPORT;
  sessionRc = 0;
  linkUp = true;
  linkMtu = 1446;

  constructor() {
    this.loop.t = 0;
    this.loop.log = (level: LogLevel, msg: string) => this.logs.push(`stderr ${level}: ${msg}`);
    this.loop.print = (text: string) => this.logs.push(`print ${text}`);
    this.native.behaviour.set('/etc/td-hook', { ms: Infinity, code: 0 });
  }
  get calls(): string[] { return this.native.calls; }
  get sent(): FakeNative['sent'] { return this.native.sent; }
  set sent(v: FakeNative['sent']) { this.native.sent = v; }
  get now(): number { return this.loop.t; }
  get timers(): FakeLoop['timers'] { return this.loop.timers; }
  get readers(): FakeLoop['readable'] { return this.loop.readable; }
  get signals(): FakeLoop['signals'] { return this.loop.signals; }
  get exited(): number | null { return this.loop.exited; }
  /** The pidfd of hook process pid. */
  pidFd(pid: number): number { return this.native.children.get(pid)!.pidFd!; }

  kernel: ClientKernel = {
    resolveL2tpFamily: () => (this.calls.push('family'), this.family),
    createTunnel: (t) => (this.calls.push(`createTunnel ${t.tunnelId} ${t.peerTunnelId} fd=${t.fd}`), 0),
    deleteTunnel: (id) => (this.calls.push(`deleteTunnel ${id}`), -E.ENOENT),
    createSession: (s) => (this.calls.push(`createSession ${s.tunnelId}/${s.sessionId} peer ${s.peerSessionId} ${s.ifname}`), this.sessionRc),
    deleteSession: (t, s) => (this.calls.push(`deleteSession ${t}/${s}`), -E.ENOENT),
    setSessionMtu: (t, s, mtu) => (this.calls.push(`setSessionMtu ${t}/${s} ${mtu}`), 0),
    setLinkMtu: (name, mtu) => (this.calls.push(`setLinkMtu ${name} ${mtu}`), 0),
    setLinkUp: (name, up) => (this.calls.push(`setLinkUp ${name} ${up}`), 0),
    getLink: (name) => ({ ifindex: 7, ifname: name, flags: this.linkUp ? 1 : 0, up: this.linkUp, mtu: this.linkMtu }),
  };

  /** Advances the clock, firing due timers in order. */
  advance(ms: number): void {
    this.loop.advance(ms);
  }
  readable(fd: number): void {
    const cb = this.readers.get(fd);
    if (!cb) throw new Error(`fd ${fd} not watched`);
    cb();
  }
  /** One datagram to fd and its readiness callback (the driver reads one per callback). */
  deliver(fd: number, row: string): void {
    this.native.queue(fd, hex(row));
    this.readable(fd);
  }
  take(): string[] {
    return this.native.calls.splice(0);
  }
}

function options(o: Partial<Options> = {}): Options {
  return {
    uuid: 'foobar', bindIp: null, brokers: [{ host: 'broker.example', port: '8942' }], ifname: 'l2tp0',
    bindDevice: 'eth1', hook: '/etc/td-hook', mtuHook: true, tunnelId: 1, limitKbps: 0, selection: 'first', foreground: true, ...o,
  };
}

function setup(o: Partial<Options> = {}): { f: Fake; d: ClientDriver } {
  const f = new Fake();
  f.family = 0x1c;
  const opts = options(o);
  const d = new ClientDriver(new Client(opts, () => 0.5), f.native, f.loop, f.kernel, opts,
    (level, msg) => f.logs.push(`${level}: ${msg}`));
  return { f, d };
}

/** Runs the driver up to an established tunnel; returns the socket fd. */
function bringUp(f: Fake, d: ClientDriver): number {
  d.start();
  f.native.resolveAnswers.set(100, { ip: '203.0.113.1', port: 8942 });
  f.readable(100);
  f.deliver(10, '80 73 a7 01 0a 02 00 ff 00 00 00 00');
  f.deliver(10, '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b');
  f.deliver(10, '80 73 a7 01 04 08 00 00 00 64 00 00 00 01');
  return 10;
}

test('missing l2tp netlink family: one log line, retry every 5 s, then start', () => {
  const f = new Fake();
  const opts = options();
  const d = new ClientDriver(new Client(opts), f.native, f.loop, f.kernel, opts, (l, m) => f.logs.push(`${l}: ${m}`));
  d.start();
  f.advance(KERNEL_RETRY_MS * 3);
  assert.is(f.calls.filter((c) => c === 'family').length, 4);
  assert.equal(f.logs, ['error: kernel L2TP netlink interface unavailable (Protocol not supported; are l2tp_core, l2tp_netlink and l2tp_eth loaded?), retrying every 5 s']);
  assert.not.ok(f.calls.some((c) => c.startsWith('resolve')));
  f.family = 0x1c;
  f.advance(KERNEL_RETRY_MS);
  assert.ok(f.logs.includes('info: kernel L2TP netlink interface available now, starting'));
  assert.ok(f.calls.some((c) => c.startsWith('resolve broker.example 8942')));
});

test('socket setup, resolution, handshake and kernel setup go through Native and the kernel', () => {
  const { f, d } = setup();
  d.start();
  assert.equal(f.take(), [
    'family', 'setLinkUp l2tp0 false', 'deleteSession 1/1', 'deleteTunnel 1',
    'resolve broker.example 8942 → 100',
  ]);
  f.readable(100); // not answered yet: -EAGAIN, keep waiting
  assert.equal(f.sent, []);
  f.native.resolveAnswers.set(100, { ip: '203.0.113.1', port: 8942 });
  f.readable(100);
  // the socket is made once the family is known
  assert.equal(f.take(), ['socket=10', 'bindtodevice 10 eth1', 'bind 10 0.0.0.0:0', 'pmtuprobe 10', 'connect 10 203.0.113.1:8942']);
  assert.not.ok(f.readers.has(100));
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01']);
  f.deliver(10, '80 73 a7 01 0a 02 00 ff 00 00 00 00');
  f.deliver(10, '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b');
  f.deliver(10, '80 73 a7 01 04 08 00 00 00 64 00 00 00 01');
  assert.equal(f.take(), [
    'createTunnel 1 100 fd=10', 'createSession 1/1 peer 100 l2tp0', 'spawn /etc/td-hook session.up l2tp0',
  ]);
  assert.ok(f.logs.some((l) => l === 'info: broker broker.example:8942: tunnel 1 up on l2tp0 over IPv4 (session 1, broker session 100)'));
});

test('session creation failure deletes the tunnel and logs the errno text', () => {
  const { f, d } = setup({ tunnelId: 7 });
  f.sessionRc = -E.EEXIST;
  bringUp(f, d);
  const calls = f.take();
  const i = calls.indexOf('createSession 7/7 peer 100 l2tp0');
  assert.ok(i > 0);
  assert.is(calls[i + 1], 'deleteTunnel 7');
  assert.ok(f.logs.includes('error: broker broker.example:8942: creating kernel session 7 (interface l2tp0) failed: File exists'));
  assert.ok(f.logs.some((l) => l.includes('new attempt (#1) in 1.0 s')));
  assert.ok(calls.includes('close 10'));
});

test('MTU change: link MTU + SESSION_MODIFY with the negotiated session id, mtu-changed hook with old/new', () => {
  const { f, d } = setup({ tunnelId: 7 });
  bringUp(f, d);
  f.take();
  f.deliver(10, '80 73 a7 01 09 02 05 78 00 00 00 00'); // broker NTFY 1400
  assert.equal(f.take(), [
    'setLinkMtu l2tp0 1400', 'setSessionMtu 7/7 1400', 'spawn /etc/td-hook session.mtu-changed l2tp0 1446 1400',
  ]);
});

test('hooks are reaped (exit status logged) and killed after 30 s; a missing script is logged', () => {
  const { f, d } = setup({ hook: '/etc/td-hook' });
  bringUp(f, d);
  const pidFd = f.pidFd(500);
  f.native.finish(500, 3);
  f.advance(0); // its pidfd turns readable: the exit is noticed at once, not on a tick
  assert.ok(f.logs.includes('warning: hook /etc/td-hook session.up l2tp0 exited with status 3'));
  assert.not.ok(f.readers.has(pidFd), 'pidfd unwatched after the reap');
  assert.not.ok(f.native.pidFds.has(pidFd), 'pidfd closed');
  f.deliver(10, '80 73 a7 01 09 02 05 78 00 00 00 00');
  f.take();
  for (let t = 0; t < 31_000; t += 1000) {
    f.deliver(10, '80 73 a7 01 05 02 00 00 00 00 00 00');
    f.advance(1000);
  }
  assert.ok(f.take().includes('kill -501 9'));
  f.advance(0); // the killed hook's pidfd turns readable: reaped with status 137
  assert.not.ok(f.native.pidFds.has(f.pidFd(501)), 'killed hook reaped');
  assert.is(f.logs.filter((l) => l.includes('exited with status 137')).length, 0, 'killed hook: no second report');
  const m = setup({ hook: '/missing' });
  bringUp(m.f, m.d);
  assert.ok(m.f.logs.includes('error: hook /missing session.up l2tp0 could not be started: No such file or directory'));
});

test('a running hook costs one timer (its 30 s kill) and a watched pidfd; none once it exited', () => {
  const { f, d } = setup({ hook: '/etc/td-hook' });
  bringUp(f, d);
  const hookTimers = (): number => f.timers.filter((t) => t.at === f.now + 30_000).length;
  assert.ok(f.calls.includes('spawn /etc/td-hook session.up l2tp0'));
  assert.is(hookTimers(), 1, 'the kill timer of session.up');
  const pidFd = f.pidFd(500);
  assert.ok(f.readers.has(pidFd), 'its pidfd is watched');
  f.native.finish(500, 0);
  f.advance(0);
  assert.is(hookTimers(), 0, 'kill timer cancelled at the exit');
  assert.not.ok(f.readers.has(pidFd));
  assert.not.ok(f.logs.some((l) => l.includes('exited with status')), 'exit 0 is not logged');
});

test('SIGTERM while up: ERROR 0x11, session.down hook, link down, session+tunnel deleted, exit 0', () => {
  const { f, d } = setup({ tunnelId: 7 });
  bringUp(f, d);
  f.take();
  f.sent = [];
  assert.throws(() => f.signals.get(15)!(), /exit/);
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 03 01 11 00 00 00 00 00']);
  assert.equal(f.take(), [
    'spawn /etc/td-hook session.down l2tp0', 'setLinkUp l2tp0 false', 'deleteSession 7/7', 'deleteTunnel 7', 'close 10',
  ]);
  assert.is(f.exited, 0);
});

test('SIGUSR1 (the platform number from Native: 10 on x86, 16 on MIPS) logs the counters, malformed datagrams included', () => {
  const { f, d } = setup();
  bringUp(f, d);
  f.deliver(10, '80 73 a7 01 09 05 05'); // length byte beyond the datagram
  f.deliver(10, '00 01 02');
  f.logs = [];
  f.signals.get(10)!();
  assert.equal(f.logs.filter((l) => l.startsWith('info: counters')),
    ['info: counters: phase=up failures=0 broker.example:8942 state=up drop-malformed=2']);
  const m = new Fake();
  m.native.signals = { SIGUSR1: 16 };
  new ClientDriver(new Client(options()), m.native, m.loop, m.kernel, options(), () => undefined).start();
  assert.ok(m.signals.has(16) && !m.signals.has(10));
});

test('teardown: unexpected kernel errors are logged, "no such tunnel" is not', () => {
  const { f, d } = setup();
  f.kernel.deleteTunnel = () => -E.EPERM;
  d.start();
  assert.ok(f.logs.includes(`warning: could not remove kernel tunnel 1: error ${E.EPERM}`));
  const q = setup();
  q.f.kernel.deleteTunnel = () => -E.ENODEV;
  q.d.start();
  assert.not.ok(q.f.logs.some((l) => l.includes('remove')));
});

test('resolution failure is retried (asked again); EINVAL on send while up ends the tunnel', () => {
  const { f, d } = setup();
  d.start();
  f.native.resolveAnswers.set(100, -E.ENOENT);
  f.readable(100);
  assert.ok(f.logs.some((l) => l.includes('name broker.example does not resolve; retrying every 3 s')));
  f.take();
  f.advance(3000);
  assert.equal(f.take(), ['resolve broker.example 8942 → 101'], 'asked again; no socket before an answer');
  const u = setup();
  bringUp(u.f, u.d);
  u.f.native.send = () => -E.EINVAL;
  u.f.advance(timers.clientKeepalive + timers.clientKeepaliveSlack); // keepalive (by its timer) send fails
  assert.ok(u.f.logs.some((l) => l.includes(`sending failed (error ${E.EINVAL}), closing tunnel 1`)));
  assert.ok(u.f.calls.includes('deleteTunnel 1'));
});

test('an IPv4 literal is connected to directly: no resolver, USAGE at once', () => {
  const { f, d } = setup({ brokers: [{ host: '203.0.113.1', port: '8942' }, { host: '198.51.100.010', port: '8942' }, { host: '203.0.113.2', port: 'domain' }] });
  d.start();
  const calls = f.take();
  assert.ok(calls.includes('connect 10 203.0.113.1:8942'), calls.join(', '));
  assert.not.ok(calls.some((c) => c.startsWith('resolve 203.0.113.1 ')));
  // leading zeros (octal to getaddrinfo) and service names still go through the resolver
  assert.ok(calls.some((c) => c.startsWith('resolve 198.51.100.010 8942')));
  assert.ok(calls.some((c) => c.startsWith('resolve 203.0.113.2 domain')));
  assert.equal(f.sent.filter((s) => s.fd === 10).map((s) => s.hex), ['80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01']);
  // nothing can time out in a resolver that was never asked
  f.advance(3500);
  assert.not.ok(f.logs.some((l) => l.includes('203.0.113.1:8942: name resolution')), f.logs.join('\n'));
});

test('no polling: one core timer at the next deadline; an idle tunnel wakes for its keepalives only', () => {
  const { f, d } = setup({ hook: null });
  bringUp(f, d);
  let fired = 0;
  const wrap = f.loop.setTimer.bind(f.loop);
  f.loop.setTimer = (ms, cb) => wrap(ms, () => (fired++, cb()));
  // tunnel up at 0; the first PMTU round is due at 15 s: run past it, then count one minute
  f.advance(15_000);
  f.deliver(10, '80 73 a7 01 07 02 05 c0 00 00 00 00'); // ACK 1500
  f.advance(5_000);
  fired = 0;
  for (let t = 0; t < 60_000; t += 5000) {
    f.advance(2500);
    f.deliver(10, '80 73 a7 01 05 02 00 00 00 00 00 00'); // broker keepalive
    f.advance(2500);
    assert.ok(f.timers.length <= 1, `${f.timers.length} timers pending`);
  }
  // the PMTU rounds at 30 s and 60 s (start, 4 resends, evaluation each): 12; the 12 keepalives
  // go out with the broker's (before: their own 12 wake-ups, 4 of them on a PMTU timer: 20; the
  // 500 ms tick made 120)
  assert.is(fired, 12, `${fired} timer wake-ups in a minute`);
  assert.ok(f.sent.filter((s) => s.hex.startsWith('80 73 a7 01 05 04')).length >= 12);
});

test('one datagram per readiness callback (poll reports the socket again while more is queued)', () => {
  const { f, d } = setup({ hook: null });
  bringUp(f, d);
  f.sent = [];
  // two PMTU probes from the broker arrive together: each callback reads one and answers it
  f.native.queue(10, hex('80 73 a7 01 06 00 00 00 00 00 00 00 00 00 00 00'));
  f.native.queue(10, hex('80 73 a7 01 06 00 00 00 00 00 00 00 00 00'));
  f.readable(10);
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 07 02 00 10 00 00 00 00']);
  f.readable(10);
  assert.equal(f.sent.map((s) => s.hex).slice(1), ['80 73 a7 01 07 02 00 0e 00 00 00 00'], 'the shorter datagram seen as itself');
  f.readable(10); // nothing left (EAGAIN): nothing happens
  assert.is(f.sent.length, 2);
});

test('SIGHUP: the tunnel is closed as on SIGTERM, then a new round starts at once (not a failure)', () => {
  const { f, d } = setup({ tunnelId: 7 });
  bringUp(f, d);
  f.take();
  f.sent = [];
  f.signals.get(1)!();
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 03 01 11 00 00 00 00 00']);
  const calls = f.take();
  assert.equal(calls.slice(0, 4), ['spawn /etc/td-hook session.down l2tp0', 'setLinkUp l2tp0 false', 'deleteSession 7/7', 'deleteTunnel 7']);
  assert.ok(calls.includes('close 10') && calls.some((c) => c.startsWith('resolve broker.example 8942')), calls.join(', '));
  assert.is(f.exited, null);
  assert.ok(f.logs.some((l) => l.includes('SIGHUP: reconnecting, closing the tunnel with broker broker.example:8942')));
  assert.not.ok(f.logs.some((l) => l.includes('new attempt')), 'no backoff');
  // before the kernel family is there: nothing to do, still running
  const k = new Fake();
  new ClientDriver(new Client(options()), k.native, k.loop, k.kernel, options(), (l, m) => k.logs.push(`${l}: ${m}`)).start();
  k.signals.get(1)!();
  assert.ok(k.logs.includes('info: SIGHUP: not connected yet, nothing to reconnect'));
  assert.is(k.exited, null);
});

test('A and AAAA: an IPv6 socket (bound to ::) first, an IPv4 one 250 ms later; the one that answers carries the tunnel', () => {
  const { f, d } = setup({ bindDevice: null });
  d.start();
  f.take();
  f.native.resolveAnswers.set(100, {
    ip: '2001:db8::1', port: 8942, family: 6,
    all: [{ ip: '2001:db8::1', port: 8942, family: 6 }, { ip: '2001:db8::2', port: 8942, family: 6 }, { ip: '203.0.113.1', port: 8942, family: 4 }],
  });
  f.readable(100);
  assert.equal(f.take(), ['socket6=10', 'bind 10 [::]:0', 'pmtuprobe 10', 'connect 10 [2001:db8::1]:8942']);
  assert.equal(f.sent.map((s) => s.fd), [10]);
  f.advance(249);
  assert.equal(f.take(), []);
  f.advance(1);
  assert.equal(f.take(), ['socket=11', 'bind 11 0.0.0.0:0', 'pmtuprobe 11', 'connect 11 203.0.113.1:8942']);
  f.deliver(11, '80 73 a7 01 0a 02 00 ff 00 00 00 00');
  assert.ok(f.take().includes('close 10'), 'the IPv6 socket is closed once IPv4 answered');
  assert.not.ok(f.readers.has(10));
  f.deliver(11, '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b');
  f.deliver(11, '80 73 a7 01 04 08 00 00 00 64 00 00 00 01');
  assert.ok(f.take().includes('createTunnel 1 100 fd=11'));
  // an IPv6 literal needs no resolver; -l gives the bind address
  const l = setup({ bindDevice: null, bindIp: '2001:db8::7', brokers: [{ host: '2001:db8::1', port: '8942' }] });
  l.d.start();
  const calls = l.f.take();
  assert.ok(calls.includes('bind 10 [2001:db8::7]:0') && calls.includes('connect 10 [2001:db8::1]:8942'), calls.join(', '));
  assert.not.ok(calls.some((c) => c.startsWith('resolve')));
});

test('an IPv6 socket that cannot be made (no IPv6 on the host): IPv4 at once, no error logged', () => {
  const { f, d } = setup({ bindDevice: null });
  f.native.noIpv6 = true;
  d.start();
  f.take();
  f.native.resolveAnswers.set(100, { ip: '2001:db8::1', port: 8942, family: 6, all: [{ ip: '2001:db8::1', port: 8942, family: 6 }, { ip: '203.0.113.1', port: 8942, family: 4 }] });
  f.readable(100);
  assert.equal(f.take(), ['socket=10', 'bind 10 0.0.0.0:0', 'pmtuprobe 10', 'connect 10 203.0.113.1:8942']);
  assert.equal(f.sent.map((s) => s.fd), [10]);
  assert.not.ok(f.logs.some((l) => l.startsWith('warning') || l.startsWith('error')), f.logs.join('\n'));
});

test.run();
