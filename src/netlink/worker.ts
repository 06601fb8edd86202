// Netlink requests answered by their ACK alone, run on the C core's netlink worker thread
// (qjs-native/td_nl_worker.h) instead of the event loop: the kernel executes a request inside
// sendmsg(), and creating or deleting an l2tp_eth session waits for RTNL and RCU grace periods,
// seconds on a kernel with thousands of interfaces (docs/scaling.md). Requests run one after
// another in the order submitted; each callback gets 0 or -errno, and the text of what was wrong
// when the reply was malformed. The worker has sockets of its own (its NetlinkKernel), so the
// synchronous executor's requests and replies never mix with its own.
import type { Native, NetlinkWorkerNative } from '../native.js';

export type { NetlinkWorkerNative };
import type { Loop } from '../runtime/loop.js';
import { type AckOp, NetlinkKernel } from './kernel.js';

export type KernelCallback = (result: number, problem: string) => void;

interface InFlight {
  seq: number;
  cb: KernelCallback;
}

export function hasNetlinkWorker(native: Native): native is Native & NetlinkWorkerNative {
  const n = native as Partial<NetlinkWorkerNative>;
  return typeof n.netlinkWorkerStart === 'function' && typeof n.netlinkWorkerSubmit === 'function' &&
    typeof n.netlinkWorkerTake === 'function';
}

export class NetlinkWorker {
  private readonly kernel: NetlinkKernel;
  private readonly inFlight = new Map<number, InFlight>();
  private nextTag = 1;

  private constructor(
    private readonly native: Native & NetlinkWorkerNative,
    private readonly loop: Loop,
    readonly eventFd: number,
  ) {
    this.kernel = new NetlinkKernel(native);
    loop.onReadable(eventFd, () => this.completions());
  }

  private static shared: NetlinkWorker | null = null;

  /** The worker (one per process: the C thread and its completions are), or -errno when its
   *  thread cannot be started. */
  static start(native: Native & NetlinkWorkerNative, loop: Loop): NetlinkWorker | number {
    if (NetlinkWorker.shared) return NetlinkWorker.shared;
    const fd = native.netlinkWorkerStart();
    if (fd < 0) return fd;
    return NetlinkWorker.shared = new NetlinkWorker(native, loop, fd);
  }

  /** Stops watching the completions (the thread stays, idle; start() watches again): what is
   *  still in flight is never answered. For a process that is about to exit. */
  stop(): void {
    this.loop.onReadable(this.eventFd, null);
    if (NetlinkWorker.shared === this) NetlinkWorker.shared = null;
  }

  /** Requests submitted whose callback has not run yet. */
  get pending(): number {
    return this.inFlight.size;
  }

  /** Queues op; cb runs from the event loop when the kernel answered, or at once (before
   *  submit returns) when the request cannot be built or queued. */
  submit(op: AckOp, cb: KernelCallback): void {
    this.kernel.lastProblem = '';
    const r = this.kernel.request(op);
    if (typeof r === 'number') return cb(r, this.kernel.lastProblem);
    const tag = this.nextTag;
    this.nextTag = this.nextTag >= 0x7fffffff ? 1 : this.nextTag + 1;
    const q = this.native.netlinkWorkerSubmit(r.fd, r.data, tag);
    if (q < 0) return cb(q, q === -this.native.errno.EAGAIN ? 'the netlink worker queue is full' : '');
    this.inFlight.set(tag, { seq: r.seq, cb });
  }

  private completions(): void {
    const done = this.native.netlinkWorkerTake();
    for (let i = 0; i + 2 < done.length; i += 3) {
      const tag = done[i] as number;
      const result = done[i + 1] as number;
      const reply = done[i + 2] as Uint8Array | null;
      const f = this.inFlight.get(tag);
      if (!f) continue;
      this.inFlight.delete(tag);
      let r = result;
      let problem = '';
      if (result >= 0 && reply) {
        this.kernel.lastProblem = '';
        r = this.kernel.ackResult(reply, f.seq);
        problem = this.kernel.lastProblem;
      }
      try {
        f.cb(r, problem);
      } catch (e) {
        this.loop.log('error', `internal error in a netlink completion: ${e instanceof Error ? e.stack ?? e.message : String(e)}`.replace(/\n\s*/g, ' | '));
      }
    }
  }
}
