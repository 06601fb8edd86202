// Tunnel id pool [base, base+count). Freed ids go to the back of the queue, so an id is reused
// as late as possible (a late hook or kernel object of the previous owner has time to go).

export class IdPool {
  private readonly free: number[] = [];
  private head = 0;
  private readonly inUse = new Set<number>();

  constructor(readonly base: number, public count: number) {
    for (let i = 0; i < count; i++) this.free.push(base + i);
  }

  /** Next free id, or null when exhausted. */
  take(): number | null {
    if (this.head >= this.free.length) return null;
    const id = this.free[this.head++];
    // compact now and then so the array does not grow without bound
    if (this.head > 1024 && this.head * 2 > this.free.length) {
      this.free.splice(0, this.head);
      this.head = 0;
    }
    this.inUse.add(id);
    return id;
  }

  release(id: number): void {
    if (!this.inUse.delete(id)) return;
    if (!this.contains(id)) return; // above a max_tunnels lowered by a reload
    this.free.push(id);
  }

  /** Moves these free ids to the back of the queue (kernel tunnels an earlier run left behind,
   *  which the kernel is still removing): they are handed out after every other free id. */
  handOutLast(ids: Iterable<number>): void {
    const last = new Set<number>();
    for (const id of ids) if (this.contains(id) && !this.inUse.has(id)) last.add(id);
    if (last.size === 0) return;
    const rest = this.free.slice(this.head).filter((id) => !last.has(id));
    this.free.length = 0;
    this.free.push(...rest, ...last);
    this.head = 0;
  }

  /** Drops an id for the rest of the process life (the kernel says someone else owns it). */
  retire(id: number): void {
    this.inUse.delete(id);
  }

  contains(id: number): boolean {
    return id >= this.base && id < this.base + this.count;
  }

  get available(): number {
    return this.free.length - this.head;
  }

  /** max_tunnels changed by a reload: ids in use stay in use (and are dropped when released if
   *  now out of range); new ids are handed out after the free ones. */
  resize(count: number): void {
    const old = this.count;
    this.count = count;
    const free = this.free.slice(this.head).filter((id) => this.contains(id));
    for (let id = this.base + old; id < this.base + count; id++) if (!this.inUse.has(id)) free.push(id);
    this.free.length = 0;
    this.free.push(...free);
    this.head = 0;
  }
}
