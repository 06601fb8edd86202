// A binary min-heap of (deadline, item), for the broker's per-tunnel timers: the core wakes at
// the earliest deadline and pops only what is due, so a timer event costs O(log n) instead of a
// scan of every tunnel. Entries are never updated or removed in place; the owner recognises
// stale ones when they come out (see BrokerCore.schedule).

export class DeadlineHeap<T> {
  private readonly ats: number[] = [];
  private readonly items: T[] = [];

  get size(): number {
    return this.ats.length;
  }

  /** Earliest deadline, Infinity when empty. */
  peekAt(): number {
    return this.ats.length ? this.ats[0] : Infinity;
  }

  /** Item of the earliest entry (undefined when empty). */
  peekItem(): T | undefined {
    return this.items[0];
  }

  push(at: number, item: T): void {
    const { ats, items } = this;
    let i = ats.length;
    ats.push(at);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (ats[parent] <= at) break;
      ats[i] = ats[parent];
      items[i] = items[parent];
      i = parent;
    }
    ats[i] = at;
    items[i] = item;
  }

  /** Removes the earliest entry and returns its item (undefined when empty). */
  pop(): T | undefined {
    const { ats, items } = this;
    if (ats.length === 0) return undefined;
    const top = items[0];
    const lastAt = ats.pop()!;
    const lastItem = items.pop()!;
    const n = ats.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && ats[r] < ats[l] ? r : l;
        if (ats[c] >= lastAt) break;
        ats[i] = ats[c];
        items[i] = items[c];
        i = c;
      }
      ats[i] = lastAt;
      items[i] = lastItem;
    }
    return top;
  }
}

/** The next deadline of a periodic timer that was due at `due`: one period later, so that a
 *  late wake-up does not shift the schedule (tunnels created together stay spread); after a
 *  long stall, one period from now. */
export function periodic(due: number, period: number, now: number): number {
  const next = due + period;
  return next > now ? next : now + period;
}
