// One broker candidate (spec §4.1): resolve → USAGE → STANDBY → (selected) COOKIE → PREPARE →
// kernel setup → up (keepalive, liveness, PMTU rounds, reliable LIMIT). Sans-IO: datagrams,
// completions and `now` (monotonic ms) come in, actions go out through `out`.
import {
  ClientErrorCode, FEATURE_UNIQUE_SESSION_ID, IPV4_UDP_OVERHEAD, MessageType, TUNNEL_OVERHEAD,
  clientProbeSizes, describeErrorReason, timers,
} from '../protocol/constants.js';
import * as m from '../protocol/messages.js';
import { tunnelMtu } from '../protocol/mtu.js';
import type { LogLevel } from '../runtime/loop.js';
import type { Action, OpenResult } from './actions.js';
import { MAX_PROBE, PmtuRounds, type RoundResult } from './pmtu.js';

export type State =
  | 'idle' // not taking part (other broker selected, or between rounds)
  | 'resolving' // socket opened, waiting for name resolution + connect
  | 'retry' // open/resolve failed, re-init at `next`
  | 'usage' // USAGE sent, waiting for USAGE or COOKIE reply
  | 'standby' // answered, ready to be selected
  | 'cookie' // selected, COOKIE sent
  | 'tunnel' // PREPARE sent
  | 'setup' // kernel setup requested
  | 'up'
  | 'failed';

export interface TunnelConfig {
  uuid: Uint8Array;
  tunnelId: number;
  ifname: string;
  limitKbps: number;
  hook: string | null;
  /** -m: also run `hook session.mtu-changed iface old new` (the original never does). */
  mtuHook?: boolean;
}

interface Reliable {
  seq: number;
  data: Uint8Array;
  at: number;
  sent: number;
}

/** Features we offer in USAGE and PREPARE. */
const FEATURES = FEATURE_UNIQUE_SESSION_ID;

export class BrokerContext {
  readonly name: string;
  state: State = 'idle';
  /** Bumped at every re-init; stale 'open' completions carry an older value. */
  gen = 0;
  usage = 0xffff;
  /** Datagrams that failed to parse or had a malformed payload. */
  dropped = 0;
  /** Local and peer session ids once the TUNNEL reply arrived (spec §2.7). */
  sessionId = 0;
  peerSessionId = 0;
  mtu = 0;
  private cookie: Uint8Array | null = null;
  /** Deadline of the current state (resolve timeout, retry, handshake retransmit). */
  private next = 0;
  private alive = 0;
  private kaSeq = 0;
  private kaAt = 0;
  private relSeq = 0;
  private pending: Reliable[] = [];
  private readonly probing = new PmtuRounds();
  private peerPmtu = 0;
  private kernelUp = false;
  private hookUp = false;
  private lastProblem = '';

  constructor(
    readonly index: number,
    readonly host: string,
    readonly port: string,
    private readonly cfg: TunnelConfig,
  ) {
    this.name = `broker ${host}:${port}`;
  }

  private log(out: Action[], level: LogLevel, msg: string): void {
    out.push({ a: 'log', level, msg: `${this.name}: ${msg}` });
  }

  private send(out: Action[], data: Uint8Array, quiet?: boolean): void {
    out.push(quiet ? { a: 'send', b: this.index, data, quiet } : { a: 'send', b: this.index, data });
  }

  /** New socket and fresh protocol state (every selection round). */
  reinit(now: number, out: Action[]): void {
    this.gen++;
    this.state = 'resolving';
    this.next = now + timers.resolveTimeout;
    this.usage = 0xffff;
    this.cookie = null;
    this.kaSeq = this.relSeq = this.peerPmtu = this.mtu = 0;
    this.probing.stop();
    this.pending = [];
    this.kernelUp = this.hookUp = false;
    out.push({ a: 'open', b: this.index, gen: this.gen, host: this.host, port: this.port });
  }

  /** Stop taking part; the socket is closed. */
  stop(out: Action[]): void {
    if (this.state === 'idle') return;
    this.state = 'idle';
    out.push({ a: 'close', b: this.index });
  }

  opened(gen: number, r: OpenResult, now: number, out: Action[]): void {
    if (gen !== this.gen || this.state !== 'resolving') return;
    if (typeof r === 'string') return this.retry(r, now, out);
    this.lastProblem = '';
    this.log(out, 'debug', `resolved to ${r.ip}:${r.port}, asking for usage`);
    this.state = 'usage';
    this.next = now + timers.handshakeRetry;
    this.send(out, m.encodeUsageRequest(FEATURES));
  }

  /** Open/resolve failed: log (once per distinct problem) and re-init after a pause. */
  private retry(problem: string, now: number, out: Action[]): void {
    if (problem !== this.lastProblem) this.log(out, 'warning', `${problem}; retrying every ${timers.handshakeRetry / 1000} s`);
    this.lastProblem = problem;
    this.state = 'retry';
    this.next = now + timers.handshakeRetry;
  }

  /** Chosen by broker selection: ask for a cookie, then a tunnel. */
  select(now: number, out: Action[]): void {
    this.state = 'cookie';
    this.next = now + timers.handshakeRetry;
    this.send(out, m.encodeCookieRequest());
  }

  tick(now: number, out: Action[]): void {
    switch (this.state) {
      case 'up': // first: string cases are compared one by one, and this is the common one
        return this.tickUp(now, out);
      case 'resolving':
        if (now >= this.next) this.retry(`name resolution did not finish within ${timers.resolveTimeout / 1000} s`, now, out);
        return;
      case 'retry':
        if (now >= this.next) this.reinit(now, out);
        return;
      case 'usage':
      case 'cookie':
      case 'tunnel':
        if (now < this.next) return;
        this.next = now + timers.handshakeRetry;
        // old brokers do not know USAGE: ask for a cookie as well
        if (this.state === 'usage') this.send(out, m.encodeUsageRequest(FEATURES));
        if (this.state !== 'tunnel') this.send(out, m.encodeCookieRequest());
        else this.send(out, this.prepare());
    }
  }

  private prepare(): Uint8Array {
    return m.encodePrepare(this.cookie!, this.cfg.uuid, this.cfg.tunnelId, FEATURES);
  }

  /** `data` may be overwritten after the call (the driver's receive buffer): keep copies only. */
  feed(data: Uint8Array, now: number, out: Action[]): void {
    if (m.frameError(data) !== null) {
      this.dropped++;
      return;
    }
    const s = this.state;
    if (s !== 'up' && (s === 'idle' || s === 'resolving' || s === 'retry' || s === 'failed')) return;
    this.alive = now; // any well-formed control packet proves the broker is there
    // the broker's keepalive, every 5 s of a tunnel's life: liveness only, nothing to decode
    if (data[4] === MessageType.KEEPALIVE) return;
    const f = m.parseFrame(data) as m.Frame;
    const p = f.payload;
    const u16 = p.length === 2 ? m.decodeU16(p)! : -1;
    switch (f.type) {
      case MessageType.USAGE: {
        const usage = m.decodeU16(p);
        if (usage === null) break;
        if (s !== 'usage' && s !== 'standby') return;
        this.usage = usage;
        if (s === 'usage') this.log(out, 'debug', `answered, usage ${usage}/65535`);
        this.state = 'standby';
        return;
      }
      case MessageType.COOKIE: {
        const cookie = m.decodeCookieReply(p);
        if (!cookie) break;
        if (s === 'usage') this.state = 'standby';
        else if (s === 'cookie') {
          this.cookie = cookie;
          this.state = 'tunnel';
          this.next = now + timers.handshakeRetry;
          this.send(out, this.prepare());
        }
        return;
      }
      case MessageType.TUNNEL: {
        const t = m.decodeTunnel(p);
        if (!t) break;
        if (s === 'tunnel') this.setup(t.tunnelId, t.features, out);
        return;
      }
      case MessageType.ERROR: {
        const why = describeErrorReason(m.decodeError(p).reason);
        if (s === 'tunnel') this.fail(out, `refused the tunnel: ${why}`);
        else if (s === 'up') {
          this.log(out, 'warning', `closed tunnel ${this.cfg.tunnelId}: ${why}`);
          this.close(ClientErrorCode.OTHER_REQUEST, out);
        }
        return;
      }
      case MessageType.PMTUD:
        if (s === 'up') this.send(out, m.encodePmtuAck(f.datagramLength));
        return;
      case MessageType.PMTUD_ACK:
        // larger than any probe we send: confused or spoofed, would set an MTU the path cannot carry
        if (u16 < 0 || u16 + IPV4_UDP_OVERHEAD > MAX_PROBE) break;
        if (s === 'up') this.probing.ack(u16 + IPV4_UDP_OVERHEAD);
        return;
      case MessageType.PMTU_NTFY:
        if (u16 < 0) break;
        if (s === 'up' && u16 !== this.peerPmtu) {
          this.log(out, 'info', `reports tunnel MTU ${u16}`);
          this.peerPmtu = u16;
          this.applyMtu(out);
        }
        return;
      case MessageType.REL_ACK:
        if (u16 < 0) break;
        if (s === 'up') this.pending = this.pending.filter((r) => r.seq !== u16);
        return;
      default:
        return; // unknown types
    }
    this.dropped++; // a known type with a malformed payload
  }

  private setup(peerTunnelId: number, features: number, out: Action[]): void {
    const unique = (features & FEATURE_UNIQUE_SESSION_ID) !== 0;
    this.sessionId = unique ? this.cfg.tunnelId : 1;
    this.peerSessionId = unique ? peerTunnelId : 1;
    this.state = 'setup';
    out.push({
      a: 'setup', b: this.index, tunnelId: this.cfg.tunnelId, peerTunnelId,
      sessionId: this.sessionId, peerSessionId: this.peerSessionId, ifname: this.cfg.ifname,
    });
  }

  setupDone(error: string | null, now: number, out: Action[]): void {
    if (this.state !== 'setup') return;
    if (error) return this.fail(out, error);
    const { tunnelId, ifname, hook, limitKbps } = this.cfg;
    this.kernelUp = true;
    this.state = 'up';
    this.alive = now;
    this.kaAt = now + timers.clientKeepalive;
    this.probing.start(now);
    this.log(out, 'info', `tunnel ${tunnelId} up on ${ifname} (session ${this.sessionId}, broker session ${this.peerSessionId})`);
    if (hook) {
      this.hookUp = true;
      out.push({ a: 'hook', path: hook, args: ['session.up', ifname] });
    }
    if (limitKbps > 0) this.sendReliable(now, out, (seq) => m.encodeLimitBandwidthDown(seq, limitKbps));
  }

  private sendReliable(now: number, out: Action[], build: (seq: number) => Uint8Array): void {
    const r = { seq: this.relSeq, data: build(this.relSeq), at: now + timers.reliableRetry, sent: 1 };
    this.relSeq = (this.relSeq + 1) & 0xffff;
    this.pending.push(r);
    if (this.pending.length > timers.reliableMaxPending) this.pending.shift();
    this.send(out, r.data);
  }

  /** Earliest time at which tick() has something to do (Infinity: only a datagram, a
   *  completion or a state change can make work). The driver arms one timer for it. */
  nextDeadline(): number {
    switch (this.state) {
      case 'up': {
        // first case, plain comparisons, an indexed loop: this runs after every event of an
        // idle tunnel
        let d = this.alive + timers.clientLiveness;
        if (this.kaAt < d) d = this.kaAt;
        const p = this.probing.deadline();
        if (p < d) d = p;
        for (let i = 0; i < this.pending.length; i++) if (this.pending[i]!.at < d) d = this.pending[i]!.at;
        return d;
      }
      case 'resolving':
      case 'retry':
      case 'usage':
      case 'cookie':
      case 'tunnel':
        return this.next;
      default:
        return Infinity;
    }
  }

  private tickUp(now: number, out: Action[]): void {
    if (now - this.alive >= timers.clientLiveness) {
      this.log(out, 'warning', `no control packet for ${timers.clientLiveness / 1000} s, closing tunnel ${this.cfg.tunnelId}`);
      return this.close(ClientErrorCode.TIMEOUT, out);
    }
    if (now >= this.kaAt) {
      this.kaAt = now + timers.clientKeepalive;
      this.send(out, m.encodeClientKeepalive(this.kaSeq));
      this.kaSeq = (this.kaSeq + 1) >>> 0;
    }
    // most ticks are a keepalive only: no PMTU or reliable-message work (nor its allocations)
    if (now >= this.probing.deadline()) {
      const { probe, result } = this.probing.tick(now);
      if (result) this.roundDone(result, out);
      for (const size of probe) this.send(out, m.encodePmtuProbe(size), true);
    }
    if (!this.pending.length) return;
    for (const r of this.pending.slice()) {
      if (now < r.at) continue;
      if (r.sent >= timers.reliableAttempts) {
        this.pending.splice(this.pending.indexOf(r), 1);
        this.log(out, 'warning', `did not acknowledge message ${r.seq} after ${r.sent} attempts, giving up on it`);
        continue;
      }
      r.sent++;
      r.at = now + timers.reliableRetry;
      this.send(out, r.data);
    }
  }

  /** End of a PMTU round: apply a changed path MTU, then tell the broker what we measured. */
  private roundDone(r: RoundResult, out: Action[]): void {
    if (r.kind === 'raised' || r.kind === 'lowered') {
      this.log(out, 'info', `path MTU ${r.pmtu}${r.old ? ` (was ${r.old})` : ''}`);
      this.applyMtu(out);
    } else if (r.kind === 'unconfirmed') {
      this.log(out, 'debug', `PMTU probes above ${r.probed} bytes unanswered; ${r.pmtu ? `keeping path MTU ${r.pmtu}` : 'no path MTU yet'} until another round confirms it`);
    } else if (r.kind === 'no-answer') {
      this.log(out, 'debug', `no PMTU probe answered in this round; ${r.pmtu ? `keeping path MTU ${r.pmtu}` : 'no path MTU yet'}`);
    }
    if (r.pmtu > 0) this.send(out, m.encodePmtuNotify(r.pmtu - TUNNEL_OVERHEAD));
  }

  /** Tunnel MTU from our path MTU and the broker's notification (src/protocol/mtu.ts). */
  private applyMtu(out: Action[]): void {
    const pmtu = this.probing.pmtu;
    const mtu = tunnelMtu(pmtu ? pmtu - TUNNEL_OVERHEAD : null, this.peerPmtu || null);
    if (mtu === null || mtu === this.mtu) return;
    out.push({ a: 'mtu', b: this.index, tunnelId: this.cfg.tunnelId, sessionId: this.sessionId, ifname: this.cfg.ifname, mtu });
  }

  /** oldMtu: the interface MTU before the change (0 when unknown). */
  mtuDone(mtu: number, oldMtu: number, error: string | null, out: Action[]): void {
    if (this.state !== 'up') return;
    if (error) return this.log(out, 'warning', `could not set MTU ${mtu} on ${this.cfg.ifname}: ${error}; keeping the old one`);
    const old = oldMtu || this.mtu;
    this.mtu = mtu;
    if (old === mtu) return;
    this.log(out, 'info', `MTU of ${this.cfg.ifname} changed from ${old || 'unknown'} to ${mtu}`);
    if (this.cfg.hook && this.cfg.mtuHook) out.push({ a: 'hook', path: this.cfg.hook, args: ['session.mtu-changed', this.cfg.ifname, `${old}`, `${mtu}`] });
  }

  /** Send failure; fatal (EINVAL: the interface vanished) ends the attempt. */
  sendFailed(error: string, now: number, out: Action[]): void {
    const s = this.state;
    if (s === 'up') {
      this.log(out, 'error', `sending failed (${error}), closing tunnel ${this.cfg.tunnelId}`);
      this.close(ClientErrorCode.FAILURE, out);
    } else if (s === 'cookie' || s === 'tunnel') this.fail(out, `sending failed: ${error}`);
    else if (s === 'usage') this.retry(`sending failed: ${error}`, now, out);
  }

  /** Ends an established (or selected) tunnel: ERROR to the broker, down hook, kernel cleanup. */
  close(reason: number, out: Action[]): void {
    this.send(out, m.encodeError(reason));
    const { hook, ifname, tunnelId } = this.cfg;
    if (hook && this.hookUp) out.push({ a: 'hook', path: hook, args: ['session.down', ifname] });
    if (this.kernelUp) out.push({ a: 'teardown', tunnelId, sessionIds: [this.sessionId], ifname });
    this.kernelUp = this.hookUp = false;
    this.probing.stop();
    this.state = 'failed';
  }

  private fail(out: Action[], why: string): void {
    this.log(out, 'error', why);
    this.state = 'failed';
  }
}
