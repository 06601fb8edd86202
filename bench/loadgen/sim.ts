// Simulated clients for the load generator (sans-IO, like the client core they wrap):
//   * OursSim: our client's whole core (src/client/client.ts) for one broker: selection round,
//     15 s establish timeout with ERROR 0x13, exponential backoff, ERROR 0x11 on shutdown.
//   * OriginalSim: the original C client's main loop (spec §4.1) around the same per-broker
//     protocol core (src/client/context.ts): after 15 s without a tunnel it gives up *silently*
//     (re-init: new socket, no ERROR), retries at once (no backoff), and after a lost tunnel
//     starts a new round at once; when nobody answers within 10 s it sleeps 5 s.
// Both speak exactly the bytes of our client (BrokerContext builds every datagram).
import type { Action, OpenResult } from '../../src/client/actions.js';
import type { Family } from '../../src/protocol/endpoint.js';
import { Client } from '../../src/client/client.js';
import { BrokerContext, type TunnelConfig } from '../../src/client/context.js';
import { ClientErrorCode, timers } from '../../src/protocol/constants.js';
import { utf8Encode } from '../../src/protocol/messages.js';

export interface SimConfig {
  host: string;
  port: number;
  uuid: string;
  tunnelId: number;
  ifname: string;
  /** LIMIT bandwidth_down asked for once the tunnel is up (kbit/s, 0 = none), as -L. */
  limitKbps?: number;
}

export interface Sim {
  readonly ctx: BrokerContext;
  start(now: number): Action[];
  tick(now: number): Action[];
  /** Earliest time at which tick() has something to do (Infinity: only an event can make work). */
  nextDeadline(): number;
  /** fam: the family of the socket it came in on (the broker's). */
  feed(data: Uint8Array, now: number, fam?: Family): Action[];
  opened(gen: number, r: OpenResult, now: number): Action[];
  connected(gen: number, fam: Family, error: string | null, now: number): Action[];
  sendFailed(error: string, now: number, fam?: Family): Action[];
  setupDone(error: string | null, now: number): Action[];
  mtuDone(mtu: number, oldMtu: number, error: string | null, now: number): Action[];
  /** Closes a selected/established tunnel (ERROR 0x11); no 'exit' action. */
  shutdown(now: number): Action[];
  /** Attempts given up without telling the broker (original mode only). */
  readonly silentGiveUps: number;
}

export type Mode = 'ours' | 'original';

export function createSim(mode: Mode, cfg: SimConfig, random: () => number = Math.random): Sim {
  return mode === 'ours' ? new OursSim(cfg, random) : new OriginalSim(cfg);
}

export class OursSim implements Sim {
  readonly core: Client;
  readonly silentGiveUps = 0;

  constructor(cfg: SimConfig, random: () => number) {
    this.core = new Client({
      uuid: cfg.uuid, bindIp: null, brokers: [{ host: cfg.host, port: String(cfg.port) }], ifname: cfg.ifname,
      bindDevice: null, hook: null, tunnelId: cfg.tunnelId, limitKbps: cfg.limitKbps ?? 0, selection: 'first', foreground: true,
      mtuHook: false,
    }, random);
  }

  get ctx(): BrokerContext {
    return this.core.ctxs[0];
  }

  start(now: number): Action[] { return this.core.start(now); }
  tick(now: number): Action[] { return this.core.tick(now); }
  nextDeadline(): number { return this.core.nextDeadline(); }
  feed(data: Uint8Array, now: number, fam?: Family): Action[] { return this.core.feed(0, data, now, fam); }
  opened(gen: number, r: OpenResult, now: number): Action[] { return this.core.opened(0, gen, r, now); }
  connected(gen: number, fam: Family, error: string | null, now: number): Action[] { return this.core.connected(0, gen, fam, error, now); }
  sendFailed(error: string, now: number, fam?: Family): Action[] { return this.core.sendFailed(0, error, now, fam); }
  setupDone(error: string | null, now: number): Action[] { return this.core.setupDone(0, error, now); }
  mtuDone(mtu: number, old: number, error: string | null, now: number): Action[] {
    return this.core.mtuDone(0, mtu, old, error, now);
  }

  shutdown(_now: number): Action[] {
    return this.core.shutdown().filter((a) => a.a !== 'exit');
  }
}

type Phase = 'round' | 'selected' | 'up' | 'pause' | 'done';

/** Pause after a round in which no broker answered (the original sleeps 5 s). */
export const ORIGINAL_NO_ANSWER_PAUSE_MS = 5_000;

export class OriginalSim implements Sim {
  readonly ctx: BrokerContext;
  phase: Phase = 'round';
  silentGiveUps = 0;
  private at = 0;

  constructor(private readonly cfg: SimConfig) {
    const t: TunnelConfig = { uuid: utf8Encode(cfg.uuid), tunnelId: cfg.tunnelId, ifname: cfg.ifname, limitKbps: cfg.limitKbps ?? 0, hook: null };
    this.ctx = new BrokerContext(0, cfg.host, String(cfg.port), t);
  }

  start(now: number): Action[] {
    const out: Action[] = [];
    this.round(now, out);
    return out;
  }

  tick(now: number): Action[] {
    const out: Action[] = [];
    if (this.phase === 'pause') {
      if (now >= this.at) this.round(now, out);
      return out;
    }
    if (this.phase !== 'done') this.ctx.tick(now, out);
    return this.check(now, out);
  }

  nextDeadline(): number {
    switch (this.phase) {
      case 'pause':
        return this.at;
      case 'done':
        return Infinity;
      case 'round':
      case 'selected': {
        // the selection window, the 15 s give-up
        const c = this.ctx.nextDeadline();
        return c < this.at ? c : this.at;
      }
      default:
        return this.ctx.nextDeadline();
    }
  }

  feed(data: Uint8Array, now: number, fam?: Family): Action[] {
    const out: Action[] = [];
    this.ctx.feed(data, now, out, fam);
    return this.check(now, out);
  }

  opened(gen: number, r: OpenResult, now: number): Action[] {
    const out: Action[] = [];
    this.ctx.opened(gen, r, now, out);
    return this.check(now, out);
  }

  connected(gen: number, fam: Family, error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctx.connected(gen, fam, error, now, out);
    return this.check(now, out);
  }

  sendFailed(error: string, now: number, fam?: Family): Action[] {
    const out: Action[] = [];
    this.ctx.sendFailed(error, now, out, fam);
    return this.check(now, out);
  }

  setupDone(error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctx.setupDone(error, now, out);
    return this.check(now, out);
  }

  mtuDone(mtu: number, old: number, error: string | null, now: number): Action[] {
    const out: Action[] = [];
    this.ctx.mtuDone(mtu, old, error, out);
    return this.check(now, out);
  }

  shutdown(_now: number): Action[] {
    const out: Action[] = [];
    // the original closes the selected context with SHUTDOWN, established or not
    if (this.phase === 'selected' || this.phase === 'up') this.ctx.close(ClientErrorCode.SHUTDOWN, out);
    else this.ctx.stop(out);
    this.phase = 'done';
    return out;
  }

  /** Re-init (new socket; the original deletes a leftover kernel tunnel with its id first). */
  private round(now: number, out: Action[]): void {
    this.phase = 'round';
    this.at = now + timers.selectionWindow;
    const { tunnelId, ifname } = this.cfg;
    out.push({ a: 'teardown', tunnelId, sessionIds: [], ifname });
    this.ctx.reinit(now, out);
  }

  private check(now: number, out: Action[]): Action[] {
    const c = this.ctx;
    switch (this.phase) {
      case 'round':
        if (c.state === 'standby') {
          this.phase = 'selected';
          this.at = now + timers.establishTimeout;
          c.select(now, out);
        } else if (now >= this.at) {
          c.stop(out);
          this.phase = 'pause';
          this.at = now + ORIGINAL_NO_ANSWER_PAUSE_MS;
        }
        break;
      case 'selected':
        if (c.state === 'up') this.phase = 'up';
        else if (c.state === 'failed') this.round(now, out);
        else if (now >= this.at && c.state !== 'setup') {
          // the original's re-init: the socket is closed, the broker is told nothing
          this.silentGiveUps++;
          c.stop(out);
          this.round(now, out);
        }
        break;
      case 'up':
        if (c.state === 'failed') this.round(now, out);
        break;
    }
    return out;
  }
}
