// Fakes for the broker runtime suites (broker-runtime, broker-hardening, broker-load): the
// shared Loop and Native fakes (fake-loop.ts, fake-native.ts: a manual clock, scripted children,
// recorded socket calls), a netlink kernel, and rig() wiring BrokerCore + BrokerDriver +
// JobRunner to them.
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../../src/native.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { BrokerDriver, type BrokerKernel, type BrokerKernelWorker } from '../../src/broker/executor.js';
import type { AckOp } from '../../src/netlink/kernel.js';
import type { KernelCallback } from '../../src/netlink/worker.js';
import { JobRunner } from '../../src/broker/job-runner.js';
import { brokerLogLoop } from '../../src/broker/redact.js';
import type { DatagramReader } from '../../src/runtime/datagram-batch.js';
import * as m from '../../src/protocol/messages.js';
import { FakeLoop } from './fake-loop.js';
import { ERRNO, FakeNative } from './fake-native.js';

export { FakeLoop };
export { type Child, ERRNO, FakeNative, hexOf } from './fake-native.js';

export class FakeKernel implements BrokerKernel {
  lastProblem = '';
  calls: string[] = [];
  failSession = 0;
  /** createTunnel result by tunnel id (default 0). */
  createResults = new Map<number, number>();
  sessions: { tunnelId: number; sessionId: number }[] = [];
  tunnels: { tunnelId: number }[] = [];
  resolveL2tpFamily(): number { return 30; }
  createTunnel(t: { tunnelId: number; peerTunnelId: number; fd: number }): number {
    this.calls.push(`createTunnel ${t.tunnelId} peer ${t.peerTunnelId} fd ${t.fd}`);
    return this.createResults.get(t.tunnelId) ?? 0;
  }
  deleteTunnel(id: number): number { this.calls.push(`deleteTunnel ${id}`); this.dying(id); return 0; }
  /** deleteTunnels is recorded as one call per batch; results per id from deleteResults. */
  deleteResults = new Map<number, number>();
  deleteTunnels(ids: number[]): number[] {
    this.calls.push(`deleteTunnels ${ids.join(',')}`);
    for (const id of ids) this.dying(id);
    return ids.map((id) => this.deleteResults.get(id) ?? 0);
  }
  /** A deleted tunnel stays listed for this many listTunnels() calls (the kernel's workqueue
   *  removing its sessions); the default 0 removes it at once. */
  listedAfterDelete = 0;
  private readonly dyingPolls = new Map<number, number>();
  private dying(id: number): void {
    if (this.listedAfterDelete > 0) this.dyingPolls.set(id, this.listedAfterDelete);
  }
  createSession(s: { tunnelId: number; sessionId: number; peerSessionId: number; ifname: string }): number {
    this.calls.push(`createSession ${s.tunnelId}/${s.sessionId} peer ${s.peerSessionId} ${s.ifname}`);
    return this.failSession;
  }
  deleteSession(t: number, s: number): number { this.calls.push(`deleteSession ${t}/${s}`); return 0; }
  setSessionMtu(t: number, s: number, mtu: number): number { this.calls.push(`setSessionMtu ${t}/${s} ${mtu}`); return 0; }
  setLinkMtu(ifname: string, mtu: number): number { this.calls.push(`setLinkMtu ${ifname} ${mtu}`); return 0; }
  listTunnelsResult: number | null = null;
  /** listTunnels() calls so far (each a dump of the kernel's tunnel list). */
  listCount = 0;
  listTunnels(): { tunnelId: number }[] | number {
    this.listCount++;
    if (this.listTunnelsResult !== null) return this.listTunnelsResult;
    const out = [...this.tunnels];
    for (const [id, left] of this.dyingPolls) {
      out.push({ tunnelId: id });
      if (left <= 1) this.dyingPolls.delete(id);
      else this.dyingPolls.set(id, left - 1);
    }
    return out;
  }
  listSessions(): { tunnelId: number; sessionId: number }[] { return this.sessions; }
}

/** A netlink worker that answers only when told (complete*): the kernel's work off the loop. */
export class FakeWorker implements BrokerKernelWorker {
  calls: string[] = [];
  private readonly waiting: { op: AckOp; cb: KernelCallback }[] = [];
  /** Result of the next completions by operation (default 0). */
  results = new Map<string, number>();
  submit(op: AckOp, cb: KernelCallback): void {
    this.calls.push(describeOp(op));
    this.waiting.push({ op, cb });
  }
  get pending(): number { return this.waiting.length; }
  /** Answers the oldest request (its result from `results`); returns what it was. */
  completeNext(): string {
    const w = this.waiting.shift();
    if (!w) throw new Error('no request waits');
    w.cb(this.results.get(w.op.op) ?? 0, '');
    return describeOp(w.op);
  }
  /** Answers requests (also those submitted meanwhile) until none waits; returns them. */
  completeAll(): string[] {
    const done: string[] = [];
    while (this.waiting.length) done.push(this.completeNext());
    return done;
  }
}

function describeOp(op: AckOp): string {
  switch (op.op) {
    case 'createTunnel': return `createTunnel ${op.tunnel.tunnelId} peer ${op.tunnel.peerTunnelId} fd ${op.tunnel.fd}`;
    case 'createSession': return `createSession ${op.session.tunnelId}/${op.session.sessionId} ${op.session.ifname}`;
    case 'deleteSession': return `deleteSession ${op.tunnelId}/${op.sessionId}`;
    case 'deleteTunnel': return `deleteTunnel ${op.tunnelId}`;
    case 'setSessionMtu': return `setSessionMtu ${op.tunnelId}/${op.sessionId} ${op.mtu}`;
    case 'setLinkMtu': return `setLinkMtu ${op.ifname} ${op.mtu}`;
    case 'setLinkUp': return `setLinkUp ${op.ifname} ${op.up}`;
  }
}

export const CFG: BrokerConfig = {
  address: '203.0.113.1', ports: [8942, 53], interface: 'eth0', maxTunnels: 16, tunnelIdBase: 100,
  connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'debug', logIpAddresses: true,
  hooks: { sessionUp: '/up', sessionPreDown: '/predown', sessionDown: '/down', sessionMtuChanged: '', connectionRateLimit: '' },
};
export const CLIENT: Endpoint = { ip: '198.51.100.7', port: 40000 };

/** opts.pidfd: hook exits arrive on a pidfd; otherwise (the default) pidWatch fails with ENOSYS
 *  and the job runner polls waitPid, as on a kernel without pidfd_open. */
export function rig(cfg: BrokerConfig = CFG, opts: { jobs?: { maxQueue?: number }; random?: () => number; pidfd?: boolean; reader?: DatagramReader; loop?: FakeLoop; worker?: FakeWorker } = {}) {
  const loop = opts.loop ?? new FakeLoop();
  const native = new FakeNative(loop);
  if (!opts.pidfd) native.pidWatchResult = -ERRNO.ENOSYS;
  for (const p of ['/up', '/predown', '/down']) native.behaviour.set(p, { ms: 200, code: 0 });
  const kernel = new FakeKernel();
  // as broker-main.ts: the driver and the job runner log through brokerLogLoop
  const logLoop = brokerLogLoop(loop, cfg);
  const core = new BrokerCore(cfg, {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: loop.t,
    random: opts.random ?? (() => 0.5), errno: ERRNO, tcPath: '/usr/sbin/tc',
  });
  const jobs = new JobRunner(native, logLoop, { timeoutMs: 30_000, maxQueue: opts.jobs?.maxQueue, maxRunning: cfg.maxConcurrentJobs });
  const driver = new BrokerDriver(core, cfg, native, logLoop, kernel, jobs, opts.reader, opts.worker);
  /** Delivers a datagram to fd and runs its readiness callback. */
  const deliver = (fd: number, data: Uint8Array, from: Endpoint = CLIENT): void => {
    native.queue(fd, data, from);
    loop.readable.get(fd)!();
  };
  return { loop, native, kernel, core, jobs, driver, deliver, worker: opts.worker };
}

/** COOKIE + PREPARE on listener fd `fd` from `from`. */
export function handshake(r: ReturnType<typeof rig>, from: Endpoint = CLIENT, uuid = 'foobar', fd = 10): void {
  r.deliver(fd, m.encodeCookieRequest(), from);
  const reply = r.native.sent.at(-1)!;
  const cookie = Uint8Array.from(reply.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  r.deliver(fd, m.encodePrepare(cookie, m.utf8Encode(uuid), 1, 1), from);
}

/** The native's sendTo to `port` throws an error naming the address (as an addon error might). */
export function throwOnSendToPort(r: ReturnType<typeof rig>, port: number): void {
  const sendTo = r.native.sendTo.bind(r.native);
  r.native.sendTo = (fd, data, ip, p) => {
    if (p === port) throw new TypeError(`sendTo: cannot send to ${ip}:${p}${ip.includes(':') ? ` ([${ip}]:${p})` : ''}`);
    return sendTo(fd, data, ip, p);
  };
}

/** Tunnel sends fail (ECONNREFUSED) for 20 s, then a shutdown runs to its end; the log text. */
export function refuseThenShutdown(r: ReturnType<typeof rig>): { text: string; done: boolean } {
  r.native.send = () => -ERRNO.ECONNREFUSED;
  r.loop.advance(20_000);
  let done = false;
  r.driver.shutdown(65_000, () => { done = true; });
  r.loop.advance(70_000);
  return { text: r.loop.logs.join('\n'), done };
}
