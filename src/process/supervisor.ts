// Child process supervision, one implementation for the broker's JobRunner and the client's
// hooks: start (Native.spawn: posix_spawn, no shell, own process group), collect output, kill the
// process group after a timeout, reap, report the exit. Event-driven: the child's exit arrives
// as readiness of a pidfd (Native.pidWatch); only where the kernel has no pidfd_open (Linux
// < 5.3) are running children polled with waitPid, and no timer runs while no child does.
// Runtime-neutral: only Native and Loop.
import type { Native } from '../native.js';
import type { Loop } from '../runtime/loop.js';

const SIGKILL = 9;

export interface ChildSpec {
  path: string;
  args: string[];
  /** Collect stdout+stderr (up to maxOutput bytes, the rest is read and dropped); otherwise
   *  the child inherits them. */
  captureOutput: boolean;
  /** After this long the child's process group is killed with SIGKILL. */
  timeoutMs: number;
  maxOutput?: number;
  /** Nice increment over this process for the child's process group (Native.reniceGroup right
   *  after the spawn); 0 or absent = the same priority. */
  nice?: number;
  /** Runs when the timeout fires, right before the kill (for the caller's log line). */
  onTimeout?: () => void;
  /** Runs once, after the child has been reaped. */
  onExit: (exit: ChildExit) => void;
}

export interface ChildExit {
  pid: number;
  /** Exit code, 128+signal when killed by a signal, or -errno if waitpid failed. */
  code: number;
  /** True when the supervisor killed it (timeout or killAll). */
  killed: boolean;
  /** Captured output (empty without captureOutput). */
  output: Uint8Array;
  /** Run time in milliseconds (Loop clock). */
  ms: number;
}

interface Child {
  spec: ChildSpec;
  pid: number;
  outFd: number;
  /** pidfd, or -1 when this child is polled. */
  exitFd: number;
  output: Uint8Array[];
  outputBytes: number;
  startedAt: number;
  killTimer: unknown;
  killed: boolean;
}

export interface SupervisorOptions {
  /** waitPid interval for children without a pidfd (old kernels). */
  pollMs?: number;
}

export class Supervisor {
  private readonly children = new Map<number, Child>();
  private readonly polled = new Set<Child>();
  private pollTimer: unknown = null;
  private readonly readBuf = new Uint8Array(4096);
  private readonly pollMs: number;

  constructor(
    private readonly native: Native,
    private readonly loop: Loop,
    opts: SupervisorOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 250;
  }

  /** Children started and not yet reaped. */
  get running(): number {
    return this.children.size;
  }

  /** Children whose exit is polled for (no pidfd); 0 on kernels with pidfd_open. */
  get pollingCount(): number {
    return this.polled.size;
  }

  /** Starts a child; returns its pid, or -errno when it could not start (no callback then). */
  start(spec: ChildSpec): number {
    const n = this.native;
    const spawned = n.spawn(spec.path, spec.args, spec.captureOutput);
    if (typeof spawned === 'number') return spawned;
    // a failure (ESRCH: already gone, EACCES/EPERM) leaves the child at our priority: no error
    if (spec.nice) n.reniceGroup(spawned.pid, spec.nice);
    const c: Child = {
      spec, pid: spawned.pid, outFd: spawned.outFd, exitFd: -1, output: [], outputBytes: 0,
      startedAt: this.loop.now(), killTimer: null, killed: false,
    };
    this.children.set(c.pid, c);
    if (c.outFd >= 0) this.loop.onReadable(c.outFd, () => this.drain(c));
    c.killTimer = this.loop.setTimer(spec.timeoutMs, () => {
      c.killTimer = null;
      spec.onTimeout?.();
      this.kill(c.pid);
    });
    const fd = n.pidWatch(c.pid);
    if (fd >= 0) {
      c.exitFd = fd;
      this.loop.onReadable(fd, () => this.check(c));
    } else {
      // ENOSYS (kernel < 5.3) or no fd left (EMFILE): fall back to polling this child
      this.polled.add(c);
      this.schedulePoll();
    }
    return c.pid;
  }

  /** Kills a running child with its process group (SIGKILL); its onExit follows. */
  kill(pid: number): void {
    const c = this.children.get(pid);
    if (!c) return;
    c.killed = true;
    // the whole process group first (a hook's own children), then the child itself
    if (this.native.kill(-pid, SIGKILL) < 0) this.native.kill(pid, SIGKILL);
  }

  killAll(): void {
    for (const pid of [...this.children.keys()]) this.kill(pid);
  }

  private schedulePoll(): void {
    if (this.pollTimer !== null || this.polled.size === 0) return;
    this.pollTimer = this.loop.setTimer(this.pollMs, () => {
      this.pollTimer = null;
      for (const c of [...this.polled]) this.check(c);
      this.schedulePoll();
    });
  }

  /** Reaps c if it has exited (a pidfd may also wake up early, e.g. on a spurious poll). */
  private check(c: Child): void {
    if (this.children.get(c.pid) !== c) return;
    const code = this.native.waitPid(c.pid);
    if (code === null) return;
    this.finish(c, code);
  }

  /** Reads what is available; stops watching at EOF or error (the fd is closed at exit). */
  private drain(c: Child): void {
    if (c.outFd < 0) return;
    const max = c.spec.maxOutput ?? 16384;
    for (;;) {
      const n = this.native.read(c.outFd, this.readBuf);
      if (n > 0) {
        const keep = Math.min(n, max - c.outputBytes);
        if (keep > 0) {
          c.output.push(this.readBuf.slice(0, keep));
          c.outputBytes += keep;
        }
        continue;
      }
      if (n === -this.native.errno.EINTR) continue;
      if (n === -this.native.errno.EAGAIN) return;
      this.loop.onReadable(c.outFd, null);
      return;
    }
  }

  private finish(c: Child, code: number): void {
    this.children.delete(c.pid);
    this.polled.delete(c);
    if (this.polled.size === 0 && this.pollTimer !== null) {
      this.loop.cancelTimer(this.pollTimer);
      this.pollTimer = null;
    }
    if (c.killTimer !== null) this.loop.cancelTimer(c.killTimer);
    if (c.exitFd >= 0) {
      this.loop.onReadable(c.exitFd, null);
      this.native.close(c.exitFd);
    }
    // what the child wrote before it exited is in the pipe now (a background grandchild
    // may keep it open: we do not wait for that)
    this.drain(c);
    if (c.outFd >= 0) {
      this.loop.onReadable(c.outFd, null);
      this.native.close(c.outFd);
    }
    c.spec.onExit({ pid: c.pid, code, killed: c.killed, output: concat(c.output, c.outputBytes), ms: this.loop.now() - c.startedAt });
  }
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const all = new Uint8Array(total);
  let at = 0;
  for (const x of chunks) {
    all.set(x, at);
    at += x.length;
  }
  return all;
}
