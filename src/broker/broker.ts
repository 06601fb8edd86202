// BrokerCore: the sans-IO broker (spec §4.2). It is fed datagrams with the socket they came in
// on, setup results and socket errors, and tick(now); it returns actions for the driver. It owns
// the stateless listener logic (cookies, usage, PREPARE admission: rate limits, id pool), the
// tunnels (tunnel.ts) and the counters.
import type { Endpoint } from '../native.js';
import {
  BrokerErrorCode, FEATURES_MASK, FEATURE_UNIQUE_SESSION_ID, MessageType,
} from '../protocol/constants.js';
import { FineCookieJar, type Mac } from '../protocol/cookie.js';
import { formatHostPort, ipv6Prefix } from '../protocol/ip-address.js';
import {
  decodeFillerRequest, decodePrepare, encodeCookieReply, encodeError, encodeUsageReply, isFrame, parseFrame, utf8Decode,
  type Frame, type Prepare,
} from '../protocol/messages.js';
import type { LogLevel } from '../runtime/loop.js';
import type { Action, SetupResult, SocketRef } from './actions.js';
import { DEFAULT_IPV6_PREFIX, DEFAULT_RATE_LIMIT_BURST, type BrokerConfig } from './config.js';
import { Counters } from './counters.js';
import { DeadlineHeap } from './deadline-heap.js';
import { EndpointMemory } from './endpoint-memory.js';
import { fdBudget } from './fd-budget.js';
import { HIDDEN_IP, rateLimitHookJob } from './hooks.js';
import { IdPool } from './id-pool.js';
import { ATTEMPT_MS, OverloadAdmission } from './overload.js';
import { PortUsage, tieBreak } from './port-usage.js';
import { PrepareQueue } from './prepare-queue.js';
import { RateLimiter } from './rate-limiter.js';
import { fitReply } from './reply-size.js';
import { TokenBucket } from './token-bucket.js';
import { BrokerTunnel, log, type TunnelContext } from './tunnel.js';

export interface BrokerDeps {
  /** Secret cookie key (random per process) and its MAC (HMAC-SHA1 from the runtime). */
  key: Uint8Array;
  mac: Mac;
  /** Monotonic ms at broker start (cookie tick 0). */
  startMs: number;
  random: () => number;
  errno: { EEXIST: number; EMSGSIZE: number; EMFILE?: number; ENFILE?: number };
  tcPath: string;
  /** Whether a log line of this level is written (the driver's current level); log texts on
   *  per-datagram paths are built only then. Default: cfg.verbosity. */
  logEnabled?: (level: LogLevel) => boolean;
  /** Override of TIMER_SLACK_MS (tests). */
  timerSlackMs?: number;
}

const LEVEL_RANK: Record<LogLevel, number> = { error: 0, warning: 1, info: 2, debug: 3 };

const PRUNE_INTERVAL_MS = 60_000;
/** Counter name prefix of handshake messages by type (metrics.ts turns it into a label). */
export const HANDSHAKE_PREFIX = 'handshake:';
/** A refused client abandons that socket (the next attempt uses a new one), but PREPARE
 *  retransmits it sent before the ERROR may still wait in the listener's queue: for this long
 *  (a client attempt lasts at most 15 s) they are refused too, or they would create a tunnel
 *  nobody uses until its 120 s timeout (seen with 20 clients and a rate limit in the VM). */
const REFUSED_HOLD_MS = 15_000;
/** A client that still keeps alive a tunnel this broker does not know (the broker restarted, or
 *  closed it while the client could not hear the ERROR) is told with ERROR FAILURE, at most once
 *  per this interval per endpoint: the client then reconnects at once instead of waiting for its
 *  60 s liveness timeout. ERROR is no larger than the keepalive, so nothing is amplified. */
const UNKNOWN_TUNNEL_REPLY_MS = 5_000;
/** A PREPARE whose cookie is older than this creates no tunnel: the client gives up 15 s after
 *  selecting us (spec §4.1; it asks for the cookie at that moment and repeats the PREPARE with
 *  the same cookie every 3 s), so a TUNNEL sent later finds nobody. A cookie is dated when the
 *  endpoint's first COOKIE request arrived (the kernel's receive timestamp; overload.ts asked),
 *  so its age includes the requests' wait in the queue and the repeats dropped before; 3 s are
 *  left for the tunnel setup (seconds in a loaded VM) and the TUNNEL's way back. Refused with an empty ERROR: a client
 *  still waiting starts its next attempt at once. */
export const PREPARE_MAX_COOKIE_AGE_MS = 12_000;
/** Of the 3 s PREPARE_MAX_COOKIE_AGE_MS leaves, the part for the COOKIE request's wait before it
 *  was read: a cookie dated by receive timestamps (which show that wait) is dated this much
 *  later, so the client's tunnel may still be created up to 14 s into its attempt (1 s left for
 *  the setup and the TUNNEL's way back). Measured with 1,000 original clients at 200/s in a TCG
 *  guest on a host with load 30: without it no PREPARE arrived within 12 s of its first COOKIE
 *  request, and none was created. */
const TIMESTAMPED_MARGIN_MS = 2_000;
/** Global budget of answers to unauthenticated datagrams (COOKIE, USAGE, ERROR to unknown
 *  keepalives): none is larger than its request, and together they stay below this rate, so
 *  the broker is no useful reflector. 1,000 routers returning at once need ~3,000 answers. */
export const ANSWER_BUDGET_PER_S = 2_000;
/** tick(now) also serves deadlines up to this much later, each as if at its own time: tunnels
 *  keep their schedule (spread as created), the broker wakes at most ~1000/TIMER_SLACK_MS times a
 *  second however many tunnels are due. Keepalives (5 s) and probes (1 s) go out at most this
 *  early; nothing is ever late. */
export const TIMER_SLACK_MS = 250;
export const ANSWER_BUDGET_BURST = 10_000;
/** An overload episode (overload.ts) is over after this long without a cookie request held back. */
const OVERLOAD_QUIET_MS = 10_000;

export class BrokerCore {
  readonly counters = new Counters();
  private readonly tunnels = new Map<number, BrokerTunnel>();
  private readonly byEndpoint = new Map<string, BrokerTunnel>();
  private readonly pool: IdPool;
  private limiter: RateLimiter;
  private readonly cookies: FineCookieJar;
  private readonly ctx: TunnelContext;
  /** Per-tunnel deadlines (keepalive, probe, ...): tick() pops only what is due. */
  private readonly timers = new DeadlineHeap<BrokerTunnel>();
  /** Tunnels counted in the usage figure (see BrokerTunnel.live), per port (port-usage.ts). */
  private readonly liveUsage = new PortUsage();
  private readonly answers = new TokenBucket(1000 / ANSWER_BUDGET_PER_S, ANSWER_BUDGET_BURST);
  /** Stale requests and the bound on cookies in flight (overload.ts). */
  private readonly overload = new OverloadAdmission();
  private readonly logOn: (level: LogLevel) => boolean;
  private readonly slackMs: number;
  /** Salt of the opaque per-IP hook queue names (log_ip_addresses=false). */
  private readonly queueSalt: number;
  /** Ids of kernel tunnels an earlier run left behind (start-up clean-up) or that this run closed:
   *  EEXIST on one of them means the kernel is still removing it (its workqueue releases a
   *  deleted tunnel's id a moment later), not that someone else owns it. */
  private readonly maybeStillInKernel = new Set<number>();
  /** Tunnel id → when its setup went to the driver, until its setupResult: with the netlink
   *  worker (executor.ts) setups wait for the kernel off the event loop, at most
   *  overload.limit() of them (a PREPARE beyond waits in waitingPrepares). */
  private readonly setupsInFlight = new Map<number, { at: number; cookieAt: number }>();
  /** PREPAREs waiting for a free setup slot, served as setups finish (prepare-queue.ts). */
  private readonly waitingPrepares = new PrepareQueue<ListenerRef>();
  /** Set after the first SESSION_CREATE EEXIST (kernel without duplicate session ids, §2.7). */
  private requireUniqueSessionId = false;
  private stopping = false;
  private nextPruneAt: number;
  /** Tunnels for which the "message on the listener" warning was already logged. */
  private readonly misdeliveryWarned = new Set<number>();
  /** Endpoint → when its PREPARE was last refused by admission (rate limits, no free id). */
  private readonly refused = new EndpointMemory(REFUSED_HOLD_MS);
  /** Endpoint → when it was last told that its tunnel is unknown here. */
  private readonly toldUnknown = new EndpointMemory(UNKNOWN_TUNNEL_REPLY_MS);

  constructor(readonly cfg: BrokerConfig, private readonly deps: BrokerDeps) {
    this.pool = new IdPool(cfg.tunnelIdBase, cfg.maxTunnels);
    this.limiter = new RateLimiter(cfg.connectionRateLimit * 1000, cfg.perIpCount, cfg.perIpTime * 1000, undefined,
      cfg.connectionRateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST);
    this.cookies = new FineCookieJar(deps.key, deps.mac, deps.startMs);
    this.nextPruneAt = deps.startMs + PRUNE_INTERVAL_MS;
    this.slackMs = deps.timerSlackMs ?? TIMER_SLACK_MS;
    this.queueSalt = Math.floor(deps.random() * 0x1_0000_0000);
    this.logOn = deps.logEnabled ?? ((level) => LEVEL_RANK[level] <= LEVEL_RANK[cfg.verbosity]);
    this.ctx = {
      cfg, counters: this.counters, random: deps.random, errno: deps.errno, tcPath: deps.tcPath,
      showEndpoint: (ep) => this.showEndpoint(ep),
      logOn: this.logOn,
      liveChanged: (delta, port) => this.liveUsage.change(delta, port),
    };
  }

  /** "198.51.100.7:40000", "[2001:db8::7]:40000", or "<ip hidden>:40000". */
  showEndpoint(ep: Endpoint): string {
    return this.cfg.logIpAddresses ? formatHostPort(ep.ip, ep.port) : `${HIDDEN_IP}:${ep.port}`;
  }

  get tunnelCount(): number {
    return this.tunnels.size;
  }

  /** PREPAREs waiting in line for a setup slot (prepare-queue.ts). */
  get preparesWaiting(): number {
    return this.waitingPrepares.size;
  }

  /** A datagram received on a listener or tunnel socket. Never throws on bad input. No answer
   *  to it (a send to its source) is larger than the datagram: a spoofed source gains nothing.
   *  ageMs: how long it waited before this call (receive queue and batch), -1 when unknown. */
  datagram(socket: SocketRef, data: Uint8Array, from: Endpoint, now: number, ageMs = -1): Action[] {
    const out = this.receive(socket, data, from, now, ageMs);
    for (let i = 0; i < out.length; i++) {
      const a = out[i];
      if (a.type !== 'send' || a.data.length <= data.length || a.to.ip !== from.ip || a.to.port !== from.port) continue;
      const fitted = fitReply(a.data, data.length);
      if (fitted) {
        out[i] = { ...a, data: fitted };
      } else {
        this.counters.add('drop-answer-too-large');
        out.splice(i--, 1);
      }
    }
    return out;
  }

  private receive(socket: SocketRef, data: Uint8Array, from: Endpoint, now: number, ageMs: number): Action[] {
    if (this.stopping) return [];
    this.counters.add('datagrams');
    const frame = parseFrame(data);
    if (!isFrame(frame)) {
      this.counters.add(`drop-${frame}`);
      return this.logOn('debug')
        ? [log('debug', `dropped a ${data.length}-byte datagram from ${this.showEndpoint(from)}: bad header (${frame})`)]
        : [];
    }
    if (socket.kind === 'listener') return this.onListener(socket, frame, from, now, ageMs);
    const tunnel = this.tunnels.get(socket.tunnelId);
    if (!tunnel || tunnel.state !== 'up') {
      this.counters.add('drop-no-tunnel');
      return [];
    }
    if (tunnel.endpoint.ip !== from.ip || tunnel.endpoint.port !== from.port) {
      // Between bind() and connect() a new tunnel socket is an unconnected member of the port's
      // SO_REUSEPORT group and can catch another client's handshake (seen with 20 clients in the
      // VM): serve it as the listener would instead of costing that client a 3 s retransmit.
      if (isHandshake(frame.type)) {
        this.counters.add('handshake-on-tunnel-socket');
        return this.onListener(listenerOf(tunnel), frame, from, now, ageMs);
      }
      this.counters.add('drop-wrong-source');
      return [log('warning', `${tunnel.name}: ignoring a message from ${this.showEndpoint(from)} (not the tunnel's endpoint)`)];
    }
    if (isHandshake(frame.type)) return this.handshake(socket, frame, from, now, ageMs, tunnel);
    const out = tunnel.handle(frame, now);
    this.reap(tunnel);
    this.schedule(tunnel);
    return out;
  }

  private onListener(socket: SocketRef & { kind: 'listener' }, frame: Frame, from: Endpoint, now: number, ageMs: number): Action[] {
    const out: Action[] = [];
    const tunnel = this.byEndpoint.get(endpointKey(from));
    // A handshake retransmit (PREPARE, COOKIE, USAGE) may have been queued on the listener before
    // the tunnel socket existed: normal. Other messages are sent only after TUNNEL, which went
    // out through the connected tunnel socket; on a working kernel that socket gets them all.
    // (a tunnel still in setup, its kernel calls on the netlink worker, is the endpoint's too: a
    // repeated PREPARE must not make a second one)
    if (isHandshake(frame.type)) return this.handshake(socket, frame, from, now, ageMs, tunnel && tunnel.state !== 'closed' ? tunnel : undefined);
    if (frame.type === MessageType.ERROR && tunnel?.state === 'up') {
      // Also queued before the tunnel existed: a client that gave up waiting (15 s) sends ERROR
      // after its PREPAREs, so a slow broker creates the tunnel first. Either way: close it.
      this.counters.add('listener-tunnel-error');
      const closed = tunnel.handle(frame, now);
      this.reap(tunnel);
      return closed;
    }
    if (tunnel && tunnel.state === 'up' && !this.misdeliveryWarned.has(tunnel.tunnelId)) {
      this.misdeliveryWarned.add(tunnel.tunnelId);
      out.push(log('warning', `${tunnel.name}: its messages arrive on the listening socket of port ${socket.port}; ` +
        'this kernel does not prefer connected SO_REUSEPORT sockets (upstream issue #126), the tunnel will not work'));
    }
    if (!tunnel && frame.type === MessageType.KEEPALIVE) return this.unknownTunnel(socket, frame, from, now);
    this.counters.add(tunnel ? 'listener-tunnel-message' : 'listener-ignored-type');
    return out;
  }

  /** A keepalive on a listener from an endpoint without a tunnel here: see UNKNOWN_TUNNEL_REPLY_MS. */
  private unknownTunnel(socket: SocketRef, frame: Frame, from: Endpoint, now: number): Action[] {
    const key = endpointKey(from);
    if (this.toldUnknown.since(key, now) !== undefined) {
      this.counters.add('listener-unknown-keepalive');
      return [];
    }
    // clients send 12-byte keepalives (10 padded to 12, spec §2.4.5); the 7-byte ERROR is cut to
    // the keepalive's size, and a keepalive shorter than that is not answered
    const data = fitReply(encodeError(BrokerErrorCode.FAILURE), frame.datagramLength);
    if (!data) {
      this.counters.add('drop-short-keepalive');
      return [];
    }
    if (!this.answers.take(now)) {
      this.counters.add('drop-answer-budget');
      return [];
    }
    this.toldUnknown.mark(key, now);
    this.counters.add('told-unknown-tunnel');
    return [
      log('info', `keepalive from ${this.showEndpoint(from)}, which has no tunnel here (broker restarted?): ` +
        'told it to reconnect'),
      { type: 'send', socket, data, to: from },
    ];
  }

  /** COOKIE, USAGE and PREPARE, on a listener or on the client's tunnel socket. */
  private handshake(socket: SocketRef, frame: Frame, from: Endpoint, now: number, ageMs: number, tunnel?: BrokerTunnel): Action[] {
    const reply = (data: Uint8Array): Action => ({ type: 'send', socket, data, to: from });
    const kind = frame.type === MessageType.COOKIE ? 'cookie' : frame.type === MessageType.USAGE ? 'usage' : 'prepare';
    this.counters.add(`${HANDSHAKE_PREFIX}${kind}`);
    if (frame.type === MessageType.COOKIE || frame.type === MessageType.USAGE) {
      // overload.ts: when this endpoint's attempt began (its first COOKIE request)
      const key = endpointKey(from);
      const askedMs = frame.type === MessageType.COOKIE && !tunnel ? this.overload.asked(key, ageMs, now) : Math.max(0, ageMs);
      // an old request is not worth its answer (the client has sent a newer one)
      if (this.overload.stale(ageMs)) {
        this.counters.add(`drop-stale-${kind}-request`);
        return [];
      }
      // unauthenticated: the request is at least as large as the answer (8 filler bytes), and
      // all such answers share a global budget
      const req = decodeFillerRequest(frame.payload);
      if (!req) return this.dropShort(frame, from);
      const out: Action[] = [];
      const newCookie = frame.type === MessageType.COOKIE && !tunnel;
      if (newCookie) {
        const may = this.overload.mayIssue(key, now);
        out.push(...this.overloadEpisode(!may, now));
        if (!may) {
          this.counters.add('drop-busy-cookie-request');
          return out;
        }
      }
      if (!this.answers.take(now)) {
        this.counters.add('drop-answer-budget');
        return out;
      }
      if (newCookie) this.overload.issued(key, now);
      if (frame.type === MessageType.COOKIE) {
        this.counters.add('cookies-issued');
        // dated when the endpoint's first COOKIE request arrived, not when this one was read:
        // the client's window started there, and PREPARE_MAX_COOKIE_AGE_MS is measured from it
        // (less TIMESTAMPED_MARGIN_MS when measured by receive timestamps: the 12 s limit keeps
        // that much for a wait it cannot see, which they show)
        const dated = ageMs < 0 ? askedMs : Math.max(0, askedMs - TIMESTAMPED_MARGIN_MS);
        out.push(reply(encodeCookieReply(this.cookies.issue(from.ip, from.port, now - dated))));
        return out;
      }
      this.counters.add('usage-requests');
      let usage = this.usage(req.features, socket.kind === 'listener' ? socket.port : tunnel?.port, from);
      if (usage !== 0xffff && !tunnel && this.overload.full(now)) {
        this.counters.add('usage-busy');
        usage = 0xffff;
      }
      return [reply(encodeUsageReply(usage))];
    }
    return this.prepare(socket, frame, from, now, ageMs, tunnel, false);
  }

  /** A PREPARE (on a listener, or on the endpoint's tunnel socket); queued: it comes out of
   *  waitingPrepares, where it waited for a setup slot. */
  private prepare(socket: SocketRef, frame: Frame, from: Endpoint, now: number, ageMs: number, tunnel: BrokerTunnel | undefined,
    queued: boolean): Action[] {
    const reply = (data: Uint8Array): Action => ({ type: 'send', socket, data, to: from });
    const prepare = decodePrepare(frame.payload);
    if (!prepare) return this.dropShort(frame, from);
    const cookieAge = this.cookies.age(prepare.cookie, from.ip, from.port, now);
    if (cookieAge === null) {
      this.counters.add('drop-bad-cookie');
      return this.logOn('debug') ? [log('debug', `dropped a PREPARE from ${this.showEndpoint(from)}: bad or expired cookie`)] : [];
    }
    if (!tunnel && socket.kind === 'listener' && !queued &&
        (this.waitingPrepares.size > 0 || this.setupsInFlight.size >= this.overload.limit(now))) {
      // the kernel is behind (the netlink worker: setups wait off the event loop): at most what
      // it created in the last 5 s (at least 8) waits there, about 5 s of work, well within the
      // client's 15 s; the rest wait in line here, in order, for a slot (setupResult). Its
      // cookie stays in flight (overload.ts); a wait of over a second means the broker is behind.
      const put = this.waitingPrepares.put(endpointKey(from), socket, frame, from, now, ageMs);
      if (put === 'full') {
        this.counters.add('drop-setup-backlog');
        this.overload.prepareSeen(Infinity, now);
        return this.logOn('debug') ? [log('debug', `PREPARE from ${this.showEndpoint(from)} dropped: ` +
          `${this.waitingPrepares.size} PREPAREs wait for the kernel already (it repeats in 3 s)`)] : [];
      }
      this.counters.add(put === 'queued' ? 'prepare-waited' : 'prepare-retransmits');
      this.overload.prepareSeen(this.waitingPrepares.longestWaitMs(now), now);
      return this.serveWaiting(now);
    }
    // its cookie is used: whatever the answer, it is no longer in flight; its wait says whether
    // the broker is behind
    this.overload.settled(endpointKey(from));
    this.overload.prepareSeen(ageMs, now);
    const uuid = printableUuid(prepare.uuid);
    const features = prepare.features & FEATURES_MASK;
    if (tunnel && uuid === tunnel.uuid && prepare.tunnelId === tunnel.peerTunnelId && features === tunnel.features) {
      this.counters.add('prepare-retransmits');
      // still in the kernel (the netlink worker): TUNNEL goes out when it is up
      return tunnel.state === 'setup' ? [] : [reply(tunnel.tunnelReply())];
    }
    if (tunnel && tunnel.heard) {
      this.counters.add('refused-prepare-mismatch');
      return [
        log('info', `${tunnel.name}: refusing a different PREPARE (uuid ${uuid}) from the same endpoint`),
        reply(encodeError()),
      ];
    }
    if (!tunnel && socket.kind !== 'listener') return [];
    const listener = socket.kind === 'listener' ? socket : listenerOf(tunnel!);
    const out: Action[] = [];
    if (cookieAge > PREPARE_MAX_COOKIE_AGE_MS) {
      this.counters.add('refused-stale-cookie');
      out.push(log('info', `refused a tunnel for uuid ${uuid} (${this.showEndpoint(from)}): its cookie is ` +
        `${cookieAge / 1000} s old, the client has given up waiting (after 15 s)`));
      out.push({ type: 'send', socket: listener, data: encodeError(), to: from });
      return out;
    }
    if (tunnel) {
      // the endpoint's tunnel never heard from its client: an orphan (a PREPARE answered after
      // its client gave up, or a client that restarted on the same port). The new PREPARE
      // replaces it; the endpoint is not told about the old one.
      this.counters.add('tunnels-replaced');
      out.push(...tunnel.close(BrokerErrorCode.OTHER_REQUEST, `replaced by a PREPARE with uuid ${uuid} from the same endpoint ` +
        '(no message ever came through this tunnel)', false));
      this.reap(tunnel);
    }
    out.push(...this.createTunnel(listener, from, prepare, uuid, now, now - cookieAge));
    return out;
  }

  private createTunnel(listener: ListenerRef, from: Endpoint, prepare: Prepare, uuid: string, now: number, cookieAt: number): Action[] {
    const who = `uuid ${uuid} (${this.showEndpoint(from)})`;
    const key = endpointKey(from);
    const refuse = (counter: string, level: LogLevel, why: string, extra: Action[] = []): Action[] => {
      this.counters.add(counter);
      this.refused.mark(key, now);
      return [
        // (debug: the fd budget's refusals after its one warning, a line built only when written)
        ...(level !== 'debug' || this.logOn('debug') ? [log(level, `refused a tunnel for ${who}: ${why}`)] : []),
        ...extra,
        { type: 'send', socket: listener, data: encodeError(), to: from },
      ];
    };
    const refusedAgo = this.refused.since(key, now);
    if (refusedAgo !== undefined) {
      this.counters.add('refused-stale-prepare');
      const data = encodeError();
      const send: Action = { type: 'send', socket: listener, data, to: from };
      return this.logOn('debug') ? [log('debug', `refused a tunnel for ${who}: this endpoint was refused ${refusedAgo} ms ago`), send] : [send];
    }
    if (this.draining) return refuse('refused-draining', 'info', 'the broker is draining (ctl drain)');
    const fd = this.fdBudgetCheck();
    if (fd && fd.level !== 'info') return refuse('refused-fd-budget', fd.level, fd.why);
    if (!this.limiter.globalAllows(now)) {
      const burst = this.cfg.connectionRateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST;
      return refuse('refused-rate-limit', 'info', `connection_rate_limit: one tunnel per ${this.cfg.connectionRateLimit} s ` +
        `on average, burst of ${burst} used up; next one in ${(this.limiter.globalWaitMs(now) / 1000).toFixed(1)} s`);
    }
    const ipKey = this.rateLimitKey(from.ip);
    if (!this.limiter.admitIp(ipKey, now)) {
      const hook = this.cfg.hooks.connectionRateLimit;
      const extra: Action[] = hook
        ? [{ type: 'run', job: rateLimitHookJob(hook, from.ip, from.port, uuid, this.cfg.logIpAddresses, this.queueSalt, ipKey) }]
        : [];
      const source = ipKey === from.ip ? 'its IP' : `its /${this.cfg.perIpIpv6Prefix ?? DEFAULT_IPV6_PREFIX} (IPv6 prefix)`;
      return refuse('refused-rate-limit-ip', 'info',
        `more than ${this.cfg.perIpCount} requests from ${source} within ${this.cfg.perIpTime} s`, extra);
    }
    const tunnelId = this.pool.take();
    if (tunnelId === null) return refuse('refused-no-ids', 'warning', `no free tunnel id (max_tunnels ${this.cfg.maxTunnels})`);
    const features = prepare.features & FEATURES_MASK;
    const port = listener.port;
    const tunnel = new BrokerTunnel(this.ctx, tunnelId, prepare.tunnelId, { ...from }, port, uuid, features, now,
      listener.address ?? '');
    this.tunnels.set(tunnelId, tunnel);
    this.byEndpoint.set(endpointKey(from), tunnel);
    this.setupsInFlight.set(tunnelId, { at: now, cookieAt });
    return [...(fd ? [log('info', fd.why)] : []), {
      type: 'setup',
      setup: {
        tunnelId, peerTunnelId: prepare.tunnelId, sessionId: tunnel.sessionId, peerSessionId: tunnel.peerSessionId,
        ifname: tunnel.ifname, port, ...(listener.address ? { address: listener.address } : {}), client: { ...from },
      },
    }];
  }

  /** The driver's report on a `setup` action; its slot goes to the PREPARE waiting longest. */
  setupResult(tunnelId: number, result: SetupResult, now: number): Action[] {
    const out = this.settleSetup(tunnelId, result, now);
    if (this.waitingPrepares.size > 0) out.push(...this.serveWaiting(now));
    return out;
  }

  /** Serves waiting PREPAREs while setup slots are free (a refused one takes none). */
  private serveWaiting(now: number): Action[] {
    const out: Action[] = [];
    while (!this.stopping && this.waitingPrepares.size > 0 && this.setupsInFlight.size < this.overload.limit(now)) {
      const w = this.waitingPrepares.shift()!;
      const waited = now - w.at + Math.max(0, w.ageMs);
      const tunnel = this.byEndpoint.get(endpointKey(w.from));
      out.push(...this.prepare(w.socket, w.frame, w.from, now, waited, tunnel && tunnel.state !== 'closed' ? tunnel : undefined, true));
    }
    return out;
  }

  private settleSetup(tunnelId: number, result: SetupResult, now: number): Action[] {
    const started = this.setupsInFlight.get(tunnelId);
    this.setupsInFlight.delete(tunnelId);
    // a setup that waited for the kernel is a PREPARE that waited: the broker is behind
    if (started !== undefined) this.overload.prepareSeen(now - started.at, now);
    const tunnel = this.tunnels.get(tunnelId);
    if (!tunnel || tunnel.state !== 'setup') return [];
    if (result.ok && started !== undefined && now - started.cookieAt > ATTEMPT_MS) {
      // the kernel took so long (the netlink worker's queue) that the client's attempt, which
      // began with its cookie request, is over: it has given up and is trying from another
      // socket. TUNNEL now would make an orphan; the tunnel goes again, uncounted.
      this.counters.add('setup-after-give-up');
      const out = tunnel.close(BrokerErrorCode.FAILURE, `set up ${Math.round((now - started.cookieAt) / 100) / 10} s after the client's ` +
        `cookie request, after it gave up (${ATTEMPT_MS / 1000} s); removed again`, false, 'setup-too-late');
      this.reap(tunnel);
      return out;
    }
    if (result.ok) {
      this.limiter.recordSuccess(now);
      this.overload.created(now);
      this.counters.add('tunnels-created');
      const out = tunnel.activate(now);
      this.schedule(tunnel);
      return out;
    }
    const out: Action[] = [];
    tunnel.state = 'closed';
    this.forget(tunnel);
    const dying = result.stage === 'tunnel' && result.errno === this.deps.errno.EEXIST && this.maybeStillInKernel.has(tunnelId);
    if (dying) {
      // ours (from an earlier run, or closed a moment ago), still being removed by the kernel
      // (a killed broker's thousand take a while): try the id again later, as often as it takes
      this.pool.release(tunnelId);
      this.counters.add('refused-id-still-in-kernel');
      out.push(log('info', `${tunnel.name}: kernel tunnel ${tunnelId}, ours (from an earlier run or closed just now), is still being removed; ` +
        `refusing the client (it retries), id ${tunnelId} goes to the back of the queue`));
      out.push({ type: 'send', socket: { kind: 'listener', port: tunnel.port }, data: encodeError(), to: tunnel.endpoint });
      return out;
    }
    if (result.stage === 'tunnel' && result.errno === this.deps.errno.EEXIST) {
      // someone else owns this kernel tunnel id: never hand it out again (as the original)
      this.pool.retire(tunnelId);
      out.push(log('warning', `kernel tunnel ${tunnelId} exists outside this broker; id ${tunnelId} is retired`));
    } else {
      this.pool.release(tunnelId);
    }
    if (result.stage === 'session' && result.errno === this.deps.errno.EEXIST && !this.requireUniqueSessionId) {
      this.requireUniqueSessionId = true;
      out.push(log('warning', 'this kernel refuses duplicate session ids: clients without unique session ids now get usage 0xFFFF'));
    }
    if (result.stage === 'socket' && result.errno === this.deps.errno.EMFILE) out.push(...this.fdExhausted(result.error, 'setup-emfile'));
    // the system-wide file table (fs.file-max) is full: refused the same way until one closes
    if (result.stage === 'socket' && result.errno === this.deps.errno.ENFILE) out.push(...this.fdExhausted(result.error, 'setup-enfile'));
    this.counters.add('refused-setup-failed');
    const what = result.stage === 'socket' ? 'tunnel socket setup' : result.stage === 'tunnel' ? 'kernel tunnel create' : 'kernel session create';
    out.push(log('error', `${tunnel.name}: ${what} failed: ${result.error}; refusing the client`));
    out.push({ type: 'send', socket: listenerOf(tunnel), data: encodeError(), to: tunnel.endpoint });
    return out;
  }

  /** A send/receive error on a socket (-errno already turned into errno + text). */
  socketError(socket: SocketRef, errno: number, error: string, _now: number): Action[] {
    if (socket.kind === 'listener') {
      this.counters.add('listener-socket-errors');
      return this.logOn('debug') ? [log('debug', `listening socket on port ${socket.port}: ${error}`)] : [];
    }
    const tunnel = this.tunnels.get(socket.tunnelId);
    if (!tunnel) return [];
    const out = tunnel.socketError(errno, error);
    this.reap(tunnel);
    return out;
  }

  /** Runs what is due at `now` (or within TIMER_SLACK_MS after it, or `aheadMs` when given): the
   *  tunnels whose deadline has come, popped from the timer heap (O(log n) each; nothing else is
   *  looked at), each ticked at its own deadline; and the once-a-minute housekeeping. */
  tick(now: number, aheadMs = this.slackMs): Action[] {
    const out: Action[] = [];
    // the keepalives (shared sends) of all tunnels due now go last, together: the driver can
    // send them in one batch through the listener (executor.ts, shared-send.ts)
    const shared: Action[] = [];
    const until = now + aheadMs;
    while (this.timers.peekAt() <= until) {
      const at = this.timers.peekAt();
      const tunnel = this.timers.pop()!;
      // stale entry: the tunnel was rescheduled earlier (a newer entry exists) or is gone
      if (at !== tunnel.scheduledAt || tunnel.state !== 'up') continue;
      tunnel.scheduledAt = Infinity;
      const t = Math.max(now, at);
      if (t >= tunnel.nextDeadline()) {
        for (const a of tunnel.tick(t)) (a.type === 'send' && a.shared ? shared : out).push(a);
        this.reap(tunnel);
      }
      this.schedule(tunnel);
    }
    for (const a of shared) out.push(a);
    if (now >= this.nextPruneAt) {
      this.limiter.prune(now);
      this.refused.prune(now);
      this.toldUnknown.prune(now);
      this.nextPruneAt = now + PRUNE_INTERVAL_MS;
    }
    return out;
  }

  /** Monotonic ms at which tick() has something to do (may be early, never late: a deadline
   *  that moved later is found out when its entry comes due). O(1) amortised. */
  nextDeadline(): number {
    // drop stale entries at the top so that the answer is the real next deadline
    for (;;) {
      const t = this.timers.peekItem();
      if (!t || (this.timers.peekAt() === t.scheduledAt && t.state === 'up')) break;
      this.timers.pop();
    }
    return Math.min(this.nextPruneAt, this.timers.peekAt());
  }

  /** Makes sure the tunnel's next deadline is in the timer heap. A deadline that moved earlier
   *  gets a new entry (the old one turns stale); one that moved later keeps the early entry,
   *  which re-schedules when it comes due. */
  private schedule(tunnel: BrokerTunnel): void {
    if (tunnel.state !== 'up') return;
    const at = tunnel.nextDeadline();
    if (at < tunnel.scheduledAt) {
      tunnel.scheduledAt = at;
      this.timers.push(at, tunnel);
    }
  }

  /** Closes every tunnel with SHUTDOWN, all at once; afterwards input is ignored. The actions
   *  come in phases, each for every tunnel before the next, so that nothing slow delays what
   *  can go out at once: the ERRORs to all clients, then the log lines and pre-down hooks, then
   *  the kernel teardowns, then the down hooks (marked afterKernel: the driver starts them
   *  once the kernel has removed that tunnel). A tunnel's own pre-down → teardown → down keep
   *  their order; hooks of different tunnels run in parallel under hooks.max_concurrent. */
  shutdown(_now: number): Action[] {
    this.stopping = true;
    this.waitingPrepares.clear();
    const told: Action[] = [];
    const before: Action[] = [];
    const teardowns: Action[] = [];
    const after: Action[] = [];
    for (const tunnel of [...this.tunnels.values()]) {
      let tornDown = false;
      for (const a of tunnel.close(BrokerErrorCode.SHUTDOWN, 'broker shutting down')) {
        if (a.type === 'send') told.push(a);
        else if (a.type === 'teardown') {
          teardowns.push(a);
          tornDown = true;
        } else if (a.type === 'run' && tornDown) after.push({ ...a, afterKernel: tunnel.tunnelId });
        // a pre-down waits for nothing here: the driver holds every afterKernel job of a shutdown
        // until its tunnel is gone
        else before.push(a.type === 'run' ? { type: 'run', job: a.job } : a);
      }
      this.reap(tunnel);
    }
    return told.concat(before, teardowns, after);
  }

  /** Start-up: kernel tunnels in our id range that an earlier run left behind (being deleted):
   *  their ids are handed out last, and an EEXIST on one of them does not retire it. */
  leftInKernel(ids: number[]): void {
    for (const id of ids) if (this.pool.contains(id)) this.maybeStillInKernel.add(id);
    this.pool.handOutLast(ids);
  }

  /** floor(live tunnels / max_tunnels × 65535): tunnels that never heard from their client
   *  within UNHEARD_MS of TUNNEL are not counted. Asked on a port: that port's figure, which is
   *  higher when the port holds more than its share of the tunnels, and, with several ports,
   *  less than a tunnel's worth added per asking endpoint to break ties (port-usage.ts). */
  usage(clientFeatures: number, port?: number, from?: Endpoint): number {
    if (this.draining || this.fdBudgetFull()) return 0xffff;
    if (this.requireUniqueSessionId && (clientFeatures & FEATURE_UNIQUE_SESSION_ID) === 0) return 0xffff;
    const figure = this.liveUsage.figure(this.cfg.maxTunnels, this.cfg.ports.length, port);
    if (port === undefined || from === undefined || this.cfg.ports.length < 2) return figure;
    return tieBreak(figure, this.cfg.maxTunnels, from.ip, from.port, port, this.queueSalt);
  }

  /** Status in a few lines whatever the number of tunnels (SIGUSR1 and the periodic log line;
   *  the full table is `ctl tunnels`): counts by state and port, the fd budget, the longest
   *  silence of an up tunnel. One pass over the tunnels per call, nothing per datagram. */
  statusSummary(now: number): string[] {
    const flags = [
      this.requireUniqueSessionId ? 'unique session ids required' : '', this.draining ? 'draining' : '',
      this.fdBudgetFull() ? 'fd budget full (usage 0xFFFF)' : '',
      this.overload.full(now) ? `overloaded (${this.overload.inFlightCount(now)} cookies in flight, bound ${this.overload.limit(now)})` : '',
    ].filter(Boolean);
    const lines = [`${this.tunnels.size}/${this.cfg.maxTunnels} tunnels, ${this.pool.available} ids free` +
      flags.map((f) => `, ${f}`).join('')];
    let up = 0;
    let heard = 0;
    let silence = 0;
    const byPort = new Map<number, number>(this.cfg.ports.map((p) => [p, 0]));
    for (const t of this.tunnels.values()) {
      if (t.state !== 'up') continue;
      up++;
      if (t.heard) heard++;
      byPort.set(t.port, (byPort.get(t.port) ?? 0) + 1);
      silence = Math.max(silence, now - t.lastAlive);
    }
    const room = this.fdRoom;
    lines.push(`up ${up} (heard from ${heard}, counted in usage ${this.liveUsage.live()}), being set up ${this.tunnels.size - up}` +
      `${this.waitingPrepares.size ? `, ${this.waitingPrepares.size} PREPARE${this.waitingPrepares.size === 1 ? '' : 's'} waiting for a setup slot` : ''}; ` +
      `by port ${[...byPort].map(([p, n]) => `${p}: ${n}`).join(', ')}; ` +
      `fd budget ${room === Infinity ? 'unlimited' : `${this.tunnels.size}/${room}`}; ` +
      `longest silence of an up tunnel ${Math.round(silence / 1000)}s`);
    lines.push('per tunnel: tunneldigger-broker ctl tunnels [--json]');
    return lines;
  }

  status(now: number): object {
    return {
      tunnels: [...this.tunnels.values()].map((t) => ({
        tunnelId: t.tunnelId, sessionId: t.sessionId, peerSessionId: t.peerSessionId, ifname: t.ifname, mtu: t.mtu,
        uuid: t.uuid, client: this.showEndpoint(t.endpoint), state: t.state, ...t.describe(now),
      })),
      maxTunnels: this.cfg.maxTunnels,
      requireUniqueSessionId: this.requireUniqueSessionId,
      counters: this.counters.snapshot(),
    };
  }

  /** What the per-IP limit counts: an IPv4 address, or an IPv6 client's prefix
   *  (broker.connection_rate_limit_per_ip_ipv6_prefix bits, default /64). */
  private rateLimitKey(ip: string): string {
    return ipv6Prefix(ip, this.cfg.perIpIpv6Prefix ?? DEFAULT_IPV6_PREFIX);
  }

  private dropShort(frame: Frame, from: Endpoint): Action[] {
    this.counters.add('drop-short-payload');
    return this.logOn('debug')
      ? [log('debug', `dropped message type 0x${frame.type.toString(16)} from ${this.showEndpoint(from)}: payload too short`)]
      : [];
  }

  private reap(tunnel: BrokerTunnel): void {
    if (tunnel.state !== 'closed') return;
    if (this.tunnels.get(tunnel.tunnelId) !== tunnel) return;
    this.forget(tunnel);
    this.maybeStillInKernel.add(tunnel.tunnelId);
    this.pool.release(tunnel.tunnelId);
  }

  private forget(tunnel: BrokerTunnel): void {
    this.tunnels.delete(tunnel.tunnelId);
    const key = endpointKey(tunnel.endpoint);
    if (this.byEndpoint.get(key) === tunnel) this.byEndpoint.delete(key);
    this.misdeliveryWarned.delete(tunnel.tunnelId);
  }

  // --- operations: control socket (control.ts), reload, metrics (metrics.ts) ---

  /** Set by `ctl drain`: usage answers 0xFFFF and PREPAREs are refused; tunnels stay. */
  draining = false;

  /** A tunnel by id ("105") or uuid. */
  findTunnel(ref: string): BrokerTunnel | undefined {
    if (/^\d+$/.test(ref)) {
      const t = this.tunnels.get(Number(ref));
      if (t) return t;
    }
    for (const t of this.tunnels.values()) if (t.uuid === ref) return t;
    return undefined;
  }

  /** `ctl close`: ERROR 0x01 ("other side asked to close") to the client, hooks, teardown. */
  closeTunnel(tunnel: BrokerTunnel, _now: number): Action[] {
    const out = tunnel.close(BrokerErrorCode.OTHER_REQUEST, 'closed by the operator (ctl close)', true, 'operator');
    this.reap(tunnel);
    return out;
  }

  tunnelList(): BrokerTunnel[] {
    return [...this.tunnels.values()];
  }

  get idsFree(): number {
    return this.pool.available;
  }

  get uniqueSessionIdsRequired(): boolean {
    return this.requireUniqueSessionId;
  }

  /** Reload: applies the keys that can change live to the running config (shared with the
   *  tunnels and the driver) and names those that need a restart (they keep their old value). */
  reconfigure(next: BrokerConfig): { changed: string[]; needRestart: string[] } {
    const cur = this.cfg;
    const changed: string[] = [];
    const needRestart: string[] = [];
    const restartKeys: [string, unknown, unknown][] = [
      ['broker.address', cur.address, next.address], ['broker.port', cur.ports.join(','), next.ports.join(',')],
      ['broker.interface', cur.interface, next.interface], ['broker.tunnel_id_base', cur.tunnelIdBase, next.tunnelIdBase],
      ['control.socket', cur.controlSocket ?? '', next.controlSocket ?? ''],
    ];
    for (const [key, a, b] of restartKeys) if (a !== b) needRestart.push(key);
    const limitsChanged = cur.connectionRateLimit !== next.connectionRateLimit || cur.perIpCount !== next.perIpCount ||
      cur.perIpTime !== next.perIpTime || cur.connectionRateLimitBurst !== next.connectionRateLimitBurst ||
      cur.perIpIpv6Prefix !== next.perIpIpv6Prefix;
    if (limitsChanged) {
      this.limiter = new RateLimiter(next.connectionRateLimit * 1000, next.perIpCount, next.perIpTime * 1000, undefined,
        next.connectionRateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST);
      changed.push('rate limits');
    }
    if (cur.maxTunnels !== next.maxTunnels) {
      this.pool.resize(next.maxTunnels);
      changed.push(`broker.max_tunnels ${cur.maxTunnels} -> ${next.maxTunnels}`);
    }
    if (cur.pmtu !== next.pmtu) changed.push(`broker.pmtu ${cur.pmtu} -> ${next.pmtu} (new tunnels)`);
    if (cur.verbosity !== next.verbosity) changed.push(`log.verbosity ${cur.verbosity} -> ${next.verbosity}`);
    if (cur.logIpAddresses !== next.logIpAddresses) changed.push(`log.log_ip_addresses ${next.logIpAddresses}`);
    for (const k of Object.keys(next.hooks) as (keyof BrokerConfig['hooks'])[]) {
      if (cur.hooks[k] !== next.hooks[k]) changed.push(`hook ${k}`);
    }
    const listen = (l: BrokerConfig['metricsListen']): string => (l ? `${l.host}:${l.port}` : 'off');
    if (listen(cur.metricsListen) !== listen(next.metricsListen)) changed.push(`metrics.listen ${listen(next.metricsListen)}`);
    Object.assign(cur, {
      maxTunnels: next.maxTunnels, connectionRateLimit: next.connectionRateLimit, perIpCount: next.perIpCount,
      perIpTime: next.perIpTime, perIpIpv6Prefix: next.perIpIpv6Prefix, pmtu: next.pmtu, verbosity: next.verbosity,
      logIpAddresses: next.logIpAddresses,
      hooks: { ...next.hooks }, metricsListen: next.metricsListen,
    });
    return { changed, needRestart };
  }

  // --- fd budget (fd-budget.ts): new tunnels are refused before descriptors run out ---

  /** The soft RLIMIT_NOFILE after raiseFdLimit (the driver sets it at start); Infinity: none. */
  private fdSoftLimit = Infinity;
  /** Tunnel count at which socket() last failed with EMFILE (descriptors held elsewhere than
   *  the reserve assumes): new tunnels are refused at this count until fewer are open. */
  private fdClamp = Infinity;
  /** Refusing for the fd budget since the warning (logged once per episode). */
  private fdRefusing = false;
  private fdRefusedInEpisode = 0;

  setFdLimit(soft: number): void {
    this.fdSoftLimit = soft;
  }

  /** Tunnels the descriptors leave room for (the budget, or the count at an EMFILE). */
  get fdRoom(): number {
    return Math.min(fdBudget(this.fdSoftLimit, this.cfg).tunnels, this.fdClamp);
  }

  private fdBudgetFull(): boolean {
    return this.tunnels.size >= this.fdRoom;
  }

  /** Before a tunnel is created: null when its socket fits; level info when it fits again after
   *  refusals (the line to log); else the refusal's level and text: one warning per episode with
   *  the numbers, every further refusal at debug. */
  private fdBudgetCheck(): { level: 'info' | 'warning' | 'debug'; why: string } | null {
    if (this.fdClamp !== Infinity && this.tunnels.size < this.fdClamp) this.fdClamp = Infinity;
    const room = this.fdRoom;
    if (this.tunnels.size < room) {
      if (!this.fdRefusing) return null;
      this.fdRefusing = false;
      const why = `${this.tunnels.size} tunnels open, back under the file descriptor budget (room for ${room}): ` +
        `accepting new tunnels again; ${this.fdRefusedInEpisode} refused meanwhile`;
      this.fdRefusedInEpisode = 0;
      return { level: 'info', why };
    }
    this.fdRefusedInEpisode++;
    const b = fdBudget(this.fdSoftLimit, this.cfg);
    const numbers = room < b.tunnels
      ? `socket() failed with EMFILE at ${room} tunnels (descriptors held outside the budget)`
      : `file descriptor limit ${this.fdSoftLimit} minus a reserve of ${b.reserve} leaves room for ${room}`;
    const why = `${this.tunnels.size} tunnels open, ${numbers}`;
    if (this.fdRefusing) return { level: 'debug', why };
    this.fdRefusing = true;
    return {
      level: 'warning',
      why: `${why}; refusing new tunnels (usage 0xFFFF, ERROR to each PREPARE; further refusals are logged at ` +
        'debug level and counted as refused-fd-budget) until one closes; raise the hard limit (LimitNOFILE=) for more',
    };
  }

  /** socket() failed with EMFILE (or ENFILE): what is open now is the most that fits for the moment. */
  private fdExhausted(error: string, counter: string): Action[] {
    this.fdClamp = this.tunnels.size;
    this.counters.add(counter);
    if (this.fdRefusing) return [];
    this.fdRefusing = true;
    return [log('warning', `tunnel socket: ${error} with ${this.tunnels.size} tunnels open (budget ` +
      `${fdBudget(this.fdSoftLimit, this.cfg).tunnels}): refusing new tunnels until one closes (usage 0xFFFF)`)];
  }

  // --- overload (overload.ts): one warning when the bound on cookies in flight is reached, one
  // info line when new clients get cookies again ---

  private overloaded = false;
  /** Counter values at the start of the episode (for its closing line). */
  private overloadFrom = { busy: 0, stale: 0, created: 0, at: 0 };

  private lastBusyAt = -Infinity;

  /** Called for each COOKIE request of a new endpoint: full says whether it goes unanswered. An
   *  episode ends when cookies were issued for OVERLOAD_QUIET_MS without one held back. */
  private overloadEpisode(full: boolean, now: number): Action[] {
    if (full) this.lastBusyAt = now;
    if (full === this.overloaded || (!full && now - this.lastBusyAt < OVERLOAD_QUIET_MS)) return [];
    this.overloaded = full;
    const c = this.counters;
    const stale = c.get('drop-stale-cookie-request') + c.get('drop-stale-usage-request');
    if (full) {
      this.overloadFrom = { busy: c.get('drop-busy-cookie-request'), stale, created: c.get('tunnels-created'), at: now };
      return [log('warning', `overload: ${this.overload.inFlightCount(now)} cookies are out without a PREPARE yet ` +
        `(bound ${this.overload.limit(now)}: the tunnels created in the last 5 s, at least 8) and PREPAREs wait more ` +
        'than 1 s in the queue: new clients get no cookie (they repeat in 3 s) and usage 0xFFFF until the bound frees')];
    }
    const f = this.overloadFrom;
    return [log('info', `overload over after ${((now - f.at) / 1000).toFixed(1)} s: ` +
      `${c.get('tunnels-created') - f.created} tunnels created, ${c.get('drop-busy-cookie-request') - f.busy} cookie ` +
      `requests held back, ${stale - f.stale} stale requests dropped meanwhile; issuing cookies again`)];
  }
}

function isHandshake(type: number): boolean {
  return type === MessageType.COOKIE || type === MessageType.USAGE || type === MessageType.PREPARE;
}

type ListenerRef = SocketRef & { kind: 'listener' };

/** The listener a tunnel's PREPARE came in on. */
function listenerOf(tunnel: BrokerTunnel): ListenerRef {
  return tunnel.listenAddress ? { kind: 'listener', port: tunnel.port, address: tunnel.listenAddress } : { kind: 'listener', port: tunnel.port };
}

function endpointKey(ep: Endpoint): string {
  return `${ep.ip}:${ep.port}`;
}

/** UUIDs are client-chosen bytes: decoded as UTF-8 with control characters replaced, so they
 *  can neither break a log line nor an execv argument (NUL). */
function printableUuid(bytes: Uint8Array): string {
  return utf8Decode(bytes).replace(/[\u0000-\u001f\u007f]/g, '?');
}

