// BrokerDriver: executes BrokerCore actions with Native (sockets, spawn), a Loop (fd readiness,
// timers, log) and the netlink kernel executor, and feeds results back into the core.
// Runtime-neutral: nothing here is Node-specific.
import type { Endpoint, Native } from '../native.js';
import { ActionQueue } from '../runtime/action-queue.js';
import type { Loop } from '../runtime/loop.js';
import type { Action, SetupResult, SocketRef, TunnelSetup } from './actions.js';
import type { BrokerCore } from './broker.js';
import type { BrokerConfig } from './config.js';
import { JobRunner } from './job-runner.js';

/** Requested receive buffer of each listening socket (SO_RCVBUFFORCE; the kernel doubles it
 *  for its bookkeeping and charges each queued datagram its buffer size, ~1-2 KiB for a small
 *  one): room for the ~4,000 handshake datagrams of 1,000 routers returning at once, where
 *  Linux's default (rmem_default, 208 KiB) holds about 200. See docs/broker.md. */
export const LISTENER_RECV_BUFFER = 4 * 1024 * 1024;

/** The part of src/netlink/kernel.ts (NetlinkKernel) the broker uses. */
export interface BrokerKernel {
  /** Set by the kernel executor when a reply was malformed or an argument invalid. */
  lastProblem: string;
  resolveL2tpFamily(): number;
  createTunnel(t: { tunnelId: number; peerTunnelId: number; fd: number }): number;
  deleteTunnel(tunnelId: number): number;
  createSession(s: { tunnelId: number; sessionId: number; peerSessionId: number; ifname: string }): number;
  deleteSession(tunnelId: number, sessionId: number): number;
  setSessionMtu(tunnelId: number, sessionId: number, mtu: number): number;
  setLinkMtu(ifname: string, mtu: number): number;
  listTunnels(): { tunnelId: number }[] | number;
  listSessions(): { tunnelId: number; sessionId: number }[] | number;
}

const RECV_BUFFER = 65536;
/** Datagrams read per readiness callback before yielding to other sockets. */
const READ_BURST = 64;

export class BrokerDriver {
  private readonly listeners = new Map<number, number>();
  private readonly tunnelFds = new Map<number, number>();
  private readonly buf = new Uint8Array(RECV_BUFFER);
  private timer: unknown = null;
  private timerAt = Infinity;
  /** A failing action is logged as an internal error and the drain goes on. */
  private readonly queue = new ActionQueue<Action>(
    (a) => this.execute(a),
    (a, e) => this.loop.log('error', `internal error while executing ${a.type}: ${oneLine(e)}`),
  );
  private stopping = false;

  constructor(
    private readonly core: BrokerCore,
    private readonly cfg: BrokerConfig,
    private readonly native: Native,
    private readonly loop: Loop,
    private readonly kernel: BrokerKernel,
    readonly jobs: JobRunner,
  ) {}

  /** Deletes kernel sessions and tunnels left in our id range by an earlier run. */
  cleanupStaleKernelState(): void {
    const inRange = (id: number): boolean => id >= this.cfg.tunnelIdBase && id < this.cfg.tunnelIdBase + this.cfg.maxTunnels;
    const sessions = this.kernel.listSessions();
    if (typeof sessions === 'number') {
      this.loop.log('warning', `cannot list kernel L2TP sessions: ${this.errText(-sessions)}; stale sessions are not removed`);
    } else {
      for (const s of sessions.filter((x) => inRange(x.tunnelId))) {
        const r = this.kernel.deleteSession(s.tunnelId, s.sessionId);
        this.loop.log(r < 0 ? 'warning' : 'info', `stale kernel session ${s.tunnelId}/${s.sessionId}: ` +
          (r < 0 ? `delete failed: ${this.errText(-r)}` : 'deleted'));
      }
    }
    const tunnels = this.kernel.listTunnels();
    if (typeof tunnels === 'number') {
      this.loop.log('warning', `cannot list kernel L2TP tunnels: ${this.errText(-tunnels)}; stale tunnels are not removed`);
      return;
    }
    for (const t of tunnels.filter((x) => inRange(x.tunnelId))) {
      const r = this.kernel.deleteTunnel(t.tunnelId);
      this.loop.log(r < 0 ? 'warning' : 'info', `stale kernel tunnel ${t.tunnelId}: ` +
        (r < 0 ? `delete failed: ${this.errText(-r)}` : 'deleted'));
    }
  }

  /** Opens one listener per configured port; returns how many are listening. */
  openListeners(): number {
    for (const port of this.cfg.ports) {
      const fd = this.boundSocket(port);
      if (typeof fd !== 'number') {
        this.loop.log('warning', `cannot listen on ${this.cfg.address}:${port} (${fd.error}); skipping this port`);
        continue;
      }
      this.listeners.set(port, fd);
      this.loop.onReadable(fd, () => this.readable({ kind: 'listener', port }, fd));
      this.loop.log('info', `listening on ${this.cfg.address}:${port} (interface ${this.cfg.interface}), ${this.recvBuffer(fd)}`);
    }
    this.reschedule();
    return this.listeners.size;
  }

  /** Closes listeners, closes every tunnel (ERROR 0x02, hooks, kernel teardown) and calls done
   *  when the hooks have finished or `graceMs` has passed. */
  shutdown(graceMs: number, done: (clean: boolean) => void): void {
    if (this.stopping) return;
    this.stopping = true;
    for (const [port, fd] of this.listeners) {
      this.loop.onReadable(fd, null);
      this.native.close(fd);
      this.listeners.delete(port);
    }
    this.run(this.core.shutdown(this.loop.now()));
    if (this.timer !== null) this.loop.cancelTimer(this.timer);
    this.timer = null;
    let finished = false;
    const guard = this.loop.setTimer(graceMs, () => {
      if (finished) return;
      finished = true;
      this.loop.log('warning', `shutdown: ${this.jobs.pending} hook jobs still pending after ${Math.round(graceMs / 1000)} s, abandoning them`);
      this.jobs.abandon();
      done(false);
    });
    this.jobs.whenIdle(() => {
      if (finished) return;
      finished = true;
      this.loop.cancelTimer(guard);
      done(true);
    });
  }

  /** Sets the listener's receive buffer; returns a text for the "listening on" line. */
  private recvBuffer(fd: number): string {
    if (typeof this.native.setRecvBuffer !== 'function') return 'receive buffer: default (this addon cannot set it)';
    const r = this.native.setRecvBuffer(fd, LISTENER_RECV_BUFFER);
    if (r < 0) return `receive buffer: default, setting ${LISTENER_RECV_BUFFER} bytes failed: ${this.native.strerror(-r)}`;
    // the kernel reports twice the requested size when it granted all of it
    return r >= 2 * LISTENER_RECV_BUFFER ? `receive buffer ${r} bytes`
      : `receive buffer ${r} bytes (asked for ${LISTENER_RECV_BUFFER}; SO_RCVBUFFORCE needs CAP_NET_ADMIN, ` +
        'otherwise net.core.rmem_max caps it)';
  }

  /** Executes actions (and whatever the core answers to their results) in order. */
  run(actions: Action[]): void {
    if (this.queue.run(actions)) this.reschedule();
  }

  private execute(a: Action): void {
    switch (a.type) {
      case 'log':
        this.loop.log(a.level, a.message);
        return;
      case 'send':
        return this.send(a.socket, a.data, a.to);
      case 'setup':
        return this.run(this.core.setupResult(a.setup.tunnelId, this.setup(a.setup), this.loop.now()));
      case 'setMtu': {
        const link = this.kernel.setLinkMtu(a.ifname, a.mtu);
        if (link < 0) this.loop.log('warning', `tunnel ${a.tunnelId}: setting MTU ${a.mtu} on ${a.ifname} failed: ${this.errText(-link)}`);
        // kernels >= 4.17 ignore the session MTU attribute; older ones want it
        const s = this.kernel.setSessionMtu(a.tunnelId, a.sessionId, a.mtu);
        if (s < 0) this.loop.log('debug', `tunnel ${a.tunnelId}: SESSION_MODIFY mtu ${a.mtu}: ${this.errText(-s)}`);
        return;
      }
      case 'teardown':
        return this.teardown(a.tunnelId, a.sessionId);
      case 'run':
        this.jobs.submit(a.job);
        return;
    }
  }

  private send(socket: SocketRef, data: Uint8Array, to: Endpoint): void {
    let n: number;
    if (socket.kind === 'listener') {
      const fd = this.listeners.get(socket.port);
      if (fd === undefined) return;
      n = this.native.sendTo(fd, data, to.ip, to.port);
    } else {
      const fd = this.tunnelFds.get(socket.tunnelId);
      if (fd === undefined) return;
      n = this.native.send(fd, data);
    }
    if (n >= 0) return;
    if (n === -this.native.errno.EAGAIN) {
      this.core.counters.add('send-dropped-eagain');
      return;
    }
    for (const a of this.core.socketError(socket, -n, this.native.strerror(-n), this.loop.now())) this.queue.push(a);
  }

  /** Tunnel socket + kernel tunnel + session. Cleans up after itself on failure. */
  private setup(s: TunnelSetup): SetupResult {
    const fd = this.boundSocket(s.port, s.client);
    if (typeof fd !== 'number') return { ok: false, stage: 'socket', ...fd };
    const fail = (stage: 'tunnel' | 'session', r: number): SetupResult => {
      const error = this.errText(-r);
      // undo what may exist: after a failed session, the tunnel; after a timeout (EAGAIN, no
      // reply within 2 s: it may still come), the tunnel too. Closing the socket destroys a
      // kernel tunnel made on it as well; the explicit delete does not wait for that.
      if (stage === 'session' || r === -this.native.errno.EAGAIN) {
        const d = this.kernel.deleteTunnel(s.tunnelId);
        if (d < 0 && d !== -this.native.errno.ENOENT) {
          this.loop.log('warning', `tunnel ${s.tunnelId}: undoing the kernel tunnel after a failed ${stage} create: ` +
            `${this.errText(-d)}; closing its socket removes it`);
        }
      }
      this.native.close(fd);
      return { ok: false, stage, errno: -r, error };
    };
    this.kernel.lastProblem = '';
    const t = this.kernel.createTunnel({ tunnelId: s.tunnelId, peerTunnelId: s.peerTunnelId, fd });
    if (t < 0) return fail('tunnel', t);
    const sess = this.kernel.createSession({
      tunnelId: s.tunnelId, sessionId: s.sessionId, peerSessionId: s.peerSessionId, ifname: s.ifname,
    });
    if (sess < 0) return fail('session', sess);
    this.tunnelFds.set(s.tunnelId, fd);
    this.loop.onReadable(fd, () => this.readable({ kind: 'tunnel', tunnelId: s.tunnelId }, fd));
    return { ok: true };
  }

  private teardown(tunnelId: number, sessionId: number): void {
    const sr = this.kernel.deleteSession(tunnelId, sessionId);
    if (sr < 0) this.loop.log('warning', `tunnel ${tunnelId}: deleting kernel session ${sessionId} failed: ${this.errText(-sr)}`);
    const fd = this.tunnelFds.get(tunnelId);
    // closing the socket also destroys the kernel tunnel; delete it explicitly all the same
    const tr = this.kernel.deleteTunnel(tunnelId);
    if (tr < 0 && tr !== -this.native.errno.ENOENT) {
      this.loop.log('debug', `tunnel ${tunnelId}: deleting kernel tunnel: ${this.errText(-tr)}`);
    }
    if (fd !== undefined) {
      this.loop.onReadable(fd, null);
      this.native.close(fd);
      this.tunnelFds.delete(tunnelId);
    }
  }

  /** A UDP socket with SO_REUSEPORT + SO_BINDTODEVICE bound to address:port; connected to
   *  `peer` with IP_MTU_DISCOVER=PROBE when given. Returns the fd or the errno and its text. */
  private boundSocket(port: number, peer?: Endpoint): number | { errno: number; error: string } {
    const fd = this.native.udpSocket();
    if (fd < 0) return { errno: -fd, error: `socket: ${this.native.strerror(-fd)}` };
    const steps: [string, () => number][] = [
      ['SO_REUSEPORT', () => this.native.setReusePort(fd)],
      [`SO_BINDTODEVICE ${this.cfg.interface}`, () => this.native.bindToDevice(fd, this.cfg.interface)],
      ['bind', () => this.native.bind(fd, this.cfg.address, port)],
    ];
    if (peer) {
      steps.push(['connect', () => this.native.connect(fd, peer.ip, peer.port)]);
      steps.push(['IP_MTU_DISCOVER', () => this.native.setPmtuProbe(fd)]);
    }
    for (const [what, step] of steps) {
      const r = step();
      if (r < 0) {
        this.native.close(fd);
        return { errno: -r, error: `${what}: ${this.native.strerror(-r)}` };
      }
    }
    return fd;
  }

  private readable(socket: SocketRef, fd: number): void {
    const stillOpen = (): boolean =>
      socket.kind === 'listener' ? this.listeners.get(socket.port) === fd : this.tunnelFds.get(socket.tunnelId) === fd;
    for (let i = 0; i < READ_BURST && stillOpen(); i++) {
      const from: Endpoint = { ip: '', port: 0 };
      const n = this.native.recvFrom(fd, this.buf, from);
      if (n === -this.native.errno.EAGAIN) break;
      if (n === -this.native.errno.EINTR) continue;
      const now = this.loop.now();
      try {
        if (n < 0) this.run(this.core.socketError(socket, -n, this.native.strerror(-n), now));
        else this.run(this.core.datagram(socket, this.buf.subarray(0, n), from, now));
      } catch (e) {
        // a bug must not take the broker down: count it and go on
        this.core.counters.add('internal-errors');
        this.loop.log('error', `internal error on a datagram: ${oneLine(e)}`);
      }
    }
  }

  /** One timer, armed for the core's next deadline (O(1) to ask: the core keeps its deadlines in
   *  a heap). A timer already armed for that moment or earlier is kept: when it fires early,
   *  tick() finds nothing due and the timer is re-armed. */
  private reschedule(): void {
    if (this.stopping) return;
    const at = this.core.nextDeadline();
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) this.loop.cancelTimer(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    // +1: timers may fire up to 1 ms early relative to performance.now()
    this.timer = this.loop.setTimer(Math.max(0, at - this.loop.now()) + 1, () => {
      this.timer = null;
      this.timerAt = Infinity;
      let actions: Action[] = [];
      try {
        actions = this.core.tick(this.loop.now());
      } catch (e) {
        this.core.counters.add('internal-errors');
        this.loop.log('error', `internal error in the timer tick: ${oneLine(e)}`);
      }
      this.run(actions);
    });
  }

  private errText(errno: number): string {
    const problem = this.kernel.lastProblem;
    const text = this.native.strerror(errno);
    return errno === this.native.errno.EINVAL && problem ? `${text} (${problem})` : text;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  get tunnelSocketCount(): number {
    return this.tunnelFds.size;
  }
}

/** An exception as one log line (stack frames joined with " | "). */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.stack ?? e.message : String(e)).replace(/\n\s*/g, ' | ');
}
