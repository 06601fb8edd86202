// The action-queue drain both drivers share (src/client/driver.ts, src/broker/executor.ts): a
// core returns actions, the driver executes them in order, and what the core answers to their
// results is appended and executed in the same drain (no recursion, no reordering).
// Runtime-neutral and QuickJS-safe: no Node API, no RegExp/JSON/Date.

export class ActionQueue<A> {
  private items: A[] = [];
  /** Index of the next action to execute: dequeuing is O(1), not Array.shift. */
  private head = 0;
  private draining = false;

  /** `onError` absent: an exception from `exec` propagates out of run() and the actions not
   *  yet executed stay queued for the next run(). Present: it is called with the failing action
   *  and the drain goes on with the next one. */
  constructor(
    private readonly exec: (action: A) => void,
    private readonly onError?: (action: A, error: unknown) => void,
  ) {}

  /** Appends without draining (for an executor that is itself called from the drain). */
  push(action: A): void {
    this.items.push(action);
  }

  /** Appends `actions`; unless a drain is already running (an executor called run()), executes
   *  everything queued in order, including what is appended meanwhile. Returns true when this
   *  call drained the queue (the caller's moment to re-arm its timer), false when it only
   *  appended to the running drain. */
  run(actions: readonly A[]): boolean {
    // indexed, not for-of: QuickJS allocates an iterator object per for-of loop (this runs after
    // every datagram and timer event, usually with zero or one action)
    for (let i = 0; i < actions.length; i++) this.items.push(actions[i]!);
    if (this.draining) return false;
    this.draining = true;
    try {
      while (this.head < this.items.length) {
        const a = this.items[this.head++];
        if (this.onError === undefined) {
          this.exec(a);
          continue;
        }
        try {
          this.exec(a);
        } catch (e) {
          this.onError(a, e);
        }
      }
    } finally {
      // keep what was not executed (an exception escaped), drop what was (in place: no new array)
      if (this.head < this.items.length) this.items = this.items.slice(this.head);
      else this.items.length = 0;
      this.head = 0;
      this.draining = false;
    }
    return true;
  }

  /** Actions queued and not yet executed. */
  get length(): number {
    return this.items.length - this.head;
  }
}
