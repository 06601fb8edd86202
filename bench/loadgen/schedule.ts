// --deadlines: each simulated client is ticked at its own next deadline, as our client's driver
// arms one timer for Client.nextDeadline(), instead of every client on a shared 500 ms tick. The
// clients' deadlines sit in one heap, so a timer event costs O(log n) for each client that is due
// and nothing for the others: 10,000 idle clients cost their keepalives, not 20,000 ticks a
// second (docs/scaling.md, the 10,000-tunnel hold).
import { DeadlineHeap } from '../../src/broker/deadline-heap.js';

export interface Scheduled {
  sim: { nextDeadline(): number };
  /** The earliest deadline this client has in the heap (Infinity: none). */
  scheduledAt: number;
}

/** A deadline that came out of a tick at or before its now is tried again this much later, so a
 *  state that waits for something else (a kernel setup) cannot make a pass spin. */
export const MIN_RETRY_MS = 10;

export class ClientScheduler<T extends Scheduled> {
  private readonly heap = new DeadlineHeap<T>();
  /** Clients scheduled while runDue ticks: they go into the heap after the pass. */
  private pass: T[] | null = null;

  get size(): number {
    return this.heap.size;
  }

  /** Earliest deadline in the heap (Infinity when none). */
  nextAt(): number {
    return this.heap.peekAt();
  }

  /** After anything happened to `c`: its next deadline goes into the heap unless an earlier or
   *  equal entry is there already (a later one is found stale when it comes out). */
  schedule(c: T, now: number): void {
    if (this.pass) {
      this.pass.push(c);
      return;
    }
    let at = c.sim.nextDeadline();
    if (at <= now) at = now + MIN_RETRY_MS;
    if (at < c.scheduledAt) {
      c.scheduledAt = at;
      this.heap.push(at, c);
    }
  }

  /** Ticks (through `tick`) every client whose deadline is at or before `now` + slackMs, once
   *  each, and schedules it again; returns how many were ticked. Entries of clients whose
   *  deadline moved later are dropped and re-scheduled without a tick. */
  runDue(now: number, slackMs: number, tick: (c: T, now: number) => void): number {
    let ticked = 0;
    const until = now + slackMs;
    const again: T[] = [];
    this.pass = again;
    try {
      while (this.heap.peekAt() <= until) {
        const c = this.heap.pop()!;
        c.scheduledAt = Infinity;
        if (c.sim.nextDeadline() <= until) {
          tick(c, now);
          ticked++;
        }
        again.push(c);
      }
    } finally {
      this.pass = null;
    }
    // after the pass: a client still due (waiting for something) is retried later, not now
    for (const c of again) this.schedule(c, now);
    return ticked;
  }
}
