// The broker at its limits, with the driver on fakes (broker-fakes.ts): the fd budget (refusals
// before descriptors run out, EMFILE from socket()), kernel calls failing at tunnel 9,999
// (ENOBUFS, EEXIST, a reply that comes too late), a client flooding PREPAREs and hooks that hang.
// After each: nothing half-created (kernel tunnels and sessions = the broker's tunnels, no
// socket left open) and every refused client told with ERROR.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Endpoint } from '../../src/native.js';
import { FD_FIXED_RESERVE, FD_PER_JOB } from '../../src/broker/fd-budget.js';
import { DEFAULT_MAX_RUNNING } from '../../src/broker/job-runner.js';
import { BrokerMetrics } from '../../src/broker/metrics.js';
import * as m from '../../src/protocol/messages.js';
import { CFG, ERRNO, FakeKernel, handshake, hexOf, rig } from './broker-fakes.js';

const ERROR_HEX = hexOf(m.encodeError());
const client = (i: number): Endpoint => ({ ip: `198.51.100.${10 + (i % 200)}`, port: 20000 + i });
const LISTENER_FD = 10;

/** A kernel that keeps state like the real one: tunnels and sessions by id, EEXIST on a second
 *  create; `failTunnelAt` / `failSessionAt`: the Nth create call returns that errno (EAGAIN:
 *  the kernel did it but the reply came too late). */
class StatefulKernel extends FakeKernel {
  readonly kt = new Set<number>();
  readonly ks = new Set<string>();
  private tunnelCreates = 0;
  private sessionCreates = 0;
  failTunnelAt = new Map<number, number>();
  failSessionAt = new Map<number, number>();
  override createTunnel(t: { tunnelId: number; peerTunnelId: number; fd: number }): number {
    const fail = this.failTunnelAt.get(++this.tunnelCreates);
    if (fail !== undefined && fail !== ERRNO.EAGAIN) return -fail;
    if (this.kt.has(t.tunnelId)) return -ERRNO.EEXIST;
    this.kt.add(t.tunnelId);
    return fail === ERRNO.EAGAIN ? -fail : 0;
  }
  override deleteTunnel(id: number): number {
    if (!this.kt.delete(id)) return -ERRNO.ENOENT;
    for (const s of [...this.ks]) if (s.startsWith(`${id}/`)) this.ks.delete(s);
    return 0;
  }
  override createSession(s: { tunnelId: number; sessionId: number }): number {
    const fail = this.failSessionAt.get(++this.sessionCreates);
    if (fail !== undefined && fail !== ERRNO.EAGAIN) return -fail;
    if (!this.kt.has(s.tunnelId)) return -ERRNO.ENOENT;
    this.ks.add(`${s.tunnelId}/${s.sessionId}`);
    return fail === ERRNO.EAGAIN ? -fail : 0;
  }
  override deleteSession(t: number, s: number): number {
    return this.ks.delete(`${t}/${s}`) ? 0 : -ERRNO.ENOENT;
  }
}

/** rig() with the stateful kernel, the listener open, open tunnel sockets tracked and socket()
 *  failing with EMFILE once `fdLimit` tunnel sockets are open. */
function scaleRig(over: Partial<typeof CFG> = {}) {
  const cfg = { ...CFG, ports: [8942], maxTunnels: 16, hooks: { ...CFG.hooks, sessionUp: '', sessionPreDown: '', sessionDown: '' }, ...over };
  const r = rig(cfg, { pidfd: true });
  const kernel = new StatefulKernel();
  (r.driver as unknown as { kernel: FakeKernel }).kernel = kernel;
  assert.is(r.driver.openListeners(), 1);
  const open = new Set<number>();
  const s = { fdLimit: Infinity, fdErrno: ERRNO.EMFILE };
  const udpSocket = r.native.udpSocket.bind(r.native);
  const close = r.native.close.bind(r.native);
  r.native.udpSocket = () => {
    if (open.size >= s.fdLimit) return -s.fdErrno;
    const fd = udpSocket();
    open.add(fd);
    return fd;
  };
  r.native.close = (fd: number) => {
    open.delete(fd);
    return close(fd);
  };
  /** Kernel and sockets agree with the broker: one tunnel, one session, one socket per tunnel. */
  const consistent = (n: number): void => {
    assert.is(r.core.tunnelCount, n, 'broker tunnels');
    assert.is(kernel.kt.size, n, 'kernel tunnels');
    assert.is(kernel.ks.size, n, 'kernel sessions');
    assert.is(r.driver.tunnelSocketCount, n, 'tunnel sockets known to the driver');
    assert.is(open.size, n, 'tunnel sockets open');
  };
  /** The last datagram sent to `to` (hex). */
  const lastTo = (to: Endpoint): string | undefined => r.native.sent.filter((x) => x.to === `${to.ip}:${to.port}`).at(-1)?.hex;
  const tunnelFd = (i: number): number => r.native.sent.find((x) => x.to === undefined && x.hex.startsWith('80 73 a7 01 04 08') &&
    r.native.calls.includes(`connect ${x.fd} ${client(i).ip}:${client(i).port}`))!.fd;
  return { ...r, kernel, open, s, consistent, lastTo, tunnelFd, cfg };
}

const reserve = (jobs = DEFAULT_MAX_RUNNING, ports = 1): number => FD_FIXED_RESERVE + ports + FD_PER_JOB * jobs;
const warnings = (logs: string[], re: RegExp): string[] => logs.filter((l) => l.startsWith('warning: ') && re.test(l));

test('fd budget: past it, PREPAREs get ERROR and USAGE 0xFFFF; one warning per episode with the numbers; counted; accepted again under it', () => {
  const r = scaleRig();
  r.core.setFdLimit(reserve() + 3);
  for (let i = 0; i < 3; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  r.consistent(3);
  r.deliver(LISTENER_FD, m.encodeUsageRequest(1), client(9));
  assert.is(r.lastTo(client(9)), '80 73 a7 01 0a 02 ff ff 00 00 00 00', 'usage 0xFFFF');
  for (let i = 3; i < 8; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  for (let i = 3; i < 8; i++) assert.is(r.lastTo(client(i)), ERROR_HEX, `client ${i} told`);
  r.consistent(3);
  assert.is(r.kernel.kt.size, 3);
  assert.is(r.core.counters.get('refused-fd-budget'), 5);
  const w = warnings(r.loop.logs, /fd budget|file descriptor/);
  assert.is(w.length, 1, w.join('\n'));
  assert.match(w[0], new RegExp(`refused a tunnel for uuid u3 \\(198\\.51\\.100\\.13:20003\\): 3 tunnels open, file descriptor limit ` +
    `${reserve() + 3} minus a reserve of ${reserve()} leaves room for 3; refusing new tunnels \\(usage 0xFFFF, ERROR to each PREPARE`));
  assert.ok(r.loop.logs.some((l) => l.startsWith('debug: refused a tunnel for uuid u4 ') && l.includes('3 tunnels open')));
  assert.match(r.core.statusSummary(r.loop.t)[0], /fd budget full \(usage 0xFFFF\)/);
  const metrics = new BrokerMetrics(r.core, { processMetrics: false });
  return metrics.text().then((text) => {
    assert.match(text, /tunneldigger_admission_refusals_total\{reason="fd_budget"\} 5/);
    assert.match(text, /\ntunneldigger_fd_budget_tunnels 3\n/);
    // a client closes: under the budget again; the next PREPARE is admitted with one info line
    r.deliver(r.tunnelFd(0), m.encodeError(0x11), client(0));
    r.consistent(2);
    r.deliver(LISTENER_FD, m.encodeUsageRequest(1), client(9));
    assert.not.equal(r.lastTo(client(9)), '80 73 a7 01 0a 02 ff ff 00 00 00 00');
    handshake(r, client(20), 'u20', LISTENER_FD);
    r.consistent(3);
    assert.ok(r.loop.logs.includes('info: 2 tunnels open, back under the file descriptor budget (room for 3): ' +
      'accepting new tunnels again; 5 refused meanwhile'), r.loop.logs.slice(-8).join('\n'));
    // full again: a new episode, a new warning
    handshake(r, client(21), 'u21', LISTENER_FD);
    assert.is(r.lastTo(client(21)), ERROR_HEX);
    assert.is(warnings(r.loop.logs, /file descriptor limit/).length, 2);
  });
});

test('EMFILE from socket() although the budget had room: logged with errno, client refused, nothing half-made, refusals until one closes', () => {
  const r = scaleRig();
  r.core.setFdLimit(reserve() + 10);
  r.s.fdLimit = 2; // descriptors held elsewhere than the reserve assumes
  for (let i = 0; i < 3; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  r.consistent(2);
  assert.is(r.lastTo(client(2)), ERROR_HEX);
  const emfile = r.native.strerror(ERRNO.EMFILE);
  assert.ok(r.loop.logs.includes(`error: tunnel 102 (uuid u2, 198.51.100.12:20002): tunnel socket setup failed: socket: ${emfile}; ` +
    'refusing the client'), r.loop.logs.join('\n'));
  assert.is(warnings(r.loop.logs, /refusing new tunnels until one closes \(usage 0xFFFF\)/).length, 1);
  assert.is(r.core.counters.get('setup-emfile'), 1);
  // the next PREPARE is refused without trying socket() again; usage says full
  const sockets = r.native.calls.filter((c) => c.startsWith('socket=')).length;
  handshake(r, client(3), 'u3', LISTENER_FD);
  assert.is(r.lastTo(client(3)), ERROR_HEX);
  assert.is(r.native.calls.filter((c) => c.startsWith('socket=')).length, sockets);
  assert.is(r.core.counters.get('refused-fd-budget'), 1);
  assert.is(warnings(r.loop.logs, /refus/).length, 1, 'still one warning');
  r.deliver(LISTENER_FD, m.encodeUsageRequest(1), client(9));
  assert.is(r.lastTo(client(9)), '80 73 a7 01 0a 02 ff ff 00 00 00 00');
  // one closes: tried again
  r.deliver(r.tunnelFd(0), m.encodeError(0x11), client(0));
  r.s.fdLimit = Infinity;
  handshake(r, client(4), 'u4', LISTENER_FD);
  r.consistent(2);
  assert.ok(r.loop.logs.some((l) => l.startsWith('info: 1 tunnels open, back under the file descriptor budget')));
});

test('ENFILE from socket() (the system-wide file table is full): refused as for EMFILE, one warning, counted setup-enfile', () => {
  const r = scaleRig();
  r.core.setFdLimit(reserve() + 10);
  r.s.fdLimit = 1;
  r.s.fdErrno = ERRNO.ENFILE;
  for (let i = 0; i < 3; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  r.consistent(1);
  assert.is(r.lastTo(client(1)), ERROR_HEX);
  assert.is(r.lastTo(client(2)), ERROR_HEX);
  assert.ok(r.loop.logs.some((l) => l.includes(`tunnel socket setup failed: socket: ${r.native.strerror(ERRNO.ENFILE)}`)));
  assert.is(warnings(r.loop.logs, /refusing new tunnels until one closes \(usage 0xFFFF\)/).length, 1);
  assert.is(r.core.counters.get('setup-enfile'), 1);
  assert.is(r.core.counters.get('setup-emfile'), 0);
  assert.is(r.core.counters.get('refused-fd-budget'), 1, 'the third refused without a socket() call');
});

test('10,000 tunnels: ENOBUFS on the 9,999th tunnel create, EEXIST on a session, a timed-out reply: each undone, logged, refused', () => {
  const N = 10_000;
  const r = scaleRig({ maxTunnels: N + 10, verbosity: 'info' });
  r.core.setFdLimit(65536);
  r.kernel.failTunnelAt.set(9_999, ERRNO.ENOBUFS);
  r.kernel.failSessionAt.set(5_000, ERRNO.EEXIST);
  r.kernel.failTunnelAt.set(7_000, ERRNO.EAGAIN); // created, but the answer came after 2 s
  r.kernel.failSessionAt.set(8_000, ERRNO.EAGAIN);
  r.kernel.lastProblem = '';
  for (let i = 0; i < N; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  r.consistent(N - 4);
  assert.is(r.core.counters.get('refused-setup-failed'), 4);
  assert.is(r.core.counters.get('tunnels-created'), N - 4);
  const errors = r.loop.logs.filter((l) => l.startsWith('error: '));
  assert.is(errors.length, 4, errors.join('\n'));
  assert.ok(errors.some((l) => / kernel tunnel create failed: .*; refusing the client$/.test(l) && l.includes(r.native.strerror(ERRNO.ENOBUFS))));
  assert.ok(errors.some((l) => / kernel session create failed: File exists; refusing the client$/.test(l)));
  assert.is(errors.filter((l) => l.includes(r.native.strerror(ERRNO.EAGAIN))).length, 2, 'both timeouts');
  // every refused client was told; the others got TUNNEL
  const refused = r.native.sent.filter((x) => x.hex === ERROR_HEX && x.to !== undefined);
  assert.is(refused.length, 4);
  // the ids of the failed attempts are free again (the EEXIST of a session retires nothing)
  assert.is(r.core.idsFree, 10 + 4);
});

test('a client flooding PREPAREs from one IP: the per-IP limit holds, each refused with ERROR no larger than the PREPARE', () => {
  const r = scaleRig({ maxTunnels: 64, perIpCount: 5, perIpTime: 60 });
  const flood: Endpoint[] = Array.from({ length: 500 }, (_, i) => ({ ip: '198.51.100.66', port: 30000 + i }));
  for (const [i, ep] of flood.entries()) handshake(r, ep, `flood${i}`, LISTENER_FD);
  r.consistent(5);
  assert.is(r.core.counters.get('refused-rate-limit-ip'), 495);
  for (const ep of flood.slice(5)) assert.is(r.lastTo(ep), ERROR_HEX);
  // the same endpoint retransmitting its PREPARE: ERROR again, no new admission attempt
  handshake(r, flood[10], 'flood10', LISTENER_FD);
  assert.is(r.core.counters.get('refused-stale-prepare'), 1);
  // another IP still gets its tunnel
  handshake(r, client(1), 'other', LISTENER_FD);
  r.consistent(6);
});

test('hooks that hang, 200 tunnels, hooks.max_concurrent 4: tunnels come up at once, never more than 4 hooks, each killed after 30 s', () => {
  const r = scaleRig({ maxTunnels: 256, maxConcurrentJobs: 4, hooks: { ...CFG.hooks, sessionUp: '/hang', sessionPreDown: '', sessionDown: '' } });
  r.native.behaviour.set('/hang', { ms: Infinity, code: 0 });
  for (let i = 0; i < 200; i++) handshake(r, client(i), `u${i}`, LISTENER_FD);
  r.consistent(200);
  assert.is(r.native.sent.filter((x) => x.hex.startsWith('80 73 a7 01 04 08')).length, 200, 'every client got TUNNEL');
  const running = (): number => [...r.native.children.values()].filter((c) => !c.killedWith).length;
  assert.is(running(), 4);
  r.loop.advance(31_000);
  assert.is(running(), 4, 'the next four');
  assert.ok(r.loop.logs.some((l) => /^warning: hook session\.up for tunnel \d+: still running after 30 s, killing it/.test(l)));
  assert.is(r.jobs.peakRunning, 4);
});

test.run();
