// A token bucket: on average one token per `intervalMs`, at most `capacity` saved up. Used for
// the global tunnel creation rate (connection_rate_limit + connection_rate_limit_burst), the
// global budget of answers to unauthenticated datagrams and LIMIT messages per tunnel.
// intervalMs <= 0 means unlimited. Time is monotonic milliseconds, passed in (sans-IO).

export class TokenBucket {
  private tokens: number;
  private at: number | null = null;

  constructor(
    private readonly intervalMs: number,
    readonly capacity: number,
  ) {
    this.tokens = capacity;
  }

  get unlimited(): boolean {
    return this.intervalMs <= 0;
  }

  private refill(now: number): void {
    if (this.at !== null && now > this.at) {
      this.tokens = Math.min(this.capacity, this.tokens + (now - this.at) / this.intervalMs);
    }
    if (this.at === null || now > this.at) this.at = now;
  }

  /** True when a token is available now (nothing is taken). */
  available(now: number): boolean {
    if (this.unlimited) return true;
    this.refill(now);
    return this.tokens >= 1;
  }

  /** Takes a token when one is available. */
  take(now: number): boolean {
    if (this.unlimited) return true;
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Gives back a token taken for something that then did not happen. */
  refund(): void {
    if (!this.unlimited) this.tokens = Math.min(this.capacity, this.tokens + 1);
  }

  /** Milliseconds until the next token (0 when one is available). */
  waitMs(now: number): number {
    if (this.unlimited) return 0;
    this.refill(now);
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.intervalMs);
  }
}
