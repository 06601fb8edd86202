// Tunnel creation rate limits (spec §4.2 create_tunnel steps 1-2). Global: minimum time between
// successful creations. Per IP: at most `count` admitted attempts within `time`; refused
// attempts are not recorded. Unlike the original, the per-IP table is pruned and bounded.

export const PER_IP_TABLE_MAX = 65_536;

export class RateLimiter {
  private lastSuccess: number | null = null;
  /** ip -> timestamps (ms) of the last admitted attempts, oldest first. Map order = LRU. */
  private readonly perIp = new Map<string, number[]>();

  constructor(
    private readonly globalMs: number,
    private readonly perIpCount: number,
    private readonly perIpMs: number,
    private readonly tableMax = PER_IP_TABLE_MAX,
  ) {}

  globalAllows(now: number): boolean {
    return this.globalMs <= 0 || this.lastSuccess === null || now - this.lastSuccess >= this.globalMs;
  }

  recordSuccess(now: number): void {
    this.lastSuccess = now;
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
