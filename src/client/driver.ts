// Executes the client core's actions with Native (sockets, resolver, spawn), the netlink
// executor and a Loop (fd readiness, timers, signals). Runtime-neutral: runs on QuickJS and Node.
import type { Native } from '../native.js';
import type { NetlinkKernel } from '../netlink/kernel.js';
import { Supervisor } from '../process/supervisor.js';
import { timers } from '../protocol/constants.js';
import { ActionQueue } from '../runtime/action-queue.js';
import type { Loop } from '../runtime/loop.js';
import { type Family, addressFamily } from '../protocol/endpoint.js';
import { formatHostPort } from '../protocol/ip-address.js';
import type { Action } from './actions.js';
import type { Client } from './client.js';
import type { Logger } from './log.js';
import { isIpv4Literal, isPortNumber } from './options.js';

export type ClientKernel = Pick<
  NetlinkKernel,
  | 'resolveL2tpFamily' | 'createTunnel' | 'deleteTunnel' | 'createSession' | 'deleteSession'
  | 'setSessionMtu' | 'setLinkMtu' | 'setLinkUp' | 'getLink'
>;

export interface DriverOptions {
  /** null: the wildcard of each socket's family. */
  bindIp: string | null;
  bindDevice: string | null;
}

/** Retry interval while the l2tp generic netlink family is missing. */
export const KERNEL_RETRY_MS = 5_000;
const SIGHUP = 1;
const SIGINT = 2;
const SIGTERM = 15;

export class ClientDriver {
  /** Sockets per broker, [IPv4, IPv6] (-1: none), and the generation of the last 'open' per
   *  broker. */
  private readonly socks: number[][];
  private readonly gens: number[];
  /** Hooks are not waited for, but reaped (no zombies) and killed after the hook timeout. */
  private readonly hooks: Supervisor;
  /** The receive buffer, and a view of its first `viewLen` bytes, made again only when the
   *  length changes (a tunnel's control traffic is mostly 12-byte keepalives). */
  private readonly buf = new Uint8Array(2048);
  private view = this.buf.subarray(0, 0);
  /** An exception from exec propagates and leaves the rest queued (no handler). */
  private readonly queue = new ActionQueue<Action>((x) => this.exec(x));
  private started = false;
  /** The one core timer: its handle and deadline (Infinity: none armed). */
  private timer: unknown = null;
  private timerAt = Infinity;
  /** Its callback, made once (a closure per timer armed costs more than the tick it runs). */
  private readonly onTimer = (): void => {
    this.timer = null;
    this.timerAt = Infinity;
    this.run(this.core.tick(this.loop.now()));
  };

  constructor(
    private readonly core: Client,
    private readonly native: Native,
    private readonly loop: Loop,
    private readonly kernel: ClientKernel,
    private readonly opts: DriverOptions,
    private readonly log: Logger,
  ) {
    this.socks = core.ctxs.map(() => [-1, -1]);
    this.gens = core.ctxs.map(() => 0);
    this.hooks = new Supervisor(native, loop);
  }

  private err(rc: number): string {
    return this.native.strerror(-rc);
  }

  /** Waits for the l2tp netlink family, then starts the core and its timer. */
  start(): void {
    const stop = (): void => this.run(this.core.shutdown());
    this.loop.onSignal(SIGTERM, stop);
    this.loop.onSignal(SIGINT, stop);
    // SIGHUP (terminal hangup, or an operator asking for a new selection): close cleanly and
    // reconnect instead of dying without clean-up (the original's default action)
    this.loop.onSignal(SIGHUP, () => this.run(this.core.reconnect(this.loop.now())));
    // as the broker: SIGUSR1 logs the counters
    this.loop.onSignal(this.native.signals.SIGUSR1, () => this.log('info', this.core.countersLine()));
    let warned = false;
    const attempt = (): void => {
      const fam = this.kernel.resolveL2tpFamily();
      if (fam < 0) {
        if (!warned) {
          this.log('error', `kernel L2TP netlink interface unavailable (${this.err(fam)}; are l2tp_core, l2tp_netlink and l2tp_eth loaded?), retrying every ${KERNEL_RETRY_MS / 1000} s`);
        }
        warned = true;
        this.loop.setTimer(KERNEL_RETRY_MS, attempt);
        return;
      }
      if (warned) this.log('info', 'kernel L2TP netlink interface available now, starting');
      this.started = true;
      this.run(this.core.start(this.loop.now()));
    };
    attempt();
  }

  /** Executes actions in order; completions reported to the core append to the same queue. */
  run(actions: Action[]): void {
    if (this.queue.run(actions)) this.arm();
  }

  /** After every action batch: one timer for the core's next deadline, re-armed only when the
   *  deadline moved (no periodic wake-ups; an idle tunnel wakes for its keepalives). */
  private arm(): void {
    if (!this.started) return;
    const at = this.core.nextDeadline();
    if (at === this.timerAt) return;
    if (this.timer !== null) this.loop.cancelTimer(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (at === Infinity) return;
    // at least 1 ms: the loop's clock is ms-granular, a 0 ms timer could fire before `at`
    const ms = at - this.loop.now();
    this.timer = this.loop.setTimer(ms > 1 ? ms : 1, this.onTimer);
  }

  private exec(x: Action): void {
    const n = this.native;
    switch (x.a) {
      // first: the one action of a tunnel's normal life (keepalives), compared with fewer cases
      case 'send': {
        const fd = this.socks[x.b][slot(x.fam)];
        if (fd < 0) return;
        const rc = n.send(fd, x.data);
        if (rc >= 0 || x.quiet) return;
        if (rc === -n.errno.EINVAL) this.run(this.core.sendFailed(x.b, this.err(rc), this.loop.now(), x.fam));
        else this.log('debug', `${this.core.ctxs[x.b].name}: send failed: ${this.err(rc)}`);
        return;
      }
      case 'log':
        return this.log(x.level, x.msg);
      case 'open':
        return this.open(x.b, x.gen, x.host, x.port);
      case 'connect':
        return this.connect(x.b, x.gen, x.fam, x.ip, x.port);
      case 'close':
        if (x.fam) return this.closeSocket(x.b, x.fam);
        this.closeSocket(x.b, 4);
        return this.closeSocket(x.b, 6);
      case 'setup': {
        const k = this.kernel;
        let rc = k.createTunnel({ tunnelId: x.tunnelId, peerTunnelId: x.peerTunnelId, fd: this.socks[x.b][slot(x.fam)] });
        let error: string | null = null;
        if (rc < 0) error = `creating kernel tunnel ${x.tunnelId} failed: ${this.err(rc)}`;
        else if ((rc = k.createSession({ tunnelId: x.tunnelId, sessionId: x.sessionId, peerSessionId: x.peerSessionId, ifname: x.ifname })) < 0) {
          error = `creating kernel session ${x.sessionId} (interface ${x.ifname}) failed: ${this.err(rc)}`;
          k.deleteTunnel(x.tunnelId);
        }
        return this.run(this.core.setupDone(x.b, error, this.loop.now()));
      }
      case 'teardown': {
        const k = this.kernel;
        const link = k.getLink(x.ifname);
        if (typeof link === 'object' && link.up) k.setLinkUp(x.ifname, false);
        for (const sid of x.sessionIds) k.deleteSession(x.tunnelId, sid);
        const rc = k.deleteTunnel(x.tunnelId);
        const { ENOENT, ENODEV } = this.native.errno;
        // ENODEV/ENOENT: nothing to remove (the usual case before a round)
        if (rc === 0) this.log('info', `removed kernel tunnel ${x.tunnelId} (${x.ifname})`);
        else if (rc !== -ENODEV && rc !== -ENOENT) this.log('warning', `could not remove kernel tunnel ${x.tunnelId}: ${this.err(rc)}`);
        return;
      }
      case 'mtu': {
        const k = this.kernel;
        const link = k.getLink(x.ifname);
        const old = typeof link === 'object' ? link.mtu : 0;
        const rc = k.setLinkMtu(x.ifname, x.mtu);
        // SESSION_MODIFY MTU is ignored by kernels >= 4.17; kept for older ones
        if (rc === 0) k.setSessionMtu(x.tunnelId, x.sessionId, x.mtu);
        return this.run(this.core.mtuDone(x.b, x.mtu, old, rc < 0 ? this.err(rc) : null, this.loop.now()));
      }
      case 'hook': {
        const what = `hook ${x.path} ${x.args.join(' ')}`;
        const pid = this.hooks.start({
          path: x.path, args: x.args, captureOutput: false, timeoutMs: timers.hookTimeout,
          // the hook runs in its own process group: the kill ends all of it
          onTimeout: () => this.log('warning', `${what} still running after ${timers.hookTimeout / 1000} s, killed`),
          onExit: (e) => {
            if (e.code !== 0 && !e.killed) this.log('warning', `${what} exited with status ${e.code}`);
          },
        });
        if (pid < 0) this.log('error', `${what} could not be started: ${this.err(pid)}`);
        return;
      }
      case 'exit':
        for (let b = 0; b < this.socks.length; b++) {
          this.closeSocket(b, 4);
          this.closeSocket(b, 6);
        }
        this.loop.exit(x.code);
    }
  }

  /** Resolves b's host:port (an address literal with a numeric port directly) and reports every
   *  address; sockets are made per address family by 'connect'. */
  private open(b: number, gen: number, host: string, port: string): void {
    const n = this.native;
    const done = (r: Parameters<Client['opened']>[2]): void => this.run(this.core.opened(b, gen, r, this.loop.now()));
    this.closeSocket(b, 4);
    this.closeSocket(b, 6);
    this.gens[b] = gen;
    // an address literal needs no resolver (and cannot time out in it); leading zeros in a
    // dotted quad are octal to getaddrinfo, so those still go through it
    const lit = addressFamily(host);
    if (isPortNumber(port) && (lit === 6 || (lit === 4 && isIpv4Literal(host)))) return done([{ ip: host, port: +port, family: lit }]);
    const rfd = n.resolveStart(host, port);
    if (rfd < 0) return done(`cannot start name resolution: ${this.err(rfd)}`);
    this.loop.onReadable(rfd, () => {
      const r = n.resolveFinish(rfd);
      if (r === -n.errno.EAGAIN) return;
      this.loop.onReadable(rfd, null);
      // a newer 'open' replaced this one: the answer is stale (the helper is reaped anyway)
      if (this.gens[b] !== gen) return;
      if (r === -n.errno.ENOENT) return done(`name ${host} does not resolve`);
      if (typeof r === 'number') return done(`cannot resolve ${host}:${port}: ${this.err(r)}`);
      done(r.all);
    });
  }

  /** A socket of family fam for b: -I, bind -l (or the family's wildcard), PMTU probe mode,
   *  connect, watched for datagrams. */
  private connect(b: number, gen: number, fam: Family, ip: string, port: number): void {
    const n = this.native;
    const done = (error: string | null): void => this.run(this.core.connected(b, gen, fam, error, this.loop.now()));
    const fail = (what: string, rc: number): void => done(`${what}: ${this.err(rc)}`);
    this.closeSocket(b, fam);
    const fd = n.udpSocket(fam);
    if (fd < 0) return fail(`cannot create a UDP socket for IPv${fam}`, fd);
    this.socks[b][slot(fam)] = fd;
    const local = this.opts.bindIp ?? (fam === 6 ? '::' : '0.0.0.0');
    let rc = this.opts.bindDevice ? n.bindToDevice(fd, this.opts.bindDevice) : 0;
    if (rc < 0) return fail(`cannot bind to device ${this.opts.bindDevice}`, rc);
    if ((rc = n.bind(fd, local, 0)) < 0) return fail(`cannot bind to ${local}`, rc);
    if ((rc = n.setPmtuProbe(fd)) < 0) return fail('cannot enable PMTU probing', rc);
    this.loop.onReadable(fd, () => this.receive(b, fam, fd));
    if ((rc = n.connect(fd, ip, port)) < 0) return fail(`cannot connect to ${formatHostPort(ip, port)}`, rc);
    done(null);
  }

  private closeSocket(b: number, fam: Family): void {
    const fd = this.socks[b][slot(fam)];
    if (fd < 0) return;
    this.loop.onReadable(fd, null);
    this.native.close(fd);
    this.socks[b][slot(fam)] = -1;
  }

  /** One datagram per readiness: poll() is level-triggered and reports the socket again while
   *  more is queued, so a lone keepalive costs one recv() instead of a second one that only
   *  says EAGAIN, and a busy socket cannot starve the loop. The socket is connected, so the
   *  sender is the broker: read() needs no source address to be converted to a string. */
  private receive(b: number, fam: Family, fd: number): void {
    const len = this.native.read(fd, this.buf);
    // EAGAIN (nothing after all) or an ICMP error (ECONNREFUSED...): the handshake retries anyway
    if (len < 0) return;
    if (this.view.length !== len) this.view = this.buf.subarray(0, len);
    this.run(this.core.feed(b, this.view, this.loop.now(), fam));
  }
}

/** Index of a family's socket in ClientDriver.socks[b]. */
function slot(fam: Family): 0 | 1 {
  return fam === 6 ? 1 : 0;
}
