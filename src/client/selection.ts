// Broker choice among the ready candidates (spec §4.1), the addresses tried per broker (happy
// eyeballs) and reconnect backoff.
import { timers } from '../protocol/constants.js';
import type { Family } from '../protocol/endpoint.js';
import type { Address } from './actions.js';
import type { Selection } from './options.js';

export interface Candidate {
  index: number;
  usage: number;
}

/** ready is in -b order and non-empty. 'first': earliest; 'usage': lowest usage, ties → earlier;
 *  'random': uniform (the original crashed with rand() % 0 when nothing was ready). */
export function chooseBroker<T extends Candidate>(ready: T[], mode: Selection, random: () => number): T {
  if (mode === 'random') return ready[Math.min(ready.length - 1, Math.floor(random() * ready.length))];
  if (mode === 'first') return ready[0];
  return ready.reduce((best, c) => (c.usage < best.usage ? c : best));
}

/** Pause before reconnect attempt n (1-based): 1 s doubling to 60 s, ±25 % jitter. */
export function backoffDelay(n: number, random: () => number): number {
  const base = Math.min(timers.backoffMax, timers.backoffBase * 2 ** Math.min(n - 1, 16));
  return Math.round(base * (0.75 + random() * 0.5));
}

/** The addresses a broker is asked over (RFC 8305 §4 in spirit): the first address of each
 *  family allowed (`only`, from -l; null: both), in the resolver's order. getaddrinfo sorts by
 *  RFC 6724, so the family the system prefers (IPv6 when it has a route for it) comes first; the
 *  second is asked timers.secondFamilyDelay later (or at once when the first cannot be used),
 *  and the first to answer carries the tunnel. */
export function addressesToTry(all: readonly Address[], only: Family | null): Address[] {
  const out: Address[] = [];
  for (const a of all) {
    const f = a.family ?? 4;
    if ((only === null || f === only) && !out.some((x) => (x.family ?? 4) === f)) out.push({ ip: a.ip, port: a.port, family: f });
  }
  return out;
}
