// The Native fake of the driver suites (broker-runtime, broker-hardening, broker-load through
// broker-fakes.ts; client-driver): scripted children (pidfd or polled waitPid), a scripted
// resolver, recorded socket calls and sends, and datagrams queued per fd, read by recvFrom (with
// the sender) or read (a connected socket), one per call. Works with FakeLoop (fake-loop.ts).
import type { Endpoint, Native, Resolved } from '../../src/native.js';
import * as m from '../../src/protocol/messages.js';
import { native as hostNative } from '../../src/runtime/node/native.js';
import type { FakeLoop } from './fake-loop.js';

/** The host's errno values: the one table (qjs-native/td_core.c via the host addon), not a copy. */
export const ERRNO = hostNative.errno;
const STRERROR: Record<number, string> = {
  [ERRNO.ENOENT]: 'No such file or directory', [ERRNO.EEXIST]: 'File exists',
  [ERRNO.EADDRINUSE]: 'Address already in use', [ERRNO.ECONNREFUSED]: 'Connection refused',
  [ERRNO.EAFNOSUPPORT]: 'Address family not supported by protocol',
  [ERRNO.EPROTONOSUPPORT]: 'Protocol not supported',
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
  /** udpSocket(6) fails as on a host without IPv6. */
  noIpv6 = false;
  udpSocket(family?: 4 | 6): number {
    if (family === 6 && this.noIpv6) return -ERRNO.EAFNOSUPPORT;
    const fd = this.nextFd++;
    this.calls.push(family === 6 ? `socket6=${fd}` : `socket=${fd}`);
    return fd;
  }
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
    this.calls.push(`bind ${fd} ${ip.includes(':') ? `[${ip}]` : ip}:${port}`);
    return this.failBind.has(port) ? -ERRNO.EADDRINUSE : 0;
  }
  connect(fd: number, ip: string, port: number): number {
    this.calls.push(`connect ${fd} ${ip.includes(':') ? `[${ip}]` : ip}:${port}`);
    return 0;
  }
  localPort(): number { return 0; }
  send(fd: number, data: Uint8Array): number { this.sent.push({ fd, hex: hexOf(data) }); return data.length; }
  sendTo(fd: number, data: Uint8Array, ip: string, port: number): number {
    this.sent.push({ fd, hex: hexOf(data), to: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}` });
    return data.length;
  }
  /** Queues a datagram for fd (the test then runs its readiness callback). */
  queue(fd: number, data: Uint8Array, from: Endpoint = { ip: '203.0.113.1', port: 8942 }): void {
    const q = this.inbox.get(fd) ?? [];
    q.push({ data, from });
    this.inbox.set(fd, q);
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
  spawn(path: string, args: string[], captureOutput = true): { pid: number; outFd: number } | number {
    const b = this.behaviour.get(path);
    if (!b) return -ERRNO.ENOENT;
    const pid = this.nextPid++;
    const outFd = captureOutput ? this.nextFd++ : -1;
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
    if (!c) {
      // a connected socket: its next datagram, without the sender
      const q = this.inbox.get(fd);
      if (!q) return -ERRNO.EINVAL;
      const next = q.shift();
      if (!next) return -ERRNO.EAGAIN;
      buf.set(next.data);
      return next.data.length;
    }
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
  /** reniceGroup(pgid, increment) calls; the result returned (0, or -errno to play a failure). */
  renices: [number, number][] = [];
  reniceResult = 0;
  reniceGroup(pgid: number, increment: number): number {
    this.renices.push([pgid, increment]);
    return this.reniceResult;
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
  /** Ends child pid now with `code` (its pidfd, if watched, becomes readable). */
  finish(pid: number, code: number): void {
    const c = this.children.get(pid)!;
    c.exitAt = this.loop.t;
    c.code = code;
    this.exitNotice(c, 0);
  }
  raiseFdLimit(): { soft: number; hard: number } { return { soft: 1024, hard: 1024 }; }
  /** Answers of the resolver by the fd resolveStart returned (absent: still running); `all`
   *  defaults to [the answer]. */
  resolveAnswers = new Map<number, (Resolved & { all?: Resolved[] }) | number>();
  /** Resolver pipes get their own range (100, 101...), so socket fds do not depend on when a
   *  name was asked for (the client makes its socket after the answer). */
  private nextResolveFd = 100;
  resolveStart(host: string, service: string): number {
    const fd = this.nextResolveFd++;
    this.calls.push(`resolve ${host} ${service} → ${fd}`);
    return fd;
  }
  resolveFinish(fd: number): (Resolved & { all: Resolved[] }) | number {
    const r = this.resolveAnswers.get(fd);
    if (r === undefined) return -ERRNO.EAGAIN;
    return typeof r === 'number' ? r : { ...r, all: r.all ?? [r] };
  }
  syslogLines: string[] = [];
  syslog(prio: number, ident: string, msg: string): void { this.syslogLines.push(`${prio} ${ident} ${msg}`); }
  strerror(errno: number): string { return STRERROR[errno] ?? `error ${errno}`; }
}

export const hexOf = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
