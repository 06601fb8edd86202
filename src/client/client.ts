// The client's main loop as a sans-IO state machine (spec §4.1 "Main loop", with the upstream
// bugs fixed): selection rounds over all brokers, one selected broker with 15 s to set up a
// tunnel, failed brokers avoided for an hour while others answer, exponential backoff with
// jitter between attempts, graceful shutdown. Every method returns the actions to execute.
import { ClientErrorCode, timers } from '../protocol/constants.js';
import { utf8Encode } from '../protocol/messages.js';
import type { Action, OpenResult } from './actions.js';
import { BrokerContext } from './context.js';
import type { Family } from '../protocol/endpoint.js';
import { formatHostPort } from '../protocol/ip-address.js';
import { type Options, bindFamily } from './options.js';
import { backoffDelay, chooseBroker } from './selection.js';

export type Phase = 'idle' | 'round' | 'selected' | 'up' | 'pause' | 'done';

/** A tunnel that stayed up this long resets the backoff. */
export const STABLE_UP_MS = 120_000;

export class Client {
  readonly ctxs: BrokerContext[];
  phase: Phase = 'idle';
  /** Consecutive failed attempts (reset by a stable tunnel). */
  failures = 0;
  selected: BrokerContext | null = null;
  /** When each broker last failed us (-1: never or expired). Full-width ms, unlike upstream. */
  readonly failedAt: number[];
  private at = 0;
  private upSince = 0;
  private started = false;
  /** The last failed attempt was a round in which no broker answered. */
  private silent = false;

  constructor(
    private readonly opts: Options,
    private readonly random: () => number = Math.random,
  ) {
    const cfg = {
      uuid: utf8Encode(opts.uuid), tunnelId: opts.tunnelId, ifname: opts.ifname,
      limitKbps: opts.limitKbps, hook: opts.hook, mtuHook: opts.mtuHook, family: bindFamily(opts),
    };
    this.ctxs = opts.brokers.map((b, i) => new BrokerContext(i, b.host, b.port, cfg));
    this.failedAt = this.ctxs.map(() => -1);
  }

  start(now: number): Action[] {
    const out: Action[] = [];
    this.round(now, out);
    return out;
  }

  tick(now: number): Action[] {
    const out: Action[] = [];
    if (this.phase === 'pause' && now >= this.at) this.round(now, out);
    else for (let i = 0; i < this.ctxs.length; i++) this.ctxs[i]!.tick(now, out);
    return this.check(now, out);
  }

  /** A datagram on b's socket of family fam. */
  feed(b: number, data: Uint8Array, now: number, fam: Family = 4): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.feed(data, now, out, fam);
    return this.check(now, out);
  }

  opened(b: number, gen: number, r: OpenResult, now: number): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.opened(gen, r, now, out);
    return this.check(now, out);
  }

  /** A 'connect' finished (error null: connected). */
  connected(b: number, gen: number, fam: Family, error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.connected(gen, fam, error, now, out);
    return this.check(now, out);
  }

  sendFailed(b: number, error: string, now: number, fam: Family = 4): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.sendFailed(error, now, out, fam);
    return this.check(now, out);
  }

  setupDone(b: number, error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.setupDone(error, now, out);
    return this.check(now, out);
  }

  mtuDone(b: number, mtu: number, oldMtu: number, error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctxs[b]?.mtuDone(mtu, oldMtu, error, out);
    return this.check(now, out);
  }

  /** Earliest time at which tick() has something to do (Infinity: nothing until a datagram or a
   *  completion). After tick(now) it is always later than now; ticking earlier does nothing but
   *  send a keepalive that is within its slack (timers.clientKeepaliveSlack). */
  nextDeadline(): number {
    let d = Infinity;
    switch (this.phase) {
      case 'up': // first: string cases are compared one by one, and this is the common one
        if (this.failures) d = this.upSince + STABLE_UP_MS;
        break;
      case 'pause':
        return this.at;
      case 'round':
      case 'selected':
        d = this.at;
        break;
      default:
        return Infinity;
    }
    // indexed, no Math.min: this runs after every event (QuickJS: no iterator, no C call)
    for (let i = 0; i < this.ctxs.length; i++) {
      const c = this.ctxs[i]!.nextDeadline();
      if (c < d) d = c;
    }
    return d;
  }

  /** SIGHUP: close the tunnel as on SIGTERM (ERROR 0x11, down hook, kernel cleanup), then start
   *  a new selection round at once. Not a failure: no backoff, no broker avoided. */
  reconnect(now: number): Action[] {
    const out: Action[] = [];
    if (this.phase === 'idle' || this.phase === 'done') {
      out.push({ a: 'log', level: 'info', msg: 'SIGHUP: not connected yet, nothing to reconnect' });
      return out;
    }
    const c = this.selected;
    out.push({ a: 'log', level: 'info', msg: `SIGHUP: reconnecting${c ? `, closing the tunnel with ${c.name}` : ''}; new selection round` });
    if (c) c.close(ClientErrorCode.SHUTDOWN, out);
    this.round(now, out); // re-init closes every socket and opens new ones (new source ports)
    return this.check(now, out);
  }

  /** "counters: <broker> state=up drop-malformed=3, ..." (SIGUSR1; same prefix as the broker's). */
  countersLine(): string {
    const parts = this.ctxs.map((c) => `${formatHostPort(c.host, c.port)} state=${c.state} drop-malformed=${c.dropped}`);
    return `counters: phase=${this.phase} failures=${this.failures} ${parts.join(', ')}`;
  }

  /** SIGTERM/SIGINT: close the selected broker's tunnel (ERROR 0x11, down hook, kernel cleanup). */
  shutdown(): Action[] {
    const out: Action[] = [];
    const c = this.selected;
    if (this.phase !== 'done') {
      out.push({ a: 'log', level: 'info', msg: 'terminating' + (c ? `, closing the tunnel with ${c.name}` : '') });
      if (c) c.close(ClientErrorCode.SHUTDOWN, out);
      this.phase = 'done';
    }
    out.push({ a: 'exit', code: 0 });
    return out;
  }

  /** New selection round: remove a leftover kernel tunnel, re-init every broker (new sockets). */
  private round(now: number, out: Action[]): void {
    const { tunnelId, ifname } = this.opts;
    this.phase = 'round';
    this.at = now + timers.selectionWindow;
    this.selected = null;
    // before the first round the session id of a leftover tunnel is unknown: try both forms
    // (deleting the tunnel removes its sessions anyway)
    const sessionIds = this.started ? [] : tunnelId === 1 ? [1] : [tunnelId, 1];
    this.started = true;
    out.push({ a: 'teardown', tunnelId, sessionIds, ifname });
    this.failedAt.forEach((t, i) => {
      if (t >= 0 && now - t >= timers.brokenBrokerHold) this.failedAt[i] = -1;
    });
    for (const c of this.ctxs) c.reinit(now, out);
  }

  private avoided(c: BrokerContext): boolean {
    return this.failedAt[c.index] >= 0;
  }

  private check(now: number, out: Action[]): Action[] {
    const c = this.selected;
    switch (this.phase) {
      case 'up': // first: string cases are compared one by one, and this is the common one
        if (c!.state === 'failed') this.brokerFailed(now, out);
        else if (this.failures && now - this.upSince >= STABLE_UP_MS) this.failures = 0;
        break;
      case 'round': {
        const ready = this.ctxs.filter((x) => x.state === 'standby');
        const preferred = ready.filter((x) => !this.avoided(x));
        const over = now >= this.at;
        const decide = over || ready.length === this.ctxs.length || (this.opts.selection === 'first' && preferred.length > 0);
        if (!decide) break;
        if (!ready.length) {
          this.retryLater(now, out, `no broker answered within ${timers.selectionWindow / 1000} s`);
          this.silent = true;
          break;
        }
        // a broker answers again after rounds of silence: it is back, start the backoff afresh
        // (refusals and timeouts after an answer keep counting: they protect a struggling broker)
        if (this.silent && this.failures) {
          out.push({ a: 'log', level: 'info', msg: `a broker answers again after ${this.failures} failed attempt${this.failures > 1 ? 's' : ''}: backoff reset` });
          this.failures = 0;
        }
        this.silent = false;
        // brokers that failed recently are only used when nobody else answers
        const pick = chooseBroker(preferred.length ? preferred : ready, this.opts.selection, this.random);
        this.selected = pick;
        this.phase = 'selected';
        this.at = now + timers.establishTimeout;
        const note = this.avoided(pick) ? ', although it failed recently: no other broker answered' : '';
        out.push({ a: 'log', level: 'info', msg: `${pick.name}: selected (usage ${pick.usage}/65535, ${ready.length} of ${this.ctxs.length} answered, over IPv${pick.family} ${pick.address}${note})` });
        for (const x of this.ctxs) if (x !== pick) x.stop(out);
        pick.select(now, out);
        break;
      }
      case 'selected':
        if (c!.state === 'up') {
          this.phase = 'up';
          this.upSince = now;
        } else if (c!.state !== 'setup' && (c!.state === 'failed' || now >= this.at)) {
          if (c!.state !== 'failed') {
            out.push({ a: 'log', level: 'warning', msg: `${c!.name}: no tunnel within ${timers.establishTimeout / 1000} s` });
            c!.close(ClientErrorCode.FAILURE, out);
          }
          this.brokerFailed(now, out);
        }
        break;
    }
    return out;
  }

  private brokerFailed(now: number, out: Action[]): void {
    const c = this.selected!;
    this.failedAt[c.index] = now;
    if (this.phase === 'up' && now - this.upSince >= STABLE_UP_MS) this.failures = 0;
    const others = this.ctxs.length > 1 ? ', other brokers preferred for the next hour' : '';
    this.retryLater(now, out, `giving up on ${c.name}${others}`);
  }

  private retryLater(now: number, out: Action[], why: string): void {
    this.failures++;
    const delay = backoffDelay(this.failures, this.random);
    out.push({ a: 'log', level: 'warning', msg: `${why}; new attempt (#${this.failures}) in ${(delay / 1000).toFixed(1)} s` });
    for (const x of this.ctxs) x.stop(out);
    this.selected = null;
    this.phase = 'pause';
    this.at = now + delay;
  }
}
