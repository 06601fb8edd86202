// Client driver against a fake Native, Loop and kernel: sockets, resolver, kernel calls, hooks
// and signals as the core asks for them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../../src/client/client.js';
import { ClientDriver, type ClientKernel, KERNEL_RETRY_MS } from '../../src/client/driver.js';
import type { Options } from '../../src/client/options.js';
import type { Endpoint, Native, Resolved } from '../../src/native.js';
import type { LogLevel } from '../../src/runtime/loop.js';
import { native as hostNative } from '../../src/runtime/node/native.js';
import { FakeLoop } from './fake-loop.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
/** The host's errno values: the one table (qjs-native/td_core.c), not a copy. */
const E = hostNative.errno;
const TEXT: Record<number, string> = {
  [E.ENOENT]: 'No such file or directory', [E.EEXIST]: 'File exists', [E.EINVAL]: 'Invalid argument', [E.EPROTONOSUPPORT]: 'Protocol not supported',
};

class Fake {
  /** The shared Loop fake (fake-loop.ts), its clock started at 0; its log and print lines go
   *  to `logs` with a "stderr"/"print" prefix, next to the Logger's and syslog's. */
  loop = new FakeLoop();
  calls: string[] = [];
  logs: string[] = [];
  sent: { fd: number; hex: string }[] = [];
  inbox = new Map<number, Uint8Array[]>();
  /** A resolver answer; `all` defaults to [the answer]. */
  resolveAnswers = new Map<number, (Resolved & { all?: Resolved[] }) | number>();
  children = new Map<number, number | null>();
  nextFd = 10;
  /** Resolver pipes get their own range (100, 101...): sockets are made after the answer. */
  nextResolveFd = 100;
  nextPid = 500;
  family = -E.EPROTONOSUPPORT;
  sessionRc = 0;
  linkUp = true;
  linkMtu = 1446;

  native: Native = {
    udpSocket: (family) => (this.calls.push(`socket ${this.nextFd} IPv${family ?? 4}`), this.nextFd++),
    setReusePort: () => 0,
    bindToDevice: (fd, dev) => (this.calls.push(`bindToDevice ${fd} ${dev}`), 0),
    setPmtuProbe: (fd) => (this.calls.push(`pmtuProbe ${fd}`), 0),
    bind: (fd, ip, port) => (this.calls.push(`bind ${fd} ${ip}:${port}`), 0),
    connect: (fd, ip, port) => (this.calls.push(`connect ${fd} ${ip}:${port}`), 0),
    localPort: () => 40000,
    send: (fd, data) => (this.sent.push({ fd, hex: toHex(data) }), data.length),
    sendTo: () => -E.EINVAL,
    recvFrom: (fd: number, buf: Uint8Array, from: Endpoint) => {
      const d = this.inbox.get(fd)?.shift();
      if (!d) return -E.EAGAIN;
      buf.set(d);
      from.ip = '203.0.113.1';
      from.port = 8942;
      return d.length;
    },
    close: (fd) => (this.calls.push(`close ${fd}`), 0),
    netlinkSocket: () => -E.EPERM,
    netlinkSend: () => -E.EPERM,
    netlinkRecv: () => -E.EPERM,
    spawn: (path, args, capture) => {
      if (path === '/missing') return -E.ENOENT;
      const pid = this.nextPid++;
      this.children.set(pid, null);
      this.calls.push(`spawn ${pid} ${path} ${args.join(' ')} capture=${capture}`);
      return { pid, outFd: -1 };
    },
    read: () => 0,
    waitPid: (pid) => this.children.get(pid) ?? null,
    kill: (pid, sig) => (this.calls.push(`kill ${pid} ${sig}`), 0),
    // a hook's pidfd is 1000 + pid; the test makes it readable with f.readable(1000 + pid)
    pidWatch: (pid) => 1000 + pid,
    setRecvBuffer: () => -E.EPERM,
    raiseFdLimit: () => ({ soft: 1024, hard: 1024 }),
    resolveStart: (host, service) => {
      const fd = this.nextResolveFd++;
      this.calls.push(`resolve ${host} ${service} → ${fd}`);
      return fd;
    },
    resolveFinish: (fd) => {
      const r = this.resolveAnswers.get(fd) ?? -E.EAGAIN;
      return typeof r === 'number' ? r : { ...r, all: r.all ?? [r] };
    },
    syslog: (prio, ident, msg) => this.logs.push(`syslog ${prio} ${ident} ${msg}`),
    strerror: (e) => TEXT[e] ?? `errno ${e}`,
    errno: E,
    signals: { SIGUSR1: 10 },
  };

  constructor() {
    this.loop.t = 0;
    this.loop.log = (level: LogLevel, msg: string) => this.logs.push(`stderr ${level}: ${msg}`);
    this.loop.print = (text: string) => this.logs.push(`print ${text}`);
  }
  get now(): number { return this.loop.t; }
  get timers(): FakeLoop['timers'] { return this.loop.timers; }
  get readers(): FakeLoop['readable'] { return this.loop.readable; }
  get signals(): FakeLoop['signals'] { return this.loop.signals; }
  get exited(): number | null { return this.loop.exited; }

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
  deliver(fd: number, row: string): void {
    this.inbox.set(fd, [...(this.inbox.get(fd) ?? []), hex(row)]);
    this.readable(fd);
  }
  take(): string[] {
    const c = this.calls;
    this.calls = [];
    return c;
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
  f.resolveAnswers.set(100, { ip: '203.0.113.1', port: 8942 });
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
  f.resolveAnswers.set(100, { ip: '203.0.113.1', port: 8942 });
  f.readable(100);
  // the socket is made once the family is known
  assert.equal(f.take(), ['socket 10 IPv4', 'bindToDevice 10 eth1', 'bind 10 0.0.0.0:0', 'pmtuProbe 10', 'connect 10 203.0.113.1:8942']);
  assert.not.ok(f.readers.has(100));
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01']);
  f.deliver(10, '80 73 a7 01 0a 02 00 ff 00 00 00 00');
  f.deliver(10, '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b');
  f.deliver(10, '80 73 a7 01 04 08 00 00 00 64 00 00 00 01');
  assert.equal(f.take(), [
    'createTunnel 1 100 fd=10', 'createSession 1/1 peer 100 l2tp0', 'spawn 500 /etc/td-hook session.up l2tp0 capture=false',
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
    'setLinkMtu l2tp0 1400', 'setSessionMtu 7/7 1400', 'spawn 501 /etc/td-hook session.mtu-changed l2tp0 1446 1400 capture=false',
  ]);
});

test('hooks are reaped (exit status logged) and killed after 30 s; a missing script is logged', () => {
  const { f, d } = setup({ hook: '/etc/td-hook' });
  bringUp(f, d);
  f.children.set(500, 3);
  f.readable(1500); // its pidfd: the exit is noticed at once, not on a tick
  assert.ok(f.logs.includes('warning: hook /etc/td-hook session.up l2tp0 exited with status 3'));
  assert.not.ok(f.readers.has(1500), 'pidfd unwatched after the reap');
  assert.ok(f.calls.includes('close 1500'), 'pidfd closed');
  f.deliver(10, '80 73 a7 01 09 02 05 78 00 00 00 00');
  f.take();
  for (let t = 0; t < 31_000; t += 1000) {
    f.deliver(10, '80 73 a7 01 05 02 00 00 00 00 00 00');
    f.advance(1000);
  }
  assert.ok(f.take().includes('kill -501 9'));
  f.children.set(501, 137);
  f.readable(1501);
  assert.is(f.logs.filter((l) => l.includes('exited with status 137')).length, 0, 'killed hook: no second report');
  const m = setup({ hook: '/missing' });
  bringUp(m.f, m.d);
  assert.ok(m.f.logs.includes('error: hook /missing session.up l2tp0 could not be started: No such file or directory'));
});

test('a running hook costs one timer (its 30 s kill) and a watched pidfd; none once it exited', () => {
  const { f, d } = setup({ hook: '/etc/td-hook' });
  bringUp(f, d);
  const hookTimers = (): number => f.timers.filter((t) => t.at === f.now + 30_000).length;
  assert.ok(f.calls.some((c) => c.startsWith('spawn 500 ')));
  assert.is(hookTimers(), 1, 'the kill timer of session.up');
  assert.ok(f.readers.has(1500), 'its pidfd is watched');
  f.children.set(500, 0);
  f.readable(1500);
  assert.is(hookTimers(), 0, 'kill timer cancelled at the exit');
  assert.not.ok(f.readers.has(1500));
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
    'spawn 501 /etc/td-hook session.down l2tp0 capture=false', 'setLinkUp l2tp0 false', 'deleteSession 7/7', 'deleteTunnel 7', 'close 10',
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
  assert.ok(f.logs.includes(`warning: could not remove kernel tunnel 1: errno ${E.EPERM}`));
  const q = setup();
  q.f.kernel.deleteTunnel = () => -E.ENODEV;
  q.d.start();
  assert.not.ok(q.f.logs.some((l) => l.includes('remove')));
});

test('resolution failure is retried (asked again); EINVAL on send while up ends the tunnel', () => {
  const { f, d } = setup();
  d.start();
  f.resolveAnswers.set(100, -E.ENOENT);
  f.readable(100);
  assert.ok(f.logs.some((l) => l.includes('name broker.example does not resolve; retrying every 3 s')));
  f.take();
  f.advance(3000);
  assert.equal(f.take(), ['resolve broker.example 8942 → 101'], 'asked again; no socket before an answer');
  const u = setup();
  bringUp(u.f, u.d);
  u.f.native.send = () => -E.EINVAL;
  u.f.advance(5000); // keepalive send fails
  assert.ok(u.f.logs.some((l) => l.includes('sending failed (Invalid argument), closing tunnel 1')));
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
  // 12 keepalives, plus the PMTU rounds at 30 s and 60 s (start, 4 resends, evaluation each;
  // 4 of them fall on a keepalive): 20. The 500 ms tick made 120.
  assert.ok(fired >= 12 && fired <= 24, `${fired} timer wake-ups in a minute`);
  assert.ok(f.sent.filter((s) => s.hex.startsWith('80 73 a7 01 05 04')).length >= 12);
});


test('SIGHUP: the tunnel is closed as on SIGTERM, then a new round starts at once (not a failure)', () => {
  const { f, d } = setup({ tunnelId: 7 });
  bringUp(f, d);
  f.take();
  f.sent = [];
  f.signals.get(1)!();
  assert.equal(f.sent.map((s) => s.hex), ['80 73 a7 01 03 01 11 00 00 00 00 00']);
  const calls = f.take();
  assert.equal(calls.slice(0, 4), ['spawn 501 /etc/td-hook session.down l2tp0 capture=false', 'setLinkUp l2tp0 false', 'deleteSession 7/7', 'deleteTunnel 7']);
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
  f.resolveAnswers.set(100, {
    ip: '2001:db8::1', port: 8942, family: 6,
    all: [{ ip: '2001:db8::1', port: 8942, family: 6 }, { ip: '2001:db8::2', port: 8942, family: 6 }, { ip: '203.0.113.1', port: 8942, family: 4 }],
  });
  f.readable(100);
  assert.equal(f.take(), ['socket 10 IPv6', 'bind 10 :::0', 'pmtuProbe 10', 'connect 10 2001:db8::1:8942']);
  assert.equal(f.sent.map((s) => s.fd), [10]);
  f.advance(249);
  assert.equal(f.take(), []);
  f.advance(1);
  assert.equal(f.take(), ['socket 11 IPv4', 'bind 11 0.0.0.0:0', 'pmtuProbe 11', 'connect 11 203.0.113.1:8942']);
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
  assert.ok(calls.includes('bind 10 2001:db8::7:0') && calls.includes('connect 10 2001:db8::1:8942'), calls.join(', '));
  assert.not.ok(calls.some((c) => c.startsWith('resolve')));
});

test('an IPv6 socket that cannot be made (no IPv6 on the host): IPv4 at once, no error logged', () => {
  const { f, d } = setup({ bindDevice: null });
  f.native.udpSocket = (family) => (family === 6 ? -E.EAFNOSUPPORT : (f.calls.push(`socket ${f.nextFd} IPv4`), f.nextFd++));
  d.start();
  f.take();
  f.resolveAnswers.set(100, { ip: '2001:db8::1', port: 8942, family: 6, all: [{ ip: '2001:db8::1', port: 8942, family: 6 }, { ip: '203.0.113.1', port: 8942, family: 4 }] });
  f.readable(100);
  assert.equal(f.take(), ['socket 10 IPv4', 'bind 10 0.0.0.0:0', 'pmtuProbe 10', 'connect 10 203.0.113.1:8942']);
  assert.equal(f.sent.map((s) => s.fd), [10]);
  assert.not.ok(f.logs.some((l) => l.startsWith('warning') || l.startsWith('error')), f.logs.join('\n'));
});

test.run();
