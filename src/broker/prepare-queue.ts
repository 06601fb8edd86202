// PREPAREs with a valid cookie that arrive while as many tunnel setups wait for the kernel as the
// broker lets wait (overload.ts limit(), the netlink worker): they wait here, oldest first, and
// the broker serves them as setups finish. Dropping them instead left the kernel idle until the
// clients repeated their PREPAREs 3 s later: 100 clients at once on a fresh broker (bound 8) were
// all up after 14 s instead of under 2 s. One entry per endpoint (a repeated PREPARE keeps its
// place in line); bounded, since each holds a copy of the datagram's payload.
import type { Endpoint } from '../native.js';
import type { Frame } from '../protocol/messages.js';

/** PREPAREs that may wait at once; beyond, a PREPARE is dropped (the client repeats it in 3 s). */
export const PREPARE_QUEUE_MAX = 4_096;

export interface WaitingPrepare<S> {
  socket: S;
  frame: Frame;
  from: Endpoint;
  /** When it was first put in line (a repeat keeps this). */
  at: number;
  /** How long it had waited before it was read (receive queue and batch; -1 unknown). */
  ageMs: number;
}

export class PrepareQueue<S> {
  private readonly byKey = new Map<string, WaitingPrepare<S>>();

  constructor(private readonly capacity = PREPARE_QUEUE_MAX) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Puts the PREPARE in line (copying its payload: the frame may point into a receive buffer
   *  the driver reuses), or refreshes the endpoint's entry in place (a repeat). */
  put(key: string, socket: S, frame: Frame, from: Endpoint, now: number, ageMs: number): 'queued' | 'repeat' | 'full' {
    const held = this.byKey.get(key);
    if (!held && this.byKey.size >= this.capacity) return 'full';
    const copy: Frame = { type: frame.type, payload: frame.payload.slice(), datagramLength: frame.datagramLength };
    this.byKey.set(key, { socket, frame: copy, from: { ...from }, at: held ? held.at : now, ageMs: held ? held.ageMs : ageMs });
    return held ? 'repeat' : 'queued';
  }

  /** The entry that has waited longest, taken out of line. */
  shift(): WaitingPrepare<S> | undefined {
    const first = this.byKey.entries().next();
    if (first.done) return undefined;
    this.byKey.delete(first.value[0]);
    return first.value[1];
  }

  /** How long the entry in front has waited (0 when empty), counting its time before it was read. */
  longestWaitMs(now: number): number {
    const first = this.byKey.values().next();
    return first.done ? 0 : now - first.value.at + Math.max(0, first.value.ageMs);
  }

  clear(): void {
    this.byKey.clear();
  }
}
