// A simulated world for the broker benchmark (bench/broker.ts): a virtual-time Loop, a fake
// Native (UDP sockets as in-memory queues, spawn/waitpid that succeed at once), a kernel whose
// every netlink call succeeds, and N clients speaking the client protocol. The real BrokerCore
// and BrokerDriver (src/broker/) run on it through their public interfaces, so the benchmark
// measures whatever timer and socket handling the driver does, not a model of it.
import { constants as osConstants } from 'node:os';
import { ERRNO_NAMES, type Endpoint, type ErrnoTable, type Native } from '../src/native.js';
import type { BrokerKernel } from '../src/broker/executor.js';
import type { Loop, LogLevel } from '../src/runtime/loop.js';
import { MessageType } from '../src/protocol/constants.js';
import * as m from '../src/protocol/messages.js';

interface Timer {
  at: number;
  seq: number;
  cb: () => void;
  cancelled: boolean;
}

/** Virtual-time loop: timers in a binary heap, run in (time, creation) order. */
export class SimLoop implements Loop {
  t = 0;
  private heap: Timer[] = [];
  private seq = 0;
  readonly readable = new Map<number, () => void>();
  readonly logCounts: Record<LogLevel, number> = { error: 0, warning: 0, info: 0, debug: 0 };
  timersFired = 0;
  lastError = '';

  onReadable(fd: number, cb: (() => void) | null): void {
    if (cb) this.readable.set(fd, cb);
    else this.readable.delete(fd);
  }

  setTimer(ms: number, cb: () => void): unknown {
    const t: Timer = { at: this.t + Math.max(0, ms), seq: this.seq++, cb, cancelled: false };
    this.push(t);
    return t;
  }

  cancelTimer(handle: unknown): void {
    if (handle) (handle as Timer).cancelled = true;
  }

  now(): number {
    return this.t;
  }

  onSignal(): void {}

  log(level: LogLevel, message: string): void {
    this.logCounts[level]++;
    if (level === 'error') this.lastError = message;
  }

  print(): void {}

  exit(code: number): never {
    throw new Error(`broker bench: exit(${code}) called`);
  }

  /** Runs timers (and whatever they cause) up to virtual time `until`; `between` runs after each. */
  runUntil(until: number, between: () => void): void {
    between();
    for (;;) {
      const top = this.heap[0];
      if (!top || top.at > until) break;
      this.pop();
      if (top.cancelled) continue;
      this.t = Math.max(this.t, top.at);
      this.timersFired++;
      top.cb();
      between();
    }
    this.t = Math.max(this.t, until);
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(t: Timer): void {
    const h = this.heap;
    h.push(t);
    for (let i = h.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (!h.length) return;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let s = i;
      if (l < h.length && this.less(h[l], h[s])) s = l;
      if (r < h.length && this.less(h[r], h[s])) s = r;
      if (s === i) break;
      [h[i], h[s]] = [h[s], h[i]];
      i = s;
    }
  }
}

interface Sock {
  local: Endpoint | null;
  peer: Endpoint | null;
  inbox: { data: Uint8Array; from: Endpoint }[];
}

const key = (ip: string, port: number): string => `${ip}:${port}`;

/** Client i: a distinct address:port in the documentation ranges. */
export function clientEndpoint(i: number): Endpoint {
  const net = i % 2 === 0 ? '198.51.100' : '203.0.113';
  return { ip: `${net}.${2 + ((i >> 1) % 250)}`, port: 20000 + Math.floor(i / 500) };
}

/** Simulated client: our client's handshake (USAGE → COOKIE → PREPARE), then keepalives every
 *  5 s; answers the broker's PMTU probes with PMTUD_ACK as the client core does. */
export interface SimClient {
  ep: Endpoint;
  uuid: Uint8Array;
  up: boolean;
}

const FEATURES = 1;

export class SimNet {
  readonly socks = new Map<number, Sock>();
  /** Connected sockets by peer endpoint (the kernel prefers them over the listener). */
  private readonly connected = new Map<string, number>();
  private readonly listeners = new Map<number, number>();
  readonly clients: SimClient[] = [];
  private readonly byEp = new Map<string, SimClient>();
  private readonly toBroker: { fd: number; data: Uint8Array; from: Endpoint }[] = [];
  private readonly toClients: { c: SimClient; data: Uint8Array }[] = [];
  private nextFd = 10;
  private nextPid = 1000;
  sentByBroker = 0;
  sentByClients = 0;
  spawned = 0;
  upCount = 0;

  constructor(readonly loop: SimLoop) {}

  addClient(i: number): SimClient {
    const c: SimClient = { ep: clientEndpoint(i), uuid: m.utf8Encode(`bench-client-${i}`), up: false };
    this.clients.push(c);
    this.byEp.set(key(c.ep.ip, c.ep.port), c);
    return c;
  }

  /** The client sends to the broker's port (its connected tunnel socket if there is one). */
  clientSend(c: SimClient, data: Uint8Array, brokerPort: number): void {
    this.sentByClients++;
    const fd = this.connected.get(key(c.ep.ip, c.ep.port)) ?? this.listeners.get(brokerPort);
    if (fd !== undefined) this.toBroker.push({ fd, data, from: c.ep });
  }

  startHandshake(c: SimClient, port: number): void {
    this.clientSend(c, m.encodeUsageRequest(FEATURES), port);
  }

  /** Delivers queued datagrams both ways until nothing moves (zero network delay). */
  flush(port: number): void {
    while (this.toBroker.length || this.toClients.length) {
      while (this.toBroker.length) {
        const d = this.toBroker.shift()!;
        const s = this.socks.get(d.fd);
        if (!s) continue;
        s.inbox.push({ data: d.data, from: d.from });
        this.loop.readable.get(d.fd)?.();
      }
      while (this.toClients.length) {
        const { c, data } = this.toClients.shift()!;
        this.clientReceive(c, data, port);
      }
    }
  }

  private clientReceive(c: SimClient, data: Uint8Array, port: number): void {
    const f = m.parseFrame(data);
    if (!m.isFrame(f)) return;
    switch (f.type) {
      case MessageType.USAGE:
        if (!c.up) this.clientSend(c, m.encodeCookieRequest(), port);
        return;
      case MessageType.COOKIE: {
        const cookie = m.decodeCookieReply(f.payload);
        if (cookie && !c.up) this.clientSend(c, m.encodePrepare(cookie, c.uuid, 1, FEATURES), port);
        return;
      }
      case MessageType.TUNNEL:
        if (!c.up) {
          c.up = true;
          this.upCount++;
        }
        return;
      case MessageType.PMTUD:
        if (c.up) this.clientSend(c, m.encodePmtuAck(f.datagramLength), port);
        return;
      case MessageType.ERROR:
        if (c.up) {
          c.up = false;
          this.upCount--;
        }
        return;
    }
  }

  private deliver(data: Uint8Array, to: Endpoint): void {
    this.sentByBroker++;
    const c = this.byEp.get(key(to.ip, to.port));
    if (c) this.toClients.push({ c, data });
  }

  /** The fake Native the broker driver runs on. */
  native(): Native {
    const socks = this.socks;
    const sock = (fd: number): Sock | undefined => socks.get(fd);
    return {
      udpSocket: () => {
        const fd = this.nextFd++;
        socks.set(fd, { local: null, peer: null, inbox: [] });
        return fd;
      },
      setReusePort: () => 0,
      bindToDevice: () => 0,
      setPmtuProbe: () => 0,
      bind: (fd, ip, port) => {
        const s = sock(fd);
        if (!s) return -9;
        s.local = { ip, port };
        return 0;
      },
      connect: (fd, ip, port) => {
        const s = sock(fd);
        if (!s) return -9;
        s.peer = { ip, port };
        this.connected.set(key(ip, port), fd);
        return 0;
      },
      localPort: (fd) => sock(fd)?.local?.port ?? -9,
      send: (fd, data) => {
        const s = sock(fd);
        if (!s?.peer) return -107;
        this.deliver(data, s.peer);
        return data.length;
      },
      sendTo: (_fd, data, ip, port) => {
        this.deliver(data, { ip, port });
        return data.length;
      },
      recvFrom: (fd, buf, from) => {
        const d = sock(fd)?.inbox.shift();
        if (!d) return -11;
        buf.set(d.data);
        from.ip = d.from.ip;
        from.port = d.from.port;
        return d.data.length;
      },
      close: (fd) => {
        const s = sock(fd);
        if (s?.peer && this.connected.get(key(s.peer.ip, s.peer.port)) === fd) this.connected.delete(key(s.peer.ip, s.peer.port));
        for (const [p, lfd] of this.listeners) if (lfd === fd) this.listeners.delete(p);
        socks.delete(fd);
        this.loop.readable.delete(fd);
        return 0;
      },
      netlinkSocket: () => -93,
      netlinkSend: () => -93,
      netlinkRecv: () => -93,
      spawn: () => {
        this.spawned++;
        return { pid: this.nextPid++, outFd: -1 };
      },
      read: () => 0,
      waitPid: () => 0,
      // no pidfd: the supervisor falls back to polling waitPid, which says "exited" at once
      pidWatch: () => -38,
      setRecvBuffer: (_fd, bytes) => bytes,
      raiseFdLimit: () => ({ soft: 1 << 20, hard: 1 << 20 }),
      kill: () => 0,
      reniceGroup: () => 0,
      resolveStart: () => -93,
      resolveFinish: () => -93,
      syslog: () => {},
      strerror: (e) => `errno ${e}`,
      signals: { SIGUSR1: 10 },
      errno: hostErrno(),
    };
  }

  /** Registers a bound, unconnected socket as the listener of its port (called after openListeners). */
  adoptListeners(): void {
    for (const [fd, s] of this.socks) if (s.local && !s.peer) this.listeners.set(s.local.port, fd);
  }
}

/** Every netlink call succeeds; nothing is left over from an earlier run. */
export const okKernel = (): BrokerKernel => ({
  lastProblem: '',
  resolveL2tpFamily: () => 30,
  createTunnel: () => 0,
  deleteTunnel: () => 0,
  createSession: () => 0,
  deleteSession: () => 0,
  setSessionMtu: () => 0,
  setLinkMtu: () => 0,
  listTunnels: () => [],
  listSessions: () => [],
});

/** The host's errno numbers for every name the Native interface has (x86 Linux, like the VM). */
function hostErrno(): ErrnoTable {
  const table = {} as ErrnoTable;
  for (const name of ERRNO_NAMES) {
    const value = (osConstants.errno as Record<string, number | undefined>)[name];
    if (value === undefined) throw new Error(`os.constants.errno has no ${name}`);
    table[name] = value;
  }
  return table;
}
