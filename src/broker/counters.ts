// Named event counters (drops per reason, refusals, tunnels...), logged as one line.

export class Counters {
  private readonly values = new Map<string, number>();

  add(name: string, n = 1): void {
    this.values.set(name, (this.values.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.values.get(name) ?? 0;
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.values].sort(([a], [b]) => (a < b ? -1 : 1)));
  }

  /** "counters: a=1 b=2" (sorted). */
  line(): string {
    const parts = Object.entries(this.snapshot()).map(([k, v]) => `${k}=${v}`);
    return `counters: ${parts.length ? parts.join(' ') : '(none)'}`;
  }
}
