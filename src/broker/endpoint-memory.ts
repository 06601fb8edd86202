// Remembers, for a while, when something happened to a client endpoint (ip:port): used to hold
// refused endpoints and to pace replies to endpoints without a tunnel. Bounded and pruned: the
// Map is kept in time order (re-inserted on every mark), so pruning stops at the first fresh one.

export class EndpointMemory {
  private readonly at = new Map<string, number>();

  constructor(
    private readonly holdMs: number,
    private readonly max = 65_536,
  ) {}

  /** Milliseconds since the endpoint was marked, or undefined when not within the hold time. */
  since(key: string, now: number): number | undefined {
    const t = this.at.get(key);
    return t !== undefined && now - t < this.holdMs ? now - t : undefined;
  }

  mark(key: string, now: number): void {
    this.at.delete(key);
    if (this.at.size >= this.max) this.at.delete(this.at.keys().next().value!);
    this.at.set(key, now);
  }

  prune(now: number): void {
    for (const [key, t] of this.at) {
      if (now - t < this.holdMs) break;
      this.at.delete(key);
    }
  }

  forget(key: string): void {
    this.at.delete(key);
  }

  get size(): number {
    return this.at.size;
  }
}
