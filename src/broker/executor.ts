// BrokerDriver: executes BrokerCore actions with Native (sockets, spawn), a Loop (fd readiness,
// timers, log) and the netlink kernel executor, and feeds results back into the core.
// Runtime-neutral: nothing here is Node-specific.
import type { Endpoint, Native } from '../native.js';
import { ActionQueue } from '../runtime/action-queue.js';
import type { DatagramBatch, DatagramReader, DatagramSender } from '../runtime/datagram-batch.js';
import { ipv4Number } from '../ip-text.js';
import type { DeadlineTimer, Loop } from '../runtime/loop.js';
import type { Action, Job, SetupResult, SocketRef, TunnelSetup } from './actions.js';
import type { AckOp } from '../netlink/kernel.js';
import type { KernelCallback } from '../netlink/worker.js';
import type { BrokerCore } from './broker.js';
import { formatHostPort, ipFamily } from '../protocol/ip-address.js';
import { listenAddresses, type BrokerConfig } from './config.js';
import { JobRunner } from './job-runner.js';
import { deferrableRequest } from './overload.js';
import { sharedRoute, type SharedRoute } from './shared-send.js';

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
  /** TUNNEL_DELETE of many, pipelined (NetlinkKernel.deleteTunnels); one 0 / -errno per id. */
  deleteTunnels?(tunnelIds: number[]): number[];
  createSession(s: { tunnelId: number; sessionId: number; peerSessionId: number; ifname: string }): number;
  deleteSession(tunnelId: number, sessionId: number): number;
  setSessionMtu(tunnelId: number, sessionId: number, mtu: number): number;
  setLinkMtu(ifname: string, mtu: number): number;
  listTunnels(): { tunnelId: number }[] | number;
  listSessions(): { tunnelId: number; sessionId: number }[] | number;
}

/** The netlink worker (src/netlink/worker.ts: requests on a thread of the C core, answers back
 *  on the event loop), when the runtime has one. */
export interface BrokerKernelWorker {
  submit(op: AckOp, cb: KernelCallback): void;
  /** Requests submitted whose callback has not run yet. */
  readonly pending: number;
}

/** Per tunnel: kernel operations on the worker not yet answered, and the jobs (afterKernel)
 *  waiting for them, in order. */
interface KernelBarrier {
  ops: number;
  held: Job[];
}

const RECV_BUFFER = 65536;
/** How often a shutdown asks the kernel which of the deleted tunnels it still lists (more
 *  rarely when a dump of many tunnels is slow, or while a full round of hooks waits for a slot,
 *  but at least once every SHUTDOWN_POLL_MAX_MS). */
export const SHUTDOWN_POLL_MS = 100;
export const SHUTDOWN_POLL_MAX_MS = 1000;
/** A shutdown gives up after this long (hooks still running are killed, waiting ones dropped):
 *  within the 60 s an operator (and issue 7) expects, and below systemd's TimeoutStopSec (90 s).
 *  A hook is killed after timers.hookTimeout (30 s), so a tunnel whose pre-down hangs still has
 *  25 s for its down hook. */
export const SHUTDOWN_GRACE_MS = 55_000;

/** How long a tunnel socket's datagrams may wait to be read together with the other tunnels'
 *  (a runtime that batches reads, the Node addon): one wake-up per interval instead of one per
 *  keepalive, which in a fleet whose keepalives arrive one by one is most of an idle broker's
 *  CPU. Nothing on a tunnel socket is urgent at that scale: the client retransmits a PMTU probe
 *  or a reliable message only after 1 s (spec 2.5, 4.1), its keepalive period is 5 s, and the
 *  data is the kernel's. The listeners (handshakes) are read at once. */
export const TUNNEL_READ_MS = 500;
/** Datagrams read per readiness callback before yielding to other sockets. */
const READ_BURST = 64;

export class BrokerDriver {
  /** Listening sockets by listenerKey(address, port). */
  private readonly listeners = new Map<string, number>();
  private readonly tunnelFds = new Map<number, number>();
  private readonly buf = new Uint8Array(RECV_BUFFER);
  private timer: unknown = null;
  private timerAt = Infinity;
  /** The runtime's re-armable timer for the core's next deadline, when it has one (else
   *  setTimer: `timer`); timerAt is the deadline it is armed for. */
  private readonly deadline: DeadlineTimer | null;
  /** A failing action is logged as an internal error and the drain goes on. */
  private readonly queue = new ActionQueue<Action>(
    (a) => this.execute(a),
    (a, e) => this.loop.log('error', `internal error while executing ${a.type}: ${oneLine(e)}`),
  );
  private stopping = false;
  /** With a DatagramReader: fd → its socket (and a tunnel's peer, reused as the source of its
   *  datagrams); fds closed while a batch is handled (their rest of the batch is dropped). */
  private readonly fdSockets = new Map<number, WatchedSocket>();
  private readonly closedInBatch = new Set<number>();
  private inBatch = false;
  /** Consecutive sends on one tunnel socket, sent together (sendmmsg) when the next action is
   *  anything else, the socket changes or the drain ends: a client's PMTU round (six probes
   *  read in one batch) gets its six ACKs in one syscall. */
  private readonly outbox: Uint8Array[] = [];
  /** Per outbox datagram: its tunnel's socket (its errors go there) and, for a shared send
   *  (a keepalive) going out through the listener, the route; the keepalives of one tick for
   *  many tunnels are then one outbox on the listener's fd. */
  private readonly outSockets: SocketRef[] = [];
  private readonly outRoutes: (SharedRoute | undefined)[] = [];
  private outFd = -1;
  /** Tunnel id → its route through the listener (shared-send.ts), when the runtime can send a
   *  batch with destinations and the listener has a specific address. */
  private readonly sharedRoutes = new Map<number, SharedRoute>();
  private readonly sender?: DatagramSender;
  /** Tunnel setups on the worker, and whether a teardown came meanwhile (then the completion
   *  undoes what the kernel made). */
  private readonly setupsOnWorker = new Map<number, { cancelled: boolean }>();
  private readonly barriers = new Map<number, KernelBarrier>();
  /** Called when the last barrier is gone (a shutdown waits for the worker's teardowns). */
  private onKernelIdle: (() => void) | null = null;

  constructor(
    private readonly core: BrokerCore,
    private readonly cfg: BrokerConfig,
    private readonly native: Native,
    private readonly loop: Loop,
    private readonly kernel: BrokerKernel,
    readonly jobs: JobRunner,
    /** Batched reception (one callback per loop turn for all readable sockets); without it
     *  every socket is read through loop.onReadable + native.recvFrom. */
    private readonly reader?: DatagramReader & Partial<DatagramSender>,
    /** The netlink worker: setups, teardowns and MTU changes wait for the kernel off the event
     *  loop; without it they are synchronous kernel calls. */
    private readonly worker?: BrokerKernelWorker,
  ) {
    if (reader && reader.start((b) => this.onBatch(b)) < 0) this.reader = undefined;
    if (this.reader && typeof this.reader.sendBatch === 'function') this.sender = this.reader as DatagramSender;
    this.deadline = loop.deadlineTimer?.(() => {
      this.timerAt = Infinity;
      this.tick(this.turnNow());
    }) ?? null;
  }

  /** Deletes the kernel tunnels left in our id range by an earlier run (a killed broker's
   *  tunnels are already being removed by the kernel, which closed their sockets): one
   *  pipelined TUNNEL_DELETE each, no SESSION_DELETE (the kernel closes a deleted tunnel's
   *  sessions in its own workqueue, in parallel), no waiting. The core hands their ids out last,
   *  and treats EEXIST on one of them as "not gone yet". */
  cleanupStaleKernelState(): void {
    const first = this.cfg.tunnelIdBase;
    const last = first + this.cfg.maxTunnels - 1;
    const tunnels = this.kernel.listTunnels();
    if (typeof tunnels === 'number') {
      this.loop.log('warning', `cannot list kernel L2TP tunnels: ${this.errText(-tunnels)}; stale tunnels are not removed`);
      return;
    }
    const ids = tunnels.map((t) => t.tunnelId).filter((id) => id >= first && id <= last);
    if (ids.length === 0) return;
    const t0 = this.loop.now();
    const failed = this.deleteKernelTunnels(ids);
    this.core.leftInKernel(ids);
    this.loop.log('info', `start-up: ${ids.length} kernel tunnels in our id range ${first}-${last} were left by an earlier run ` +
      `(${idRanges(ids)}): deleted in ${Math.round(this.loop.now() - t0)} ms, the kernel removes their sessions; ` +
      'their ids are handed out last');
    if (failed.length) this.loop.log('warning', `start-up: deleting ${failed.length} stale kernel tunnels failed: ${firstFew(failed)}`);
  }

  /** Pipelined TUNNEL_DELETE (one call each if the kernel executor cannot pipeline); returns
   *  "id (error)" for each failure other than "already gone" (see gone()). */
  private deleteKernelTunnels(ids: number[]): string[] {
    const results = this.kernel.deleteTunnels ? this.kernel.deleteTunnels(ids) : ids.map((id) => this.kernel.deleteTunnel(id));
    return ids.flatMap((id, i) => {
      const r = results[i] ?? 0;
      return r < 0 && !this.gone(r) ? [`${id} (${this.errText(-r)})`] : [];
    });
  }

  /** A TUNNEL_DELETE result that means the tunnel no longer exists: l2tp_netlink answers ENODEV
   *  for an id it does not know (l2tp_nl_cmd_tunnel_delete), e.g. a killed broker's tunnel that the
   *  kernel finished removing between our dump and the delete; ENOENT from other paths. */
  private gone(r: number): boolean {
    return r === -this.native.errno.ENODEV || r === -this.native.errno.ENOENT;
  }

  /** Opens one listener per configured address and port; returns how many are listening. */
  openListeners(): number {
    for (const address of listenAddresses(this.cfg)) {
      for (const port of this.cfg.ports) {
        const where = formatHostPort(address, port);
        const fd = this.boundSocket(address, port);
        if (typeof fd !== 'number') {
          // an IPv6 address on a host without IPv6 (or without that address) is an error an
          // operator must see at start, never a silent fallback to the other listeners
          const noV6 = ipFamily(address) === 6 && [this.native.errno.EAFNOSUPPORT, this.native.errno.EADDRNOTAVAIL].includes(fd.errno);
          this.loop.log(noV6 ? 'error' : 'warning', `cannot listen on ${where} (${fd.text}); ` + (noV6
            ? `is IPv6 enabled on this host, and is ${address} configured on an interface? Skipping this address`
            : 'skipping this port'));
          continue;
        }
        this.listeners.set(listenerKey(address, port), fd);
        this.watchSocket(fd, { kind: 'listener', port, address });
        this.loop.log('info', `listening on ${where} (interface ${this.cfg.interface}), ${this.recvBuffer(fd)}${this.rxTimestamps(fd)}`);
      }
    }
    this.reschedule();
    return this.listeners.size;
  }

  /** Closes the listeners and every tunnel (core.shutdown: ERROR 0x02 to all clients first,
   *  then pre-down hooks, kernel teardown, down hooks), and calls done once the kernel has
   *  removed every tunnel and the hooks have finished, or after `graceMs` (then the hooks still
   *  running are killed and those waiting dropped). The kernel teardown is one pipelined
   *  TUNNEL_DELETE per tunnel plus closing its socket: the kernel removes the sessions and
   *  interfaces in its own workqueue, in parallel, which is polled (listTunnels) every
   *  SHUTDOWN_POLL_MS; each down hook starts when its tunnel is gone, as after a normal
   *  close. Every phase is logged with the time it took. */
  shutdown(graceMs: number, done: (clean: boolean) => void): void {
    if (this.stopping) return;
    this.stopping = true;
    const t0 = this.loop.now();
    const ms = (): number => Math.round(this.loop.now() - t0);
    this.flushSends();
    this.sharedRoutes.clear();
    for (const [key, fd] of this.listeners) {
      this.unwatchSocket(fd);
      this.native.close(fd);
      this.listeners.delete(key);
    }
    if (this.timer !== null) this.loop.cancelTimer(this.timer);
    this.timer = null;
    this.deadline?.stop();
    this.timerAt = Infinity;
    const hooksBefore = { started: this.jobs.startedCount, killed: this.jobs.killedCount };
    const actions = this.core.shutdown(t0);
    const sends = actions.filter((a) => a.type === 'send');
    this.run(sends);
    const told = sends.length;
    const toldMs = ms();
    const teardowns: number[] = [];
    const held = new Map<number, Action[]>();
    for (const a of actions) {
      if (a.type === 'send') continue;
      if (a.type === 'teardown') teardowns.push(a.tunnelId);
      else if (a.type === 'run' && a.afterKernel !== undefined) {
        const list = held.get(a.afterKernel);
        if (list) list.push(a);
        else held.set(a.afterKernel, [a]);
      } else this.run([a]);
    }
    const removal = this.removeKernelTunnels(teardowns);
    this.loop.log('info', `shutdown: told ${told} clients (ERROR 0x02) after ${toldMs} ms; deleted ${teardowns.length} ` +
      `kernel tunnels (${removal.deleteMs} ms) and closed their sockets (${removal.closeMs} ms) after ${ms()} ms; ` +
      `${this.jobs.pending} hooks queued, ` +
      `${[...held.values()].reduce((n, l) => n + l.length, 0)} down hooks wait for the kernel to remove their interfaces ` +
      `(hooks.max_concurrent ${this.jobs.maxRunningJobs})`);

    let finished = false;
    let pollTimer: unknown = null;
    const pending = new Set(teardowns);
    const release = (id: number): void => {
      pending.delete(id);
      const list = held.get(id);
      held.delete(id);
      if (list) this.run(list);
    };
    const hooksText = (): string => {
      const started = this.jobs.startedCount - hooksBefore.started;
      const killed = this.jobs.killedCount - hooksBefore.killed;
      return `${started} hooks run (at most ${this.jobs.peakRunning} at once)${killed ? `, ${killed} killed at their timeout` : ''}`;
    };
    const finish = (clean: boolean): void => {
      if (finished) return;
      finished = true;
      this.loop.cancelTimer(guard);
      if (pollTimer !== null) this.loop.cancelTimer(pollTimer);
      if (clean) this.loop.log('info', `shutdown: hooks finished after ${ms()} ms; ${hooksText()}`);
      done(clean);
    };
    // counted from the signal: the synchronous part above may have taken seconds already
    const guard = this.loop.setTimer(Math.max(0, graceMs - ms()), () => {
      if (finished) return;
      const notRun = [...held.values()].reduce((n, l) => n + l.length, 0) +
        [...this.barriers.values()].reduce((n, b) => n + b.held.length, 0);
      const { running, dropped } = this.jobs.abandon();
      this.loop.log('warning', `shutdown: still busy after ${Math.round(graceMs / 1000)} s: ${running} hooks killed, ` +
        `${dropped + notRun} never run${pending.size ? `, ${pending.size} kernel tunnels not yet removed` : ''}; ` +
        `${hooksText()}; exiting`);
      finish(false);
    });
    const kernelDone = (): void => {
      this.loop.log('info', `shutdown: the kernel removed all ${teardowns.length} tunnels after ${ms()} ms ` +
        `(${dumps.count} dumps of its tunnel list, ${Math.round(dumps.ms)} ms); ${this.jobs.pending} hook jobs to finish`);
      // the worker's teardowns of tunnels closed before the shutdown release their down hooks
      // when they are answered
      this.whenKernelIdle(() => this.jobs.whenIdle(() => finish(true)));
    };
    let interval = SHUTDOWN_POLL_MS;
    const dumps = { count: 0, ms: 0, last: -Infinity };
    const poll = (): void => {
      pollTimer = null;
      if (finished) return;
      const started = this.loop.now();
      // while a full round of hooks (hooks.max_concurrent) waits for a slot, every slot that
      // frees is taken without us and a down hook released now could not start sooner: the dump
      // (broker and kernel CPU that the hooks, the critical path, could use) is skipped, for up
      // to SHUTDOWN_POLL_MAX_MS
      const waiting = this.jobs.pending - this.jobs.runningCount;
      if (waiting >= this.jobs.maxRunningJobs && started - dumps.last < SHUTDOWN_POLL_MAX_MS) {
        pollTimer = this.loop.setTimer(SHUTDOWN_POLL_MS, poll);
        return;
      }
      dumps.last = started;
      dumps.count++;
      const listed = this.kernel.listTunnels();
      dumps.ms += this.loop.now() - started;
      if (typeof listed === 'number') {
        this.loop.log('warning', `shutdown: cannot list kernel L2TP tunnels (${this.errText(-listed)}); ` +
          `starting the ${held.size} waiting down hooks now`);
        for (const id of [...pending]) release(id);
      } else {
        const still = new Set<number>();
        for (const t of listed) if (pending.has(t.tunnelId)) still.add(t.tunnelId);
        for (const id of [...pending]) if (!still.has(id)) release(id);
      }
      if (pending.size === 0) return kernelDone();
      // a dump of many tunnels takes a while: spend at most a third of the time on it, but look
      // at least once a second (each poll releases the down hooks of the tunnels gone)
      interval = Math.min(SHUTDOWN_POLL_MAX_MS, Math.max(SHUTDOWN_POLL_MS, 3 * (this.loop.now() - started)));
      pollTimer = this.loop.setTimer(interval, poll);
    };
    if (pending.size === 0) kernelDone();
    else pollTimer = this.loop.setTimer(interval, poll);
  }

  /** Calls cb once no kernel operation on the worker is unanswered (at once without one). */
  private whenKernelIdle(cb: () => void): void {
    if (this.barriers.size === 0) return cb();
    this.onKernelIdle = () => {
      this.onKernelIdle = null;
      cb();
    };
  }

  /** Shutdown teardown of many tunnels at once: pipelined TUNNEL_DELETEs (no SESSION_DELETE:
   *  the kernel closes a deleted tunnel's sessions itself), then the sockets closed. A failed
   *  delete is logged (one line for all); the closed socket still takes the tunnel with it. */
  private removeKernelTunnels(ids: number[]): { deleteMs: number; closeMs: number } {
    if (ids.length === 0) return { deleteMs: 0, closeMs: 0 };
    // a setup still on the worker is undone when it answers (the poll waits for that too)
    for (const id of ids) {
      const setup = this.setupsOnWorker.get(id);
      if (setup) setup.cancelled = true;
    }
    const t0 = this.loop.now();
    const failed = this.deleteKernelTunnels(ids);
    const t1 = this.loop.now();
    for (const id of ids) {
      const fd = this.releaseTunnelSocket(id);
      if (fd !== undefined) this.native.close(fd);
    }
    const t2 = this.loop.now();
    if (failed.length) {
      this.loop.log('warning', `shutdown: TUNNEL_DELETE failed for ${failed.length} tunnels: ${firstFew(failed)}; ` +
        'their sockets are closed, which removes them too');
    }
    return { deleteMs: Math.round(t1 - t0), closeMs: Math.round(t2 - t1) };
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

  /** Turns on the listener's receive timestamps (overload.ts: requests are aged by them); the
   *  text for the "listening on" line when that is not possible. */
  private rxTimestamps(fd: number): string {
    if (!this.reader || typeof this.native.setRxTimestamps !== 'function') return '';
    const r = this.native.setRxTimestamps(fd);
    return r < 0 ? `, no receive timestamps (${this.native.strerror(-r)}): requests are not aged` : '';
  }

  /** Executes actions (and whatever the core answers to their results) in order. `now`: the
   *  caller's clock reading, if it has one. Inside a batch the timer is re-armed once at its end. */
  run(actions: Action[], now?: number): void {
    if (!this.queue.run(actions) || this.inBatch) return;
    this.flushSends();
    this.reschedule(now);
  }

  private execute(a: Action): void {
    if (a.type !== 'send' && a.type !== 'log') this.flushSends();
    switch (a.type) {
      case 'log':
        this.loop.log(a.level, a.message);
        return;
      case 'send':
        return this.send(a.socket, a.data, a.to, a.shared);
      case 'setup':
        if (this.worker) return this.setupOnWorker(a.setup, this.worker);
        return this.run(this.core.setupResult(a.setup.tunnelId, this.setup(a.setup), this.loop.now()));
      case 'setMtu': {
        if (this.worker) return this.setMtuOnWorker(a, this.worker);
        const link = this.kernel.setLinkMtu(a.ifname, a.mtu);
        if (link < 0) this.loop.log('warning', `tunnel ${a.tunnelId}: setting MTU ${a.mtu} on ${a.ifname} failed: ${this.errText(-link)}`);
        // kernels >= 4.17 ignore the session MTU attribute; older ones want it
        const s = this.kernel.setSessionMtu(a.tunnelId, a.sessionId, a.mtu);
        if (s < 0) this.loop.log('debug', `tunnel ${a.tunnelId}: SESSION_MODIFY mtu ${a.mtu}: ${this.errText(-s)}`);
        return;
      }
      case 'teardown':
        if (this.worker) return this.teardownOnWorker(a.tunnelId, a.sessionId, this.worker);
        return this.teardown(a.tunnelId, a.sessionId);
      case 'run': {
        const barrier = a.afterKernel === undefined ? undefined : this.barriers.get(a.afterKernel);
        if (barrier) barrier.held.push(a.job);
        else this.jobs.submit(a.job);
        return;
      }
    }
  }

  // --- the netlink worker: the same steps as setup/teardown/setMtu, answered later ---

  /** Submits op for tunnelId: jobs marked afterKernel for it wait until every one submitted so
   *  far is answered. */
  private kernelOp(worker: BrokerKernelWorker, tunnelId: number, op: AckOp, cb: KernelCallback): void {
    let b = this.barriers.get(tunnelId);
    if (!b) this.barriers.set(tunnelId, b = { ops: 0, held: [] });
    b.ops++;
    worker.submit(op, (r, problem) => {
      try {
        cb(r, problem);
      } finally {
        if (--b!.ops === 0 && this.barriers.get(tunnelId) === b) {
          this.barriers.delete(tunnelId);
          for (const job of b!.held) this.jobs.submit(job);
          if (this.barriers.size === 0 && this.onKernelIdle) this.onKernelIdle();
        }
      }
    });
  }

  /** setup() on the worker: the socket now, TUNNEL_CREATE, then SESSION_CREATE when that
   *  succeeded (never a session in a tunnel that is not ours), then the result to the core. */
  private setupOnWorker(s: TunnelSetup, worker: BrokerKernelWorker): void {
    const report = (r: SetupResult): void => {
      this.setupsOnWorker.delete(s.tunnelId);
      this.run(this.core.setupResult(s.tunnelId, r, this.loop.now()));
    };
    const address = s.address ?? listenAddresses(this.cfg)[0];
    const fd = this.boundSocket(address, s.port, s.client);
    if (typeof fd !== 'number') return report({ ok: false, stage: 'socket', errno: fd.errno, error: fd.text });
    const state = { cancelled: false };
    this.setupsOnWorker.set(s.tunnelId, state);
    const cancelled: SetupResult = { ok: false, stage: 'session', errno: this.native.errno.EINTR, error: 'closed during setup' };
    // the kernel tunnel is removed with its socket as well; the explicit delete goes first
    const undo = (): void => this.kernelOp(worker, s.tunnelId, { op: 'deleteTunnel', tunnelId: s.tunnelId }, (d, problem) => {
      if (d < 0 && !this.gone(d)) {
        this.loop.log('warning', `tunnel ${s.tunnelId}: undoing a kernel tunnel: ${this.errText(-d, problem)}; closing its socket removes it`);
      }
      this.native.close(fd);
    });
    this.kernelOp(worker, s.tunnelId, { op: 'createTunnel', tunnel: { tunnelId: s.tunnelId, peerTunnelId: s.peerTunnelId, fd } }, (t, tp) => {
      if (t < 0) {
        // EAGAIN (no ACK read): the tunnel may exist; its socket takes it along
        this.native.close(fd);
        return report(state.cancelled ? cancelled : { ok: false, stage: 'tunnel', errno: -t, error: this.errText(-t, tp) });
      }
      if (state.cancelled) {
        undo();
        return report(cancelled);
      }
      const session = { tunnelId: s.tunnelId, sessionId: s.sessionId, peerSessionId: s.peerSessionId, ifname: s.ifname };
      this.kernelOp(worker, s.tunnelId, { op: 'createSession', session }, (sr, sp) => {
        if (sr < 0 || state.cancelled) {
          undo();
          return report(state.cancelled ? cancelled : { ok: false, stage: 'session', errno: -sr, error: this.errText(-sr, sp) });
        }
        this.adoptTunnelSocket(s, address, fd);
        report({ ok: true });
      });
    });
  }

  /** teardown() on the worker: nothing more is read or sent on the socket from now; SESSION_DELETE
   *  (returns once the interface is unregistered), TUNNEL_DELETE, then the socket is closed and
   *  the down hook (afterKernel) starts. A setup still on the worker is undone when it answers. */
  private teardownOnWorker(tunnelId: number, sessionId: number, worker: BrokerKernelWorker): void {
    const setup = this.setupsOnWorker.get(tunnelId);
    if (setup) {
      setup.cancelled = true;
      return;
    }
    const fd = this.releaseTunnelSocket(tunnelId);
    this.kernelOp(worker, tunnelId, { op: 'deleteSession', tunnelId, sessionId }, (r, problem) => {
      if (r < 0) this.loop.log('warning', `tunnel ${tunnelId}: deleting kernel session ${sessionId} failed: ${this.errText(-r, problem)}`);
    });
    this.kernelOp(worker, tunnelId, { op: 'deleteTunnel', tunnelId }, (r, problem) => {
      if (r < 0 && !this.gone(r)) this.loop.log('debug', `tunnel ${tunnelId}: deleting kernel tunnel: ${this.errText(-r, problem)}`);
      if (fd !== undefined) this.native.close(fd);
    });
  }

  private setMtuOnWorker(a: Action & { type: 'setMtu' }, worker: BrokerKernelWorker): void {
    this.kernelOp(worker, a.tunnelId, { op: 'setLinkMtu', ifname: a.ifname, mtu: a.mtu }, (r, problem) => {
      if (r < 0) this.loop.log('warning', `tunnel ${a.tunnelId}: setting MTU ${a.mtu} on ${a.ifname} failed: ${this.errText(-r, problem)}`);
    });
    // kernels >= 4.17 ignore the session MTU attribute; older ones want it
    this.kernelOp(worker, a.tunnelId, { op: 'setSessionMtu', tunnelId: a.tunnelId, sessionId: a.sessionId, mtu: a.mtu }, (r, problem) => {
      if (r < 0) this.loop.log('debug', `tunnel ${a.tunnelId}: SESSION_MODIFY mtu ${a.mtu}: ${this.errText(-r, problem)}`);
    });
  }

  private send(socket: SocketRef, data: Uint8Array, to: Endpoint, shared = false): void {
    let n: number;
    if (socket.kind === 'listener') {
      const fd = this.listeners.get(this.listenerKeyOf(socket));
      if (fd === undefined) return;
      this.flushSends(); // what the drain sent before goes out before
      n = this.native.sendTo(fd, data, to.ip, to.port);
    } else {
      const fd = this.tunnelFds.get(socket.tunnelId);
      if (fd === undefined) return;
      if (this.sender) {
        const route = shared ? this.sharedRoutes.get(socket.tunnelId) : undefined;
        const outFd = route ? route.fd : fd;
        if (outFd !== this.outFd) this.flushSends();
        this.outFd = outFd;
        this.outbox.push(data);
        this.outSockets.push(socket);
        this.outRoutes.push(route);
        return;
      }
      n = this.native.send(fd, data);
    }
    this.sent(socket, n);
  }

  /** The result of one send: errors other than EAGAIN go to the core. */
  private sent(socket: SocketRef, n: number): void {
    if (n >= 0) return;
    if (n === -this.native.errno.EAGAIN) {
      this.core.counters.add('send-dropped-eagain');
      return;
    }
    for (const a of this.core.socketError(socket, -n, this.native.strerror(-n), this.loop.now())) this.queue.push(a);
  }

  /** Sends what the outbox holds (see outbox), then drains what the core answered to errors,
   *  which may queue sends again. */
  private flushSends(): void {
    while (this.outbox.length > 0) {
      const fd = this.outFd;
      const items = this.outbox.splice(0);
      const sockets = this.outSockets.splice(0);
      const routes = this.outRoutes.splice(0);
      // one outbox is all on a tunnel's socket or all through a listener (different fds)
      const dests = routes[0] ? routes.map((r) => r!.dest) : null;
      for (let i = 0; i < items.length;) {
        let n = 0;
        if (items.length - i > 1) {
          const rest = i === 0 ? items : items.slice(i);
          n = dests ? this.sender!.sendBatchTo!(fd, rest, i === 0 ? dests : dests.slice(i)) : this.sender!.sendBatch(fd, rest);
        }
        if (n > 0) {
          i += n;
          continue;
        }
        // one alone (or the one a batch stopped at): its own result, error handling as ever
        const route = routes[i];
        this.sent(sockets[i], route ? this.native.sendTo(fd, items[i], route.to.ip, route.to.port) : this.native.send(fd, items[i]));
        i++;
      }
      if (this.queue.length > 0) this.queue.run([]);
    }
  }

  /** Tunnel socket + kernel tunnel + session. Cleans up after itself on failure. */
  private setup(s: TunnelSetup): SetupResult {
    const address = s.address ?? listenAddresses(this.cfg)[0];
    const fd = this.boundSocket(address, s.port, s.client);
    if (typeof fd !== 'number') return { ok: false, stage: 'socket', errno: fd.errno, error: fd.text };
    const fail = (stage: 'tunnel' | 'session', r: number): SetupResult => {
      const error = this.errText(-r);
      // undo what may exist: after a failed session, the tunnel; after a timeout (EAGAIN, no
      // reply within 2 s: it may still come), the tunnel too. Closing the socket destroys a
      // kernel tunnel made on it as well; the explicit delete does not wait for that.
      if (stage === 'session' || r === -this.native.errno.EAGAIN) {
        const d = this.kernel.deleteTunnel(s.tunnelId);
        if (d < 0 && !this.gone(d)) {
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
    this.adoptTunnelSocket(s, address, fd);
    return { ok: true };
  }

  /** A set-up tunnel's socket: sent on, read (and routed through its listener) from now on. */
  private adoptTunnelSocket(s: TunnelSetup, address: string, fd: number): void {
    this.tunnelFds.set(s.tunnelId, fd);
    const route = this.sender?.sendBatchTo ? sharedRoute(address, this.listeners.get(listenerKey(address, s.port)), s.client) : undefined;
    if (route) this.sharedRoutes.set(s.tunnelId, route);
    this.watchSocket(fd, { kind: 'tunnel', tunnelId: s.tunnelId }, s.client);
  }

  /** A closing tunnel's socket: nothing more is sent or read on it; its fd (to close), if any. */
  private releaseTunnelSocket(tunnelId: number): number | undefined {
    const fd = this.tunnelFds.get(tunnelId);
    this.sharedRoutes.delete(tunnelId);
    if (fd === undefined) return undefined;
    this.unwatchSocket(fd);
    this.tunnelFds.delete(tunnelId);
    return fd;
  }

  private teardown(tunnelId: number, sessionId: number): void {
    const sr = this.kernel.deleteSession(tunnelId, sessionId);
    if (sr < 0) this.loop.log('warning', `tunnel ${tunnelId}: deleting kernel session ${sessionId} failed: ${this.errText(-sr)}`);
    const fd = this.releaseTunnelSocket(tunnelId);
    // closing the socket also destroys the kernel tunnel; delete it explicitly all the same
    const tr = this.kernel.deleteTunnel(tunnelId);
    if (tr < 0 && !this.gone(tr)) {
      this.loop.log('debug', `tunnel ${tunnelId}: deleting kernel tunnel: ${this.errText(-tr)}`);
    }
    if (fd !== undefined) this.native.close(fd);
  }

  /** A UDP socket of the address's family (IPv6: V6ONLY) with SO_REUSEPORT + SO_BINDTODEVICE
   *  bound to address:port; connected to `peer` with IP(V6)_MTU_DISCOVER=PROBE when given.
   *  Returns the fd or what failed. */
  private boundSocket(address: string, port: number, peer?: Endpoint): number | { text: string; errno: number } {
    const family = ipFamily(address) ?? 4;
    const fd = this.native.udpSocket(family);
    if (fd < 0) return { text: `socket: ${this.native.strerror(-fd)}`, errno: -fd };
    const steps: [string, () => number][] = [
      ['SO_REUSEPORT', () => this.native.setReusePort(fd)],
      [`SO_BINDTODEVICE ${this.cfg.interface}`, () => this.native.bindToDevice(fd, this.cfg.interface)],
      ['bind', () => this.native.bind(fd, address, port)],
    ];
    if (peer) {
      steps.push(['connect', () => this.native.connect(fd, peer.ip, peer.port)]);
      steps.push([family === 6 ? 'IPV6_MTU_DISCOVER' : 'IP_MTU_DISCOVER', () => this.native.setPmtuProbe(fd)]);
    }
    for (const [what, step] of steps) {
      const r = step();
      if (r < 0) {
        this.native.close(fd);
        return { text: `${what}: ${this.native.strerror(-r)}`, errno: -r };
      }
    }
    return fd;
  }

  private readable(socket: SocketRef, fd: number): void {
    const stillOpen = (): boolean =>
      socket.kind === 'listener' ? this.listeners.get(this.listenerKeyOf(socket)) === fd : this.tunnelFds.get(socket.tunnelId) === fd;
    // one clock reading per wake-up (clock_gettime is a syscall where the vDSO cannot be used)
    const now = this.loop.now();
    for (let i = 0; i < READ_BURST && stillOpen(); i++) {
      const from: Endpoint = { ip: '', port: 0 };
      const n = this.native.recvFrom(fd, this.buf, from);
      if (n === -this.native.errno.EAGAIN) break;
      if (n === -this.native.errno.EINTR) continue;
      try {
        if (n < 0) this.run(this.core.socketError(socket, -n, this.native.strerror(-n), now), now);
        else this.run(this.core.datagram(socket, this.buf.subarray(0, n), from, now), now);
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
  private reschedule(now?: number): void {
    if (this.stopping) return;
    const at = this.core.nextDeadline();
    if (this.deadline) {
      // the runtime's re-armable timer: moved to the next deadline, later ones too (a read that
      // served the deadlines ahead of it leaves no wake-up behind), armed relative to the
      // turn's clock, as libuv arms it
      if (at === this.timerAt) return;
      this.timerAt = at;
      if (Number.isFinite(at)) this.deadline.arm(at - this.turnNow());
      else this.deadline.stop();
      return;
    }
    if (this.timer !== null && this.timerAt <= at) return;
    if (this.timer !== null) this.loop.cancelTimer(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    // +1: timers may fire up to 1 ms early relative to performance.now()
    this.timer = this.loop.setTimer(Math.max(0, at - (now ?? this.loop.now())) + 1, () => {
      this.timer = null;
      this.timerAt = Infinity;
      this.tick(this.loop.now());
    });
  }

  /** The clock of this loop turn (no clock read where the runtime has it). */
  private turnNow(): number {
    return this.loop.turnNow ? this.loop.turnNow() : this.loop.now();
  }

  /** Runs the core's deadlines due at `now` (within aheadMs after it when given, else the
   *  core's slack); a bug in the core is counted and logged, not thrown. */
  private tick(now: number, aheadMs?: number): void {
    let actions: Action[] = [];
    try {
      actions = this.core.tick(now, aheadMs);
    } catch (e) {
      this.core.counters.add('internal-errors');
      this.loop.log('error', `internal error in the timer tick: ${oneLine(e)}`);
    }
    this.run(actions, now);
  }

  /** Starts reading fd: through the batch reader when there is one, else its own callback. */
  private watchSocket(fd: number, ref: SocketRef, peer?: Endpoint): void {
    if (!this.reader) {
      this.loop.onReadable(fd, () => this.readable(ref, fd));
      return;
    }
    this.fdSockets.set(fd, { ref, peer, peer4: peer ? ipv4Number(peer.ip) : NaN });
    this.closedInBatch.delete(fd);
    // a tunnel's datagrams (keepalives, PMTU probes) can wait for the read interval; the
    // listeners' handshakes cannot
    const r = this.reader.watch(fd, ref.kind === 'tunnel');
    if (r < 0) this.loop.log('error', `cannot watch file descriptor ${fd} (${this.native.strerror(-r)}); it will not be read`);
  }

  private unwatchSocket(fd: number): void {
    if (!this.reader) {
      this.loop.onReadable(fd, null);
      return;
    }
    this.fdSockets.delete(fd);
    if (this.inBatch) this.closedInBatch.add(fd);
    this.reader.unwatch(fd);
  }

  /** The datagrams of all sockets that were readable in one loop turn, read by the runtime:
   *  one clock reading and one timer re-arm for the lot. The listeners' COOKIE and USAGE
   *  requests come last (overload.ts): the PREPAREs of the same batch, whose cookies are out
   *  already, are served first, and a request the tunnel creations before it made too old is
   *  dropped. A listener datagram is handed its age (receive queue + time since the read) and a
   *  clock reading of its own: tunnel creations in the same batch take time. */
  private onBatch(b: DatagramBatch): void {
    const now = this.turnNow();
    let deferred = 0;
    let tunnelItems = 0;
    this.inBatch = true;
    try {
      for (let i = 0; i < b.count; i++) {
        const s = this.fdSockets.get(b.fd(i));
        if (s !== undefined && s.ref.kind === 'listener' && b.result(i) > 0 && !b.truncated(i) && deferrableRequest(b.data(i))) {
          deferred++;
          continue;
        }
        if (s !== undefined && s.ref.kind === 'tunnel') tunnelItems++;
        this.batchItem(b, i, now, false);
      }
      for (let i = 0; deferred > 0 && i < b.count; i++) {
        const s = this.fdSockets.get(b.fd(i));
        if (s === undefined || s.ref.kind !== 'listener' || b.result(i) <= 0 || b.truncated(i) || !deferrableRequest(b.data(i))) continue;
        deferred--;
        this.batchItem(b, i, now, true);
      }
    } finally {
      this.inBatch = false;
      this.closedInBatch.clear();
    }
    // The tunnel sockets are read at most every deferMs, and while traffic lasts that read is
    // the broker's steady wake-up: the deadlines (keepalives) due before the next one are served
    // in this one, each as of its own deadline, so a keepalive does not cost a wake-up of its own.
    const ahead = this.reader?.deferMs ?? 0;
    if (ahead > 0 && tunnelItems > 0 && this.core.nextDeadline() <= now + ahead) this.tick(now, ahead);
    this.flushSends();
    this.reschedule(now);
  }

  private batchItem(b: DatagramBatch, i: number, batchAt: number, fresh: boolean): void {
    const fd = b.fd(i);
    const s = this.fdSockets.get(fd);
    if (s === undefined || this.closedInBatch.has(fd)) return;
    const n = b.result(i);
    try {
      if (n < 0) {
        if (n !== -this.native.errno.EAGAIN && n !== -this.native.errno.EINTR) {
          this.run(this.core.socketError(s.ref, -n, this.native.strerror(-n), batchAt));
        }
      } else if (b.truncated(i)) {
        // longer than any Tunneldigger message (DGRAM_SLOT_BYTES): cut, so not parsed
        this.core.counters.add('drop-oversized');
      } else if (s.ref.kind === 'listener') {
        const t = fresh || i > 0 ? this.loop.now() : batchAt;
        const queued = b.queuedMs(i);
        this.run(this.core.datagram(s.ref, b.data(i), this.source(s, b, i), t, queued < 0 ? -1 : queued + (t - batchAt)));
      } else {
        this.run(this.core.datagram(s.ref, b.data(i), this.source(s, b, i), batchAt));
      }
    } catch (e) {
      this.core.counters.add('internal-errors');
      this.loop.log('error', `internal error on a datagram: ${oneLine(e)}`);
    }
  }

  /** Datagram i's source: a tunnel's own peer object when it is from there (no allocation;
   *  a connected socket gets nothing else), else a new Endpoint. */
  private source(s: WatchedSocket, b: DatagramBatch, i: number): Endpoint {
    if (s.peer && b.port(i) === s.peer.port && b.ipv4(i) === s.peer4) return s.peer;
    return b.family(i) === 6 ? { ip: b.ip(i), port: b.port(i), family: 6 } : { ip: b.ip(i), port: b.port(i) };
  }

  private listenerKeyOf(socket: SocketRef & { kind: 'listener' }): string {
    return listenerKey(socket.address ?? listenAddresses(this.cfg)[0], socket.port);
  }

  /** strerror, with what was wrong when known: the worker's problem text of that call, or the
   *  synchronous executor's last one for an EINVAL. */
  private errText(errno: number, problem = errno === this.native.errno.EINVAL ? this.kernel.lastProblem : ''): string {
    const text = this.native.strerror(errno);
    return problem ? `${text} (${problem})` : text;
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  get tunnelSocketCount(): number {
    return this.tunnelFds.size;
  }
}

function listenerKey(address: string, port: number): string {
  return `${address}|${port}`;
}

interface WatchedSocket {
  ref: SocketRef;
  /** A tunnel socket's connected peer and its IPv4 address as a number (NaN otherwise). */
  peer?: Endpoint;
  peer4: number;
}

/** An exception as one log line (stack frames joined with " | "). */
function oneLine(e: unknown): string {
  return (e instanceof Error ? e.stack ?? e.message : String(e)).replace(/\n\s*/g, ' | ');
}

/** The first five items of a list for a log line, "..." for the rest. */
function firstFew(items: string[]): string {
  return items.slice(0, 5).join(', ') + (items.length > 5 ? ', ...' : '');
}

/** Sorted ids as ranges: "100-199, 250". */
function idRanges(ids: number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; i++) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j;
  }
  return parts.length > 8 ? `${parts.slice(0, 8).join(', ')}, ...` : parts.join(', ');
}
