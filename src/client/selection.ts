// Broker choice among the ready candidates (spec §4.1) and reconnect backoff.
import { timers } from '../protocol/constants.js';
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
