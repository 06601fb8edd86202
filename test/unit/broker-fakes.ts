// Fakes for the broker runtime suites (broker-runtime, broker-hardening, broker-load): a Loop
// with a manual clock, a Native with scripted children (pidfd or polled) and recorded socket
// calls, a netlink kernel, and rig() wiring BrokerCore + BrokerDriver + JobRunner to them.
import { createHmac } from 'node:crypto';
import type { Endpoint, Native } from '../../src/native.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { BrokerDriver, type BrokerKernel } from '../../src/broker/executor.js';
import { JobRunner } from '../../src/broker/job-runner.js';
import { brokerLogLoop } from '../../src/broker/redact.js';
import * as m from '../../src/protocol/messages.js';
import { native as hostNative } from '../../src/runtime/node/native.js';
import { FakeLoop } from './fake-loop.js';

export { FakeLoop };

/** The host's errno values: the one table (qjs-native/td_core.c via the host addon), not a copy. */
export const ERRNO = hostNative.errno;
const STRERROR: Record<number, string> = {
  [ERRNO.ENOENT]: 'No such file or directory', [ERRNO.EEXIST]: 'File exists',
  [ERRNO.EADDRINUSE]: 'Address already in use', [ERRNO.ECONNREFUSED]: 'Connection refused',
};

export interface Child { path: string; args: string[]; exitAt: number; code: number; output: Uint8Array; killedWith?: number; outFd: number; startedAt: number; pidFd?: number }

/** Native with scripted children and recorded socket calls. */
export class FakeNative implements Native {
  calls: string[] = [];
  children = new Map<number, Child>();
  /** How each spawned path behaves: exit after ms with code and output; ms = Infinity hangs. */
  behaviour = new Map<string, { ms: number; code: number; output?: string }>();
  failBind = new Set<number>();
  inbox = new Map<number, { data: Uint8Array; from: Endpoint }[]>();
  sent: { fd: number; hex: string; to?: string }[] = [];
  private nextFd = 10;
  private nextPid = 500;
  constructor(private readonly loop: FakeLoop) {}
  errno = ERRNO;
  signals = { SIGUSR1: 10 };
  udpSocket(): number { const fd = this.nextFd++; this.calls.push(`socket=${fd}`); return fd; }
  setReusePort(fd: number): number { this.calls.push(`reuseport ${fd}`); return 0; }
  bindToDevice(fd: number, dev: string): number { this.calls.push(`bindtodevice ${fd} ${dev}`); return 0; }
  setPmtuProbe(fd: number): number { this.calls.push(`pmtuprobe ${fd}`); return 0; }
  /** Effective receive buffer granted (the kernel reports twice the request when it grants it). */
  recvBufferResult: number | null = null;
  setRecvBuffer(fd: number, bytes: number): number {
    this.calls.push(`rcvbuf ${fd} ${bytes}`);
    return this.recvBufferResult ?? 2 * bytes;
  }
  bind(fd: number, ip: string, port: number): number {
    this.calls.push(`bind ${fd} ${ip}:${port}`);
    return this.failBind.has(port) ? -ERRNO.EADDRINUSE : 0;
  }
  connect(fd: number, ip: string, port: number): number { this.calls.push(`connect ${fd} ${ip}:${port}`); return 0; }
  localPort(): number { return 0; }
  send(fd: number, data: Uint8Array): number { this.sent.push({ fd, hex: hexOf(data) }); return data.length; }
  sendTo(fd: number, data: Uint8Array, ip: string, port: number): number {
    this.sent.push({ fd, hex: hexOf(data), to: `${ip}:${port}` });
    return data.length;
  }
  recvFrom(fd: number, buf: Uint8Array, from: Endpoint): number {
    const next = this.inbox.get(fd)?.shift();
    if (!next) return -ERRNO.EAGAIN;
    buf.set(next.data);
    from.ip = next.from.ip;
    from.port = next.from.port;
    return next.data.length;
  }
  close(fd: number): number {
    if (this.pidFds.delete(fd)) return 0; // pidfds are not part of the recorded socket calls
    this.calls.push(`close ${fd}`);
    return 0;
  }
  netlinkSocket(): number { return -1; }
  netlinkSend(): number { return -1; }
  netlinkRecv(): number { return -1; }
  spawn(path: string, args: string[]): { pid: number; outFd: number } | number {
    const b = this.behaviour.get(path);
    if (!b) return -ERRNO.ENOENT;
    const pid = this.nextPid++;
    const outFd = this.nextFd++;
    const child: Child = {
      path, args, exitAt: this.loop.t + b.ms, code: b.code, output: m.utf8Encode(b.output ?? ''), outFd, startedAt: this.loop.t,
    };
    this.children.set(pid, child);
    this.byOutFd.set(outFd, child);
    this.calls.push(`spawn ${[path, ...args].join(' ')}`);
    return { pid, outFd };
  }
  private readonly byOutFd = new Map<number, Child>();
  read(fd: number, buf: Uint8Array): number {
    const c = this.byOutFd.get(fd);
    if (!c) return -ERRNO.EINVAL;
    if (c.output.length) {
      const n = Math.min(buf.length, c.output.length);
      buf.set(c.output.subarray(0, n));
      c.output = c.output.subarray(n);
      return n;
    }
    return this.loop.t >= c.exitAt || c.killedWith ? 0 : -ERRNO.EAGAIN;
  }
  waitPid(pid: number): number | null {
    const c = this.children.get(pid)!;
    if (c.killedWith) return 128 + c.killedWith;
    return this.loop.t >= c.exitAt ? c.code : null;
  }
  kill(pid: number, signal: number): number {
    const c = this.children.get(Math.abs(pid));
    if (!c) return -ERRNO.ESRCH;
    this.calls.push(`kill ${pid} ${signal}`);
    c.killedWith = signal;
    this.exitNotice(c, 0);
    return 0;
  }
  /** Spawned children whose pidfd is open (watched or not). */
  pidFds = new Set<number>();
  /** pidfd_open: the fd becomes readable (its Loop callback runs) when the child exits;
   *  pidWatchResult < 0 plays a kernel without pidfd_open. */
  pidWatchResult = 0;
  pidWatch(pid: number): number {
    if (this.pidWatchResult < 0) return this.pidWatchResult;
    const c = this.children.get(pid)!;
    c.pidFd = this.nextFd++;
    this.pidFds.add(c.pidFd);
    this.exitNotice(c, c.exitAt - this.loop.t);
    return c.pidFd;
  }
  private exitNotice(c: Child, ms: number): void {
    const fd = c.pidFd;
    if (fd === undefined || !Number.isFinite(ms)) return;
    this.loop.setTimer(ms, () => { if (this.pidFds.has(fd)) this.loop.readable.get(fd)?.(); });
  }
  raiseFdLimit(): { soft: number; hard: number } { return { soft: 1024, hard: 1024 }; }
  resolveStart(): number { return -1; }
  resolveFinish(): number { return -1; }
  syslog(): void {}
  strerror(errno: number): string { return STRERROR[errno] ?? `error ${errno}`; }
}

export const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
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
  listTunnels(): { tunnelId: number }[] | number {
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

export const CFG: BrokerConfig = {
  address: '203.0.113.1', ports: [8942, 53], interface: 'eth0', maxTunnels: 16, tunnelIdBase: 100,
  connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'debug', logIpAddresses: true,
  hooks: { sessionUp: '/up', sessionPreDown: '/predown', sessionDown: '/down', sessionMtuChanged: '', connectionRateLimit: '' },
};
export const CLIENT: Endpoint = { ip: '198.51.100.7', port: 40000 };

/** opts.pidfd: hook exits arrive on a pidfd; otherwise (the default) pidWatch fails with ENOSYS
 *  and the job runner polls waitPid, as on a kernel without pidfd_open. */
export function rig(cfg: BrokerConfig = CFG, opts: { jobs?: { maxQueue?: number }; random?: () => number; pidfd?: boolean } = {}) {
  const loop = new FakeLoop();
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
  const jobs = new JobRunner(native, logLoop, { timeoutMs: 30_000, maxQueue: opts.jobs?.maxQueue });
  const driver = new BrokerDriver(core, cfg, native, logLoop, kernel, jobs);
  /** Delivers a datagram to fd and runs its readiness callback. */
  const deliver = (fd: number, data: Uint8Array, from: Endpoint = CLIENT): void => {
    const q = native.inbox.get(fd) ?? [];
    q.push({ data, from });
    native.inbox.set(fd, q);
    loop.readable.get(fd)!();
  };
  return { loop, native, kernel, core, jobs, driver, deliver };
}

/** COOKIE + PREPARE on listener fd `fd` from `from`. */
export function handshake(r: ReturnType<typeof rig>, from: Endpoint = CLIENT, uuid = 'foobar', fd = 10): void {
  r.deliver(fd, m.encodeCookieRequest(), from);
  const reply = r.native.sent.at(-1)!;
  const cookie = Uint8Array.from(reply.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  r.deliver(fd, m.encodePrepare(cookie, m.utf8Encode(uuid), 1, 1), from);
}
