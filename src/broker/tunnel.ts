// BrokerTunnel: the sans-IO state machine of one established tunnel (spec §4.2 "Per-tunnel
// behaviour"): liveness and keepalives, answers to client probes, MTU bookkeeping (the
// broker-side PMTU probing and measurement are in tunnel-pmtu.ts), reliable-message acks and
// the bandwidth LIMIT, and the close sequence.
// Handshake messages (COOKIE/USAGE/PREPARE) on the tunnel socket are handled by broker.ts.
import type { Endpoint } from '../native.js';
import {
  BrokerErrorCode, FEATURE_UNIQUE_SESSION_ID, MessageType, MTU_MIN, describeErrorReason, timers,
} from '../protocol/constants.js';
import {
  decodeError, isReliable, decodeLimit, decodeReliableSeq, decodeU16, encodeBrokerKeepalive, encodeError, encodePmtuAck,
  encodePmtuNotify, encodeRelAck, encodeTunnel, type Frame,
} from '../protocol/messages.js';
import type { Action, SocketRef } from './actions.js';
import type { BrokerConfig } from './config.js';
import type { Counters } from './counters.js';
import type { LogLevel } from '../runtime/loop.js';
import { fitReply } from './reply-size.js';
import { TokenBucket } from './token-bucket.js';
import { mtuChangedHookJob, sessionHookJob, tunnelQueue, type SessionHook, type SessionInfoForHooks } from './hooks.js';
import { bandwidthLimitCommands } from './traffic-control.js';
import { periodic } from './deadline-heap.js';
import { BrokerPmtu } from './tunnel-pmtu.js';
import { familyOf } from '../protocol/ip-address.js';

/** What every tunnel shares with the broker core. */
export interface TunnelContext {
  cfg: BrokerConfig;
  counters: Counters;
  /** Uniform [0, 1). */
  random: () => number;
  errno: { EMSGSIZE: number };
  /** Absolute path of tc(8). */
  tcPath: string;
  /** "ip:port" or a redacted form when log_ip_addresses=false. */
  showEndpoint: (ep: Endpoint) => string;
  /** Whether a log line of this level would be written (build the text only then). */
  logOn: (level: LogLevel) => boolean;
  /** The tunnel started (+1) or stopped (-1) counting as live for the usage figure. */
  liveChanged: (delta: number, port: number) => void;
}

export type TunnelState = 'setup' | 'up' | 'closed';

const SOCKET_ERROR_LIMIT = 10;
/** A client sends its first keepalive within ~6 s of TUNNEL (and answers our PMTU probes, the
 *  first one 0-4 s after TUNNEL): a tunnel that heard nothing for this long has no client and
 *  no longer counts in the usage figure. */
export const UNHEARD_MS = 30_000;
/** LIMIT: a change of the value is applied (four tc processes) at most this often per tunnel,
 *  after a burst of LIMIT_BURST. A client sends one LIMIT per tunnel (retransmits repeat it). */
export const LIMIT_INTERVAL_MS = 60_000;
export const LIMIT_BURST = 2;

export class BrokerTunnel {
  state: TunnelState = 'setup';
  readonly sessionId: number;
  readonly peerSessionId: number;
  readonly ifname: string;
  readonly features: number;
  readonly socket: SocketRef;
  createdAt: number;
  lastAlive: number;
  mtu = 0;
  /** Downstream bandwidth limit asked for with LIMIT (kbit/s, 0 = none). */
  limitKbps = 0;
  /** Broker-side PMTU probing and both measurements (broker.pmtu when the tunnel was made). */
  private readonly pmtu: BrokerPmtu;
  private keepaliveSeq = 0;
  private nextKeepaliveAt = Infinity;
  private socketErrors = 0;
  /** A message (other than a handshake retransmit) came from the client since TUNNEL. */
  heard = false;
  /** Counted in the usage figure: up, and heard from or younger than UNHEARD_MS. */
  private live = false;
  private unheardCheckAt = Infinity;
  /** The LIMIT bandwidth last applied (kbit/s), null before the first. */
  private limitBucket: TokenBucket | null = null;
  private limitRefusalLogged = false;
  /** Deadline of this tunnel's valid entry in the core's timer heap (Infinity: none). */
  scheduledAt = Infinity;

  constructor(
    private readonly ctx: TunnelContext,
    readonly tunnelId: number,
    readonly peerTunnelId: number,
    readonly endpoint: Endpoint,
    readonly port: number,
    readonly uuid: string,
    /** Negotiated features (client offer & FEATURES_MASK). */
    features: number,
    now: number,
    /** Address of the listener the PREPARE came in on ('' = the first of broker.address). */
    readonly listenAddress = '',
  ) {
    this.features = features;
    const unique = (features & FEATURE_UNIQUE_SESSION_ID) !== 0;
    this.sessionId = unique ? tunnelId : 1;
    this.peerSessionId = unique ? peerTunnelId : 1;
    this.ifname = `l2tp${tunnelId}-${this.sessionId}`;
    this.socket = { kind: 'tunnel', tunnelId };
    this.pmtu = new BrokerPmtu(ctx.cfg.pmtu, familyOf(endpoint.ip));
    this.createdAt = now;
    this.lastAlive = now;
  }

  get name(): string {
    return `tunnel ${this.tunnelId} (uuid ${this.uuid}, ${this.ctx.showEndpoint(this.endpoint)})`;
  }

  get fixedPmtu(): boolean {
    return this.pmtu.fixed;
  }

  /** The kernel tunnel and session exist: set the MTU, answer TUNNEL, start timers, session.up. */
  activate(now: number): Action[] {
    const out: Action[] = [];
    this.state = 'up';
    this.createdAt = now;
    this.lastAlive = now;
    this.mtu = this.pmtu.tunnelMtu();
    out.push({ type: 'setMtu', tunnelId: this.tunnelId, sessionId: this.sessionId, ifname: this.ifname, mtu: this.mtu });
    out.push(this.send(encodeTunnel(this.tunnelId, this.features)));
    // spread keepalives of tunnels created together: first one after 1-5 s, then every 5 s
    this.nextKeepaliveAt = now + 1000 + Math.floor(this.ctx.random() * 4000);
    this.unheardCheckAt = now + UNHEARD_MS;
    this.setLive(true);
    if (this.fixedPmtu) {
      // the MTU we use, also when broker.pmtu is outside 1280-1446 (the original told the
      // client the configured value while clamping its own interface)
      out.push(this.send(encodePmtuNotify(this.mtu)));
    } else {
      // 0-4 s; unlike the original (timerfd with 0 = disarmed), a zero delay still probes
      this.pmtu.start(now, Math.floor(this.ctx.random() * 4001));
    }
    this.hook(out, 'session.up', this.ctx.cfg.hooks.sessionUp);
    out.push(log('info', `${this.name} up: interface ${this.ifname}, session ${this.sessionId}/${this.peerSessionId}, mtu ${this.mtu}`));
    return out;
  }

  /** TUNNEL again (with the features word: the original's retransmit omitted it, spec §2.4.4). */
  tunnelReply(): Uint8Array {
    return encodeTunnel(this.tunnelId, this.features);
  }

  /** A non-handshake message from the tunnel's own endpoint. */
  handle(frame: Frame, now: number): Action[] {
    const out: Action[] = [];
    if (this.state !== 'up') return out;
    this.lastAlive = now;
    if (!this.heard) {
      this.heard = true;
      this.setLive(true);
    }
    if (this.socketErrors > 0) this.socketErrors--;
    const type = frame.type;
    if (type === MessageType.ERROR) {
      const { reason } = decodeError(frame.payload);
      return this.close(BrokerErrorCode.OTHER_REQUEST, `client closed it: ${describeErrorReason(reason)}`, true, clientCloseLabel(reason));
    }
    if (type === MessageType.KEEPALIVE) return out;
    if (type === MessageType.PMTUD) {
      // a client probe: ACK its UDP payload length, or tell a fixed MTU; real probes are
      // 1306 bytes and more, a tiny one gets no answer larger than itself
      const reply = fitReply(this.fixedPmtu ? encodePmtuNotify(this.mtu) : encodePmtuAck(frame.datagramLength), frame.datagramLength);
      // shared: a PMTU round's ACKs of many tunnels in one read leave in one sendmmsg too
      if (reply) out.push(this.send(reply, true));
      else this.ctx.counters.add('drop-short-probe');
      return out;
    }
    if (type === MessageType.PMTUD_ACK) {
      if (!this.fixedPmtu) this.onProbeAck(frame, out);
      return out;
    }
    if (type === MessageType.PMTU_NTFY) {
      if (!this.fixedPmtu) this.onRemoteNotify(frame, out);
      return out;
    }
    if (isReliable(type)) {
      this.onReliable(frame, now, out);
      return out;
    }
    this.ctx.counters.add('tunnel-unhandled-type');
    if (this.ctx.logOn('debug')) out.push(log('debug', `${this.name}: ignoring message type 0x${type.toString(16)}`));
    return out;
  }

  private onProbeAck(frame: Frame, out: Action[]): void {
    const value = decodeU16(frame.payload);
    if (value === null) return this.dropShort(out, 'PMTUD_ACK');
    const measured = this.pmtu.ack(value);
    if (measured === 'too-large') {
      this.ctx.counters.add('drop-pmtud-ack-too-large');
      return;
    }
    if (measured === 'same') return;
    this.updateMtu(out);
    out.push(this.send(encodePmtuNotify(measured), true));
  }

  private onRemoteNotify(frame: Frame, out: Action[]): void {
    const value = decodeU16(frame.payload);
    if (value === null) return this.dropShort(out, 'PMTU_NTFY');
    if (this.pmtu.remoteNotify(value)) this.updateMtu(out);
  }

  private onReliable(frame: Frame, now: number, out: Action[]): void {
    const seq = decodeReliableSeq(frame.payload);
    if (seq === null) return this.dropShort(out, 'reliable message');
    // every reliable message is acknowledged (REL_ACK is 8 bytes unpadded, a reliable message
    // at least 8: the padding goes when the request was shorter)
    out.push(this.send(fitReply(encodeRelAck(seq), frame.datagramLength)!, true));
    if (frame.type !== MessageType.LIMIT) return;
    const limit = decodeLimit(frame.payload);
    if (limit === null) return this.dropShort(out, 'LIMIT');
    if (limit.bandwidthKbps === null) {
      if (this.ctx.logOn('debug')) out.push(log('debug', `${this.name}: ignoring LIMIT type ${limit.limitType} (acknowledged)`));
      return;
    }
    if (limit.bandwidthKbps === 0) {
      out.push(log('warning', `${this.name}: ignoring a 0 kbit/s downstream limit`));
      return;
    }
    if (limit.bandwidthKbps === this.limitKbps) {
      // a retransmit (our REL_ACK was lost) or a repeat: tc already has this value
      this.ctx.counters.add('limits-unchanged');
      return;
    }
    this.limitBucket ??= new TokenBucket(LIMIT_INTERVAL_MS, LIMIT_BURST);
    if (!this.limitBucket.take(now)) {
      this.ctx.counters.add('refused-limit-rate');
      const level = this.limitRefusalLogged ? 'debug' : 'warning';
      this.limitRefusalLogged = true;
      if (this.ctx.logOn(level)) {
        out.push(log(level, `${this.name}: ignoring LIMIT ${limit.bandwidthKbps} kbit/s (acknowledged): more than ` +
          `${LIMIT_BURST} changes within ${LIMIT_INTERVAL_MS / 1000} s; ${this.limitKbps ? `${this.limitKbps} kbit/s` : 'no limit'} stays`));
      }
      return;
    }
    this.limitKbps = limit.bandwidthKbps;
    this.ctx.counters.add('limits-applied');
    out.push(log('info', `${this.name}: limiting downstream bandwidth to ${limit.bandwidthKbps} kbit/s`));
    for (const c of bandwidthLimitCommands(this.ifname, limit.bandwidthKbps)) {
      out.push({
        type: 'run',
        job: {
          queue: tunnelQueue(this.tunnelId), path: this.ctx.tcPath, args: c.args, logArgs: c.args,
          label: `tc for tunnel ${this.tunnelId}`, ignoreFailure: c.ignoreFailure,
        },
      });
    }
  }

  private dropShort(out: Action[], what: string): void {
    this.ctx.counters.add('drop-short-payload');
    if (this.ctx.logOn('debug')) out.push(log('debug', `${this.name}: dropped a ${what} with a short payload`));
  }

  tick(now: number): Action[] {
    const out: Action[] = [];
    if (this.state !== 'up') return out;
    if (now >= this.nextKeepaliveAt) {
      if (now - this.lastAlive > timers.brokerTimeout) {
        this.ctx.counters.add('tunnels-timed-out');
        return this.close(BrokerErrorCode.TIMEOUT, `no message for ${Math.round((now - this.lastAlive) / 1000)} s`);
      }
      // shared: may leave through the listener, in one batch with the other tunnels' (executor.ts)
      out.push(this.send(encodeBrokerKeepalive(this.keepaliveSeq), true));
      this.keepaliveSeq = (this.keepaliveSeq + 1) & 0xffff;
      this.nextKeepaliveAt = periodic(this.nextKeepaliveAt, timers.brokerKeepalive, now);
    }
    if (now >= this.pmtu.nextProbeAt) this.probeStep(now, out);
    if (now >= this.unheardCheckAt) {
      this.unheardCheckAt = Infinity;
      if (!this.heard) {
        this.setLive(false);
        this.ctx.counters.add('tunnels-unheard');
        out.push(log('info', `${this.name}: no message from the client within ${UNHEARD_MS / 1000} s of TUNNEL; ` +
          'not counted in the usage any more, a new PREPARE from this endpoint replaces it'));
      }
    }
    return out;
  }

  /** The next step of the PMTU probe run (tunnel-pmtu.ts): a probe to send, or a pause. */
  private probeStep(now: number, out: Action[]): void {
    const step = this.pmtu.probeStep(now, this.ctx.random);
    if (step === 'unanswered') {
      if (this.ctx.logOn('debug')) out.push(log('debug', `${this.name}: no PMTU probe was acknowledged`));
    } else if (step !== 'rest') {
      out.push(this.send(step));
    }
  }

  nextDeadline(): number {
    return this.state === 'up' ? Math.min(this.nextKeepaliveAt, this.pmtu.nextProbeAt, this.unheardCheckAt) : Infinity;
  }

  /** A send or receive error on the tunnel socket. */
  socketError(errno: number, error: string): Action[] {
    if (this.state !== 'up') return [];
    if (errno === this.ctx.errno.EMSGSIZE) {
      this.ctx.counters.add('pmtu-probe-emsgsize');
      return [];
    }
    this.ctx.counters.add('tunnel-socket-errors');
    this.socketErrors++;
    const out: Action[] = [];
    if (this.ctx.logOn('debug')) out.push(log('debug', `${this.name}: socket error ${error} (${this.socketErrors}/${SOCKET_ERROR_LIMIT})`));
    if (this.socketErrors >= SOCKET_ERROR_LIMIT) {
      out.push(...this.close(BrokerErrorCode.FAILURE, `${SOCKET_ERROR_LIMIT} socket errors, last: ${error}`));
    }
    return out;
  }

  /** pre-down hook, ERROR(reason) to the client (unless `notify` is false: the endpoint now
   *  belongs to another client), kernel teardown, down hook. */
  close(reason: BrokerErrorCode, why: string, notify = true, label = closeLabel(reason)): Action[] {
    if (this.state === 'closed') return [];
    this.ctx.counters.add(`${CLOSED_BY_PREFIX}${label}`);
    const wasUp = this.state === 'up';
    this.state = 'closed';
    this.setLive(false);
    this.nextKeepaliveAt = Infinity;
    this.pmtu.stop();
    this.unheardCheckAt = Infinity;
    const out: Action[] = [log('info', `${this.name} closed: ${why}`)];
    this.ctx.counters.add('tunnels-closed');
    if (wasUp) this.hook(out, 'session.pre-down', this.ctx.cfg.hooks.sessionPreDown);
    if (notify) out.push(this.send(encodeError(reason)));
    out.push({ type: 'teardown', tunnelId: this.tunnelId, sessionId: this.sessionId });
    if (wasUp) this.hook(out, 'session.down', this.ctx.cfg.hooks.sessionDown);
    return out;
  }

  private setLive(live: boolean): void {
    if (live === this.live) return;
    this.live = live;
    this.ctx.liveChanged(live ? 1 : -1, this.port);
  }

  private updateMtu(out: Action[]): void {
    const mtu = this.pmtu.tunnelMtu();
    if (mtu === this.mtu) return;
    const old = this.mtu;
    this.mtu = mtu;
    out.push(log('info', `${this.name}: MTU ${old} -> ${mtu}`));
    out.push({ type: 'setMtu', tunnelId: this.tunnelId, sessionId: this.sessionId, ifname: this.ifname, mtu });
    const path = this.ctx.cfg.hooks.sessionMtuChanged;
    if (path) out.push({ type: 'run', job: mtuChangedHookJob(path, this.hookInfo(), old, mtu), afterKernel: this.tunnelId });
  }

  private hookInfo(): SessionInfoForHooks {
    return {
      tunnelId: this.tunnelId, sessionId: this.sessionId, ifname: this.ifname, mtu: this.mtu,
      clientIp: this.endpoint.ip, clientPort: this.endpoint.port, port: this.port, uuid: this.uuid,
    };
  }

  /** A session hook starts once the kernel has done what this tunnel's actions before it asked
   *  (afterKernel, actions.ts): session.up and pre-down see the MTU set, down the interface gone. */
  private hook(out: Action[], name: SessionHook, path: string): void {
    if (path) out.push({ type: 'run', job: sessionHookJob(name, path, this.hookInfo(), this.ctx.cfg.logIpAddresses), afterKernel: this.tunnelId });
  }

  private send(data: Uint8Array, shared = false): Action {
    return shared ? { type: 'send', socket: this.socket, data, to: this.endpoint, shared } : { type: 'send', socket: this.socket, data, to: this.endpoint };
  }

  /** For the status table. */
  describe(now: number): { pmtuProbe: string; remoteMtu: number | null; idleMs: number; ageMs: number } {
    return {
      pmtuProbe: this.pmtu.describe(),
      remoteMtu: this.pmtu.remoteMtu,
      idleMs: now - this.lastAlive,
      ageMs: now - this.createdAt,
    };
  }
}

export function log(level: 'error' | 'warning' | 'info' | 'debug', message: string): Action {
  return { type: 'log', level, message };
}

/** Counter name prefix of tunnel closures by reason (metrics.ts turns it into a label). */
export const CLOSED_BY_PREFIX = 'tunnels-closed-by:';

/** Why the broker closed a tunnel, as a bounded label: timeout, shutdown, failure, ... */
function closeLabel(reason: BrokerErrorCode): string {
  switch (reason) {
    case BrokerErrorCode.SHUTDOWN: return 'shutdown';
    case BrokerErrorCode.TIMEOUT: return 'timeout';
    case BrokerErrorCode.FAILURE: return 'failure';
    default: return 'other';
  }
}

/** A client's ERROR reason byte as a label: client-shutdown, client-timeout, ... */
function clientCloseLabel(reason: number | undefined): string {
  const names: Record<number, string> = { 0x10: 'client-other-request', 0x11: 'client-shutdown', 0x12: 'client-timeout', 0x13: 'client-failure' };
  return (reason !== undefined && names[reason]) || 'client-unknown';
}
