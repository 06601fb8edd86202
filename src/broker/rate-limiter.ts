// Tunnel creation rate limits (spec §4.2 create_tunnel steps 1-2). Global: on average one
// successful creation per connection_rate_limit seconds, as a token bucket holding up to
// connection_rate_limit_burst creations (burst 1 = the original: a minimum interval since the
// last success). Per IP: at most `count` admitted attempts within `time`; refused attempts are
// not recorded. Unlike the original, the per-IP table is pruned and bounded.
import { TokenBucket } from './token-bucket.js';

export const PER_IP_TABLE_MAX = 65_536;

export class RateLimiter {
  private readonly global: TokenBucket;
  /** ip -> timestamps (ms) of the last admitted attempts, oldest first. Map order = LRU. */
  private readonly perIp = new Map<string, number[]>();

  constructor(
    globalMs: number,
    private readonly perIpCount: number,
    private readonly perIpMs: number,
    private readonly tableMax = PER_IP_TABLE_MAX,
    globalBurst = 1,
  ) {
    this.global = new TokenBucket(globalMs, Math.max(1, globalBurst));
  }

  /** A creation would be within the global rate now (checked at admission). */
  globalAllows(now: number): boolean {
    return this.global.available(now);
  }

  /** Milliseconds until the global rate allows the next creation. */
  globalWaitMs(now: number): number {
    return this.global.waitMs(now);
  }

  /** A tunnel was created: uses up one creation of the global rate. */
  recordSuccess(now: number): void {
    this.global.take(now);
  }

  /** Checks and, when admitted, records the attempt. */
  admitIp(ip: string, now: number): boolean {
    if (this.perIpCount <= 0 || this.perIpMs <= 0) return true;
    const times = this.perIp.get(ip) ?? [];
    if (times.length >= this.perIpCount && now - times[0] <= this.perIpMs) return false;
    times.push(now);
    while (times.length > this.perIpCount) times.shift();
    this.perIp.delete(ip);
    this.perIp.set(ip, times);
    while (this.perIp.size > this.tableMax) {
      const oldest = this.perIp.keys().next().value as string;
      this.perIp.delete(oldest);
    }
    return true;
  }

  /** Forgets IPs whose newest attempt is too old to cause a refusal. */
  prune(now: number): void {
    for (const [ip, times] of this.perIp) {
      if (now - times[times.length - 1] > this.perIpMs) this.perIp.delete(ip);
    }
  }

  get trackedIps(): number {
    return this.perIp.size;
  }
}
