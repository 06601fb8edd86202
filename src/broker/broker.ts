// BrokerCore: the sans-IO broker (spec §4.2). It is fed datagrams with the socket they came in
// on, setup results and socket errors, and tick(now); it returns actions for the driver. It owns
// the stateless listener logic (cookies, usage, PREPARE admission: rate limits, id pool), the
// tunnels (tunnel.ts) and the counters.
import type { Endpoint } from '../native.js';
import {
  BrokerErrorCode, FEATURES_MASK, FEATURE_UNIQUE_SESSION_ID, MessageType,
} from '../protocol/constants.js';
import { CookieJar, type Mac } from '../protocol/cookie.js';
import {
  decodeFillerRequest, decodePrepare, encodeCookieReply, encodeError, encodeUsageReply, isFrame, parseFrame, utf8Decode,
  type Frame, type Prepare,
} from '../protocol/messages.js';
import type { Action, SetupResult, SocketRef } from './actions.js';
import type { BrokerConfig } from './config.js';
import { Counters } from './counters.js';
import { EndpointMemory } from './endpoint-memory.js';
import { HIDDEN_IP, rateLimitHookJob } from './hooks.js';
import { IdPool } from './id-pool.js';
import { RateLimiter } from './rate-limiter.js';
import { BrokerTunnel, log, type TunnelContext } from './tunnel.js';

export interface BrokerDeps {
  /** Secret cookie key (random per process) and its MAC (HMAC-SHA1 from the runtime). */
  key: Uint8Array;
  mac: Mac;
  /** Monotonic ms at broker start (cookie tick 0). */
  startMs: number;
  random: () => number;
  errno: { EEXIST: number; EMSGSIZE: number };
  tcPath: string;
}

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

export class BrokerCore {
  readonly counters = new Counters();
  private readonly tunnels = new Map<number, BrokerTunnel>();
  private readonly byEndpoint = new Map<string, BrokerTunnel>();
  private readonly pool: IdPool;
  private limiter: RateLimiter;
  private readonly cookies: CookieJar;
  private readonly ctx: TunnelContext;
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
    this.limiter = new RateLimiter(cfg.connectionRateLimit * 1000, cfg.perIpCount, cfg.perIpTime * 1000);
    this.cookies = new CookieJar(deps.key, deps.mac, deps.startMs);
    this.nextPruneAt = deps.startMs + PRUNE_INTERVAL_MS;
    this.ctx = {
      cfg, counters: this.counters, random: deps.random, errno: deps.errno, tcPath: deps.tcPath,
      showEndpoint: (ep) => this.showEndpoint(ep),
    };
  }

  showEndpoint(ep: Endpoint): string {
    return `${this.cfg.logIpAddresses ? ep.ip : HIDDEN_IP}:${ep.port}`;
  }

  get tunnelCount(): number {
    return this.tunnels.size;
  }

  /** A datagram received on a listener or tunnel socket. Never throws on bad input. */
  datagram(socket: SocketRef, data: Uint8Array, from: Endpoint, now: number): Action[] {
    if (this.stopping) return [];
    this.counters.add('datagrams');
    const frame = parseFrame(data);
    if (!isFrame(frame)) {
      this.counters.add(`drop-${frame}`);
      return [log('debug', `dropped a ${data.length}-byte datagram from ${this.showEndpoint(from)}: bad header (${frame})`)];
    }
    if (socket.kind === 'listener') return this.onListener(socket, frame, from, now);
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
        return this.onListener({ kind: 'listener', port: tunnel.port }, frame, from, now);
      }
      this.counters.add('drop-wrong-source');
      return [log('warning', `${tunnel.name}: ignoring a message from ${this.showEndpoint(from)} (not the tunnel's endpoint)`)];
    }
    if (isHandshake(frame.type)) return this.handshake(socket, frame, from, now, tunnel);
    const out = tunnel.handle(frame, now);
    this.reap(tunnel);
    return out;
  }

  private onListener(socket: SocketRef & { kind: 'listener' }, frame: Frame, from: Endpoint, now: number): Action[] {
    const out: Action[] = [];
    const tunnel = this.byEndpoint.get(endpointKey(from));
    // A handshake retransmit (PREPARE, COOKIE, USAGE) may have been queued on the listener before
    // the tunnel socket existed: normal. Other messages are sent only after TUNNEL, which went
    // out through the connected tunnel socket; on a working kernel that socket gets them all.
    if (isHandshake(frame.type)) return this.handshake(socket, frame, from, now, tunnel?.state === 'up' ? tunnel : undefined);
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
    if (!tunnel && frame.type === MessageType.KEEPALIVE) return this.unknownTunnel(socket, from, now);
    this.counters.add(tunnel ? 'listener-tunnel-message' : 'listener-ignored-type');
    return out;
  }

  /** A keepalive on a listener from an endpoint without a tunnel here: see UNKNOWN_TUNNEL_REPLY_MS. */
  private unknownTunnel(socket: SocketRef, from: Endpoint, now: number): Action[] {
    const key = endpointKey(from);
    if (this.toldUnknown.since(key, now) !== undefined) {
      this.counters.add('listener-unknown-keepalive');
      return [];
    }
    this.toldUnknown.mark(key, now);
    this.counters.add('told-unknown-tunnel');
    return [
      log('info', `keepalive from ${this.showEndpoint(from)}, which has no tunnel here (broker restarted?): ` +
        'told it to reconnect'),
      { type: 'send', socket, data: encodeError(BrokerErrorCode.FAILURE), to: from },
    ];
  }

  /** COOKIE, USAGE and PREPARE, on a listener or on the client's tunnel socket. */
  private handshake(socket: SocketRef, frame: Frame, from: Endpoint, now: number, tunnel?: BrokerTunnel): Action[] {
    const reply = (data: Uint8Array): Action => ({ type: 'send', socket, data, to: from });
    this.counters.add(`${HANDSHAKE_PREFIX}${frame.type === MessageType.COOKIE ? 'cookie' : frame.type === MessageType.USAGE ? 'usage' : 'prepare'}`);
    if (frame.type === MessageType.COOKIE || frame.type === MessageType.USAGE) {
      const req = decodeFillerRequest(frame.payload);
      if (!req) return this.dropShort(frame, from);
      if (frame.type === MessageType.COOKIE) {
        this.counters.add('cookies-issued');
        return [reply(encodeCookieReply(this.cookies.issue(from.ip, from.port, now)))];
      }
      this.counters.add('usage-requests');
      return [reply(encodeUsageReply(this.usage(req.features)))];
    }
    const prepare = decodePrepare(frame.payload);
    if (!prepare) return this.dropShort(frame, from);
    if (!this.cookies.verify(prepare.cookie, from.ip, from.port, now)) {
      this.counters.add('drop-bad-cookie');
      return [log('debug', `dropped a PREPARE from ${this.showEndpoint(from)}: bad or expired cookie`)];
    }
    const uuid = printableUuid(prepare.uuid);
    if (tunnel) {
      const features = prepare.features & FEATURES_MASK;
      if (uuid === tunnel.uuid && prepare.tunnelId === tunnel.peerTunnelId && features === tunnel.features) {
        this.counters.add('prepare-retransmits');
        return [reply(tunnel.tunnelReply())];
      }
      this.counters.add('refused-prepare-mismatch');
      return [
        log('info', `${tunnel.name}: refusing a different PREPARE (uuid ${uuid}) from the same endpoint`),
        reply(encodeError()),
      ];
    }
    if (socket.kind !== 'listener') return [];
    return this.createTunnel(socket.port, from, prepare, uuid, now);
  }

  private createTunnel(port: number, from: Endpoint, prepare: Prepare, uuid: string, now: number): Action[] {
    const who = `uuid ${uuid} (${this.showEndpoint(from)})`;
    const key = endpointKey(from);
    const refuse = (counter: string, level: 'info' | 'warning', why: string, extra: Action[] = []): Action[] => {
      this.counters.add(counter);
      this.refused.mark(key, now);
      return [
        log(level, `refused a tunnel for ${who}: ${why}`),
        ...extra,
        { type: 'send', socket: { kind: 'listener', port }, data: encodeError(), to: from },
      ];
    };
    const refusedAgo = this.refused.since(key, now);
    if (refusedAgo !== undefined) {
      this.counters.add('refused-stale-prepare');
      return [
        log('debug', `refused a tunnel for ${who}: this endpoint was refused ${refusedAgo} ms ago`),
        { type: 'send', socket: { kind: 'listener', port }, data: encodeError(), to: from },
      ];
    }
    if (this.draining) return refuse('refused-draining', 'info', 'the broker is draining (ctl drain)');
    if (!this.limiter.globalAllows(now)) {
      return refuse('refused-rate-limit', 'info', `connection_rate_limit (${this.cfg.connectionRateLimit} s) not yet passed`);
    }
    if (!this.limiter.admitIp(from.ip, now)) {
      const hook = this.cfg.hooks.connectionRateLimit;
      const extra: Action[] = hook
        ? [{ type: 'run', job: rateLimitHookJob(hook, from.ip, from.port, uuid, this.cfg.logIpAddresses) }]
        : [];
      return refuse('refused-rate-limit-ip', 'info',
        `more than ${this.cfg.perIpCount} requests from its IP within ${this.cfg.perIpTime} s`, extra);
    }
    const tunnelId = this.pool.take();
    if (tunnelId === null) return refuse('refused-no-ids', 'warning', `no free tunnel id (max_tunnels ${this.cfg.maxTunnels})`);
    const features = prepare.features & FEATURES_MASK;
    const tunnel = new BrokerTunnel(this.ctx, tunnelId, prepare.tunnelId, { ...from }, port, uuid, features, now);
    this.tunnels.set(tunnelId, tunnel);
    this.byEndpoint.set(endpointKey(from), tunnel);
    return [{
      type: 'setup',
      setup: {
        tunnelId, peerTunnelId: prepare.tunnelId, sessionId: tunnel.sessionId, peerSessionId: tunnel.peerSessionId,
        ifname: tunnel.ifname, port, client: { ...from },
      },
    }];
  }

  /** The driver's report on a `setup` action. */
  setupResult(tunnelId: number, result: SetupResult, now: number): Action[] {
    const tunnel = this.tunnels.get(tunnelId);
    if (!tunnel || tunnel.state !== 'setup') return [];
    if (result.ok) {
      this.limiter.recordSuccess(now);
      this.counters.add('tunnels-created');
      return tunnel.activate(now);
    }
    const out: Action[] = [];
    tunnel.state = 'closed';
    this.forget(tunnel);
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
    this.counters.add('refused-setup-failed');
    const what = result.stage === 'socket' ? 'tunnel socket setup' : result.stage === 'tunnel' ? 'kernel tunnel create' : 'kernel session create';
    out.push(log('error', `${tunnel.name}: ${what} failed: ${result.error}; refusing the client`));
    out.push({ type: 'send', socket: { kind: 'listener', port: tunnel.port }, data: encodeError(), to: tunnel.endpoint });
    return out;
  }

  /** A send/receive error on a socket (-errno already turned into errno + text). */
  socketError(socket: SocketRef, errno: number, error: string, _now: number): Action[] {
    if (socket.kind === 'listener') {
      this.counters.add('listener-socket-errors');
      return [log('debug', `listening socket on port ${socket.port}: ${error}`)];
    }
    const tunnel = this.tunnels.get(socket.tunnelId);
    if (!tunnel) return [];
    const out = tunnel.socketError(errno, error);
    this.reap(tunnel);
    return out;
  }

  tick(now: number): Action[] {
    const out: Action[] = [];
    for (const tunnel of [...this.tunnels.values()]) {
      if (now >= tunnel.nextDeadline()) {
        out.push(...tunnel.tick(now));
        this.reap(tunnel);
      }
    }
    if (now >= this.nextPruneAt) {
      this.limiter.prune(now);
      this.refused.prune(now);
      this.toldUnknown.prune(now);
      this.nextPruneAt = now + PRUNE_INTERVAL_MS;
    }
    return out;
  }

  /** Monotonic ms at which tick() has something to do. */
  nextDeadline(): number {
    let next = this.nextPruneAt;
    for (const t of this.tunnels.values()) next = Math.min(next, t.nextDeadline());
    return next;
  }

  /** Closes every tunnel with SHUTDOWN; afterwards input is ignored. */
  shutdown(_now: number): Action[] {
    this.stopping = true;
    const out: Action[] = [];
    for (const tunnel of [...this.tunnels.values()]) {
      out.push(...tunnel.close(BrokerErrorCode.SHUTDOWN, 'broker shutting down'));
      this.reap(tunnel);
    }
    return out;
  }

  usage(clientFeatures: number): number {
    if (this.draining) return 0xffff;
    if (this.requireUniqueSessionId && (clientFeatures & FEATURE_UNIQUE_SESSION_ID) === 0) return 0xffff;
    return Math.min(0xffff, Math.floor((this.tunnels.size / this.cfg.maxTunnels) * 0xffff));
  }

  /** Human status table (SIGUSR1). */
  statusTable(now: number): string[] {
    const lines = [`${this.tunnels.size}/${this.cfg.maxTunnels} tunnels, ${this.pool.available} ids free` +
      (this.requireUniqueSessionId ? ', unique session ids required' : '')];
    if (this.tunnels.size === 0) return lines;
    lines.push(pad(['tunnel', 'session', 'interface', 'mtu', 'peer mtu', 'pmtu', 'client', 'uuid', 'age', 'idle']));
    for (const t of this.tunnels.values()) {
      const d = t.describe(now);
      lines.push(pad([
        String(t.tunnelId), `${t.sessionId}/${t.peerSessionId}`, t.ifname, String(t.mtu), d.remoteMtu === null ? '-' : String(d.remoteMtu),
        d.pmtuProbe, this.showEndpoint(t.endpoint), t.uuid, `${Math.round(d.ageMs / 1000)}s`, `${Math.round(d.idleMs / 1000)}s`,
      ]));
    }
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

  private dropShort(frame: Frame, from: Endpoint): Action[] {
    this.counters.add('drop-short-payload');
    return [log('debug', `dropped message type 0x${frame.type.toString(16)} from ${this.showEndpoint(from)}: payload too short`)];
  }

  private reap(tunnel: BrokerTunnel): void {
    if (tunnel.state !== 'closed') return;
    if (this.tunnels.get(tunnel.tunnelId) !== tunnel) return;
    this.forget(tunnel);
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
    const out = tunnel.close(BrokerErrorCode.OTHER_REQUEST, 'closed by the operator (ctl close)', 'operator');
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
      cur.perIpTime !== next.perIpTime;
    if (limitsChanged) {
      this.limiter = new RateLimiter(next.connectionRateLimit * 1000, next.perIpCount, next.perIpTime * 1000);
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
      perIpTime: next.perIpTime, pmtu: next.pmtu, verbosity: next.verbosity, logIpAddresses: next.logIpAddresses,
      hooks: { ...next.hooks }, metricsListen: next.metricsListen,
    });
    return { changed, needRestart };
  }

}

function isHandshake(type: number): boolean {
  return type === MessageType.COOKIE || type === MessageType.USAGE || type === MessageType.PREPARE;
}

function endpointKey(ep: Endpoint): string {
  return `${ep.ip}:${ep.port}`;
}

/** UUIDs are client-chosen bytes: decoded as UTF-8 with control characters replaced, so they
 *  can neither break a log line nor an execv argument (NUL). */
function printableUuid(bytes: Uint8Array): string {
  return utf8Decode(bytes).replace(/[\u0000-\u001f\u007f]/g, '?');
}

function pad(cols: string[]): string {
  const widths = [7, 11, 16, 5, 8, 13, 22, 20, 8, 6];
  return cols.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' ').trimEnd();
}
