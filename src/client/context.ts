// One broker candidate (spec §4.1): resolve → USAGE → STANDBY → (selected) COOKIE → PREPARE →
// kernel setup → up (keepalive, liveness, PMTU rounds, reliable LIMIT). Sans-IO: datagrams,
// completions and `now` (monotonic ms) come in, actions go out through `out`.
import {
  ClientErrorCode, FEATURE_UNIQUE_SESSION_ID, MessageType, describeErrorReason, timers,
} from '../protocol/constants.js';
import type { Family } from '../protocol/endpoint.js';
import { formatHostPort } from '../protocol/ip-address.js';
import * as m from '../protocol/messages.js';
import { clientProbeSizesFor, ipUdpOverhead, pathToTunnelMtu, tunnelMtu } from '../protocol/mtu.js';
import type { LogLevel } from '../runtime/loop.js';
import type { Action, Address, OpenResult } from './actions.js';
import { PmtuRounds, type RoundResult } from './pmtu.js';
import { addressesToTry } from './selection.js';

export type State =
  | 'idle' // not taking part (other broker selected, or between rounds)
  | 'resolving' // waiting for name resolution
  | 'retry' // open/resolve failed, re-init at `next`
  | 'usage' // USAGE sent over each path, waiting for the first USAGE or COOKIE reply
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
  /** The only address family to use (-l given), absent or null: both. */
  family?: Family | null;
}

/** One way to the broker: its first address of a family, on a socket of that family. */
interface Path extends Address {
  family: Family;
  state: 'waiting' | 'connecting' | 'open' | 'dead';
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
  /** When the next keepalive is due (the previous one + the interval): it goes with any wake-up
   *  from kaAt - slack on, the timer is at kaAt + slack (see timers.clientKeepaliveSlack). */
  private kaAt = 0;
  /** When the broker's last keepalive arrived (its next one is expected 5 s later). */
  private brokerKaAt = -Infinity;
  private relSeq = 0;
  private pending: Reliable[] = [];
  private readonly probing = new PmtuRounds();
  private peerPmtu = 0;
  private kernelUp = false;
  private hookUp = false;
  private lastProblem = '';
  /** The addresses asked in this round (at most one per family) and the one that answered
   *  first, which carries everything after the USAGE/COOKIE answer. */
  private paths: Path[] = [];
  private via: Path | null = null;
  /** When the second path is started if the first has not answered (Infinity: not pending). */
  private secondAt = Infinity;

  constructor(
    readonly index: number,
    readonly host: string,
    readonly port: string,
    private readonly cfg: TunnelConfig,
  ) {
    this.name = `broker ${formatHostPort(host, port)}`;
  }

  private log(out: Action[], level: LogLevel, msg: string): void {
    out.push({ a: 'log', level, msg: `${this.name}: ${msg}` });
  }

  /** Sends on the path that answered (or, before an answer, on every connected path). */
  private send(out: Action[], data: Uint8Array, quiet?: boolean): void {
    const b = this.index;
    for (const p of this.via ? [this.via] : this.paths) {
      if (p.state !== 'open') continue;
      out.push(quiet ? { a: 'send', b, fam: p.family, data, quiet } : { a: 'send', b, fam: p.family, data });
    }
  }

  /** The underlay family of the tunnel (the path that answered). */
  get family(): Family {
    return this.via?.family ?? 4;
  }

  /** Where the tunnel goes: "[2001:db8::1]:8942" once a path answered, else "". */
  get address(): string {
    return this.via ? formatHostPort(this.via.ip, this.via.port) : '';
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
    this.paths = [];
    this.via = null;
    this.secondAt = Infinity;
    out.push({ a: 'open', b: this.index, gen: this.gen, host: this.host, port: this.port });
  }

  /** Stop taking part; the socket is closed. */
  stop(out: Action[]): void {
    if (this.state === 'idle') return;
    this.state = 'idle';
    out.push({ a: 'close', b: this.index });
  }

  /** The broker's addresses: connect to the first of the preferred family now, to the other
   *  family's timers.secondFamilyDelay later (or as soon as the first cannot be used). */
  opened(gen: number, r: OpenResult, now: number, out: Action[]): void {
    if (gen !== this.gen || this.state !== 'resolving') return;
    if (typeof r === 'string') return this.retry(r, now, out);
    const only = this.cfg.family ?? null;
    this.paths = addressesToTry(r, only).map((a) => ({ ...a, family: a.family ?? 4, state: 'waiting' }));
    if (!this.paths.length) return this.retry(`${this.host} has no IPv${only} address (the family of -l)`, now, out);
    this.lastProblem = '';
    this.log(out, 'debug', `resolved to ${this.paths.map((p) => formatHostPort(p.ip, p.port)).join(' and ')}, asking for usage`);
    this.state = 'usage';
    this.next = now + timers.handshakeRetry;
    this.secondAt = this.paths.length > 1 ? now + timers.secondFamilyDelay : Infinity;
    this.connect(this.paths[0], out);
  }

  private connect(p: Path, out: Action[]): void {
    p.state = 'connecting';
    out.push({ a: 'connect', b: this.index, gen: this.gen, fam: p.family, ip: p.ip, port: p.port });
  }

  /** The socket of family fam is connected (error null) or could not be: ask for usage over it,
   *  or go on with the other family at once. */
  connected(gen: number, fam: Family, error: string | null, now: number, out: Action[]): void {
    const p = this.paths.find((x) => x.family === fam);
    if (gen !== this.gen || this.state !== 'usage' || !p || p.state !== 'connecting') return;
    if (!error) {
      p.state = 'open';
      out.push({ a: 'send', b: this.index, fam, data: m.encodeUsageRequest(FEATURES) });
      return;
    }
    this.pathFailed(p, error, now, out);
  }

  /** A path that cannot be used (no socket, no route, interface gone before any answer). */
  private pathFailed(p: Path, error: string, now: number, out: Action[]): void {
    p.state = 'dead';
    out.push({ a: 'close', b: this.index, fam: p.family });
    const waiting = this.paths.find((x) => x.state === 'waiting');
    if (waiting) {
      this.log(out, 'debug', `${formatHostPort(p.ip, p.port)}: ${error}; trying ${formatHostPort(waiting.ip, waiting.port)} now`);
      this.secondAt = Infinity;
      return this.connect(waiting, out);
    }
    if (this.paths.some((x) => x.state !== 'dead')) return this.log(out, 'debug', `${formatHostPort(p.ip, p.port)}: ${error}`);
    this.retry(error, now, out);
  }

  /** The first USAGE/COOKIE answer: its path carries the tunnel, the other one is closed. */
  private answeredOver(p: Path, out: Action[]): void {
    this.via = p;
    this.secondAt = Infinity;
    for (const x of this.paths) {
      if (x !== p && (x.state === 'open' || x.state === 'connecting')) out.push({ a: 'close', b: this.index, fam: x.family });
      if (x !== p) x.state = 'dead';
    }
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
    if (this.state === 'usage' && now >= this.secondAt) {
      // the first family did not answer within secondFamilyDelay: ask over the other one too
      this.secondAt = Infinity;
      const waiting = this.paths.find((x) => x.state === 'waiting');
      if (waiting) this.connect(waiting, out);
    }
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

  /** A datagram received on the socket of family fam. `data` may be overwritten after the call
   *  (the driver's receive buffer): keep copies only. */
  feed(data: Uint8Array, now: number, out: Action[], fam: Family = 4): void {
    if (m.frameError(data) !== null) {
      this.dropped++;
      return;
    }
    const s = this.state;
    if (s !== 'up' && (s === 'idle' || s === 'resolving' || s === 'retry' || s === 'failed')) return;
    // after the first answer only its path counts (the other socket is closed, but a datagram
    // may have been read in the same batch)
    const path = this.via ?? this.paths.find((x) => x.family === fam && x.state === 'open');
    if (!path || path.family !== fam) return;
    this.alive = now; // any well-formed control packet proves the broker is there
    // the broker's keepalive, every 5 s of a tunnel's life: liveness only, nothing to decode;
    // ours goes in the same wake-up when it is nearly due: once in step with the broker's, a
    // tunnel's normal life is one wake-up per 5 s instead of two
    if (data[4] === MessageType.KEEPALIVE) {
      const prev = this.brokerKaAt;
      this.brokerKaAt = now;
      if (s !== 'up') return;
      const slack = timers.clientKeepaliveSlack;
      // ours is due within the slack; or the broker's next one (its keepalives are ~5 s apart)
      // would come after our timer: sending now, a second or more after our last, puts ours in
      // step with the broker's, so that every later one shares its wake-up
      if (now >= this.kaAt - slack || (now - prev >= timers.brokerKeepalive - slack && now + timers.brokerKeepalive > this.kaAt + slack)) this.keepalive(now, out);
      return;
    }
    const f = m.parseFrame(data) as m.Frame;
    const p = f.payload;
    const u16 = p.length === 2 ? m.decodeU16(p)! : -1;
    switch (f.type) {
      case MessageType.USAGE: {
        const usage = m.decodeU16(p);
        if (usage === null) break;
        if (s !== 'usage' && s !== 'standby') return;
        this.usage = usage;
        if (s === 'usage') {
          this.answeredOver(path, out);
          this.log(out, 'debug', `answered over ${formatHostPort(path.ip, path.port)}, usage ${usage}/65535`);
        }
        this.state = 'standby';
        return;
      }
      case MessageType.COOKIE: {
        const cookie = m.decodeCookieReply(p);
        if (!cookie) break;
        if (s === 'usage') {
          this.answeredOver(path, out);
          this.state = 'standby';
        } else if (s === 'cookie') {
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
        if (u16 < 0 || u16 + ipUdpOverhead(this.family) > this.probing.maxProbe) break;
        if (s === 'up') this.probing.ack(u16 + ipUdpOverhead(this.family));
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
      a: 'setup', b: this.index, fam: this.family, tunnelId: this.cfg.tunnelId, peerTunnelId,
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
    this.brokerKaAt = -Infinity;
    this.probing.start(now, clientProbeSizesFor(this.family));
    this.log(out, 'info', `tunnel ${tunnelId} up on ${ifname} over IPv${this.family} (session ${this.sessionId}, broker session ${this.peerSessionId})`);
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
        const ka = this.kaAt + timers.clientKeepaliveSlack;
        if (ka < d) d = ka;
        const p = this.probing.deadline();
        if (p < d) d = p;
        for (let i = 0; i < this.pending.length; i++) if (this.pending[i]!.at < d) d = this.pending[i]!.at;
        return d;
      }
      case 'resolving':
      case 'retry':
      case 'usage':
        return Math.min(this.next, this.secondAt);
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
    // another timer (a PMTU round) carries the keepalive, but not when the broker's next one is
    // expected before our keepalive timer: it will carry ours without putting it out of step
    const slack = timers.clientKeepaliveSlack;
    const brokerNext = this.brokerKaAt + timers.brokerKeepalive;
    if (now >= this.kaAt - slack && (brokerNext <= now || brokerNext > this.kaAt + slack)) this.keepalive(now, out);
    // most ticks are a keepalive only: no PMTU or reliable-message work (nor its allocations)
    if (now >= this.probing.deadline()) {
      const { probe, result } = this.probing.tick(now);
      if (result) this.roundDone(result, out);
      for (const size of probe) this.send(out, m.encodePmtuProbe(size, this.family), true);
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

  /** Sends the keepalive (a broker keepalive or another timer carries it, its own timer at
   *  kaAt + slack is the fallback) and makes the next one due an interval later. */
  private keepalive(now: number, out: Action[]): void {
    this.kaAt = now + timers.clientKeepalive;
    this.send(out, m.encodeClientKeepalive(this.kaSeq));
    this.kaSeq = (this.kaSeq + 1) >>> 0;
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
    if (r.pmtu > 0) this.send(out, m.encodePmtuNotify(pathToTunnelMtu(r.pmtu, this.family)));
  }

  /** Tunnel MTU from our path MTU and the broker's notification (src/protocol/mtu.ts). */
  private applyMtu(out: Action[]): void {
    const pmtu = this.probing.pmtu;
    const mtu = tunnelMtu(pmtu ? pathToTunnelMtu(pmtu, this.family) : null, this.peerPmtu || null);
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

  /** Send failure on the socket of family fam; fatal (EINVAL: the interface vanished) ends the
   *  attempt (before an answer: that path only). */
  sendFailed(error: string, now: number, out: Action[], fam: Family = 4): void {
    const s = this.state;
    if (s === 'usage') {
      const p = this.paths.find((x) => x.family === fam && x.state === 'open');
      if (p) this.pathFailed(p, `sending failed: ${error}`, now, out);
      return;
    }
    if (this.via && this.via.family !== fam) return;
    if (s === 'up') {
      this.log(out, 'error', `sending failed (${error}), closing tunnel ${this.cfg.tunnelId}`);
      this.close(ClientErrorCode.FAILURE, out);
    } else if (s === 'cookie' || s === 'tunnel') this.fail(out, `sending failed: ${error}`);
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
