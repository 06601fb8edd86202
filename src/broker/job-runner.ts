// Runs hook and tc child processes (Native.spawn: fork+execv, no shell) in per-key FIFO queues:
// a job starts only after the previous job of the same key has exited. Output (stdout+stderr)
// is collected and logged with the exit code; a job running longer than the timeout is killed
// with its process group (td_spawn puts each child in its own session).
// Runtime-neutral: only Native and Loop.
import type { Native } from '../native.js';
import type { Loop } from '../runtime/loop.js';
import type { Job } from './actions.js';
import type { Counters } from './counters.js';
import { utf8Decode } from '../protocol/messages.js';

export interface JobRunnerOptions {
  timeoutMs: number;
  /** waitpid polling interval (there is no SIGCHLD hook in Native). */
  pollMs?: number;
  /** Output bytes kept per job (the rest is read and dropped). */
  maxOutput?: number;
  /** Pending jobs per key beyond which new jobs are dropped (a flooding client). */
  maxQueue?: number;
}

const SIGKILL = 9;

interface Running {
  job: Job;
  pid: number;
  outFd: number;
  output: Uint8Array[];
  outputBytes: number;
  startedAt: number;
  pollTimer: unknown;
  killTimer: unknown;
  killed: boolean;
}

export class JobRunner {
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<string, Running>();
  private readonly readBuf = new Uint8Array(4096);
  private idleWaiters: (() => void)[] = [];
  private readonly pollMs: number;
  private readonly maxOutput: number;
  private readonly maxQueue: number;

  constructor(
    private readonly native: Native,
    private readonly loop: Loop,
    private readonly opts: JobRunnerOptions,
    private readonly counters?: Counters,
  ) {
    this.pollMs = opts.pollMs ?? 50;
    this.maxOutput = opts.maxOutput ?? 16384;
    this.maxQueue = opts.maxQueue ?? 64;
  }

  submit(job: Job): void {
    let q = this.queues.get(job.queue);
    if (!q) {
      q = [];
      this.queues.set(job.queue, q);
    }
    if (q.length >= this.maxQueue) {
      this.counters?.add('jobs-dropped');
      this.loop.log('warning', `${job.label}: not run, ${q.length} jobs already waiting in queue ${job.queue}`);
      return;
    }
    q.push(job);
    if (!this.running.has(job.queue)) this.startNext(job.queue);
  }

  get busy(): boolean {
    return this.running.size > 0;
  }

  /** Number of jobs waiting or running. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** cb runs (once) when no job is waiting or running. */
  whenIdle(cb: () => void): void {
    if (!this.busy) cb();
    else this.idleWaiters.push(cb);
  }

  /** Kills every running job and drops the waiting ones (used when a shutdown runs out of time). */
  abandon(): void {
    for (const [key, q] of this.queues) q.splice(this.running.has(key) ? 1 : 0);
    for (const r of this.running.values()) this.kill(r);
  }

  private startNext(key: string): void {
    for (;;) {
      const q = this.queues.get(key);
      const job = q?.[0];
      if (!q || !job) {
        this.queues.delete(key);
        this.checkIdle();
        return;
      }
      const spawned = this.native.spawn(job.path, job.args, true);
      if (typeof spawned === 'number') {
        this.counters?.add('jobs-failed');
        this.loop.log('error', `${job.label}: cannot run ${job.path}: ${this.native.strerror(-spawned)}`);
        this.onFinish?.(job, null, false, 0);
        q.shift();
        continue;
      }
      this.counters?.add('jobs-started');
      this.loop.log('debug', `${job.label}: running ${[job.path, ...job.logArgs].join(' ')}`);
      const r: Running = {
        job, pid: spawned.pid, outFd: spawned.outFd, output: [], outputBytes: 0, startedAt: this.loop.now(),
        pollTimer: null, killTimer: null, killed: false,
      };
      this.running.set(key, r);
      if (r.outFd >= 0) this.loop.onReadable(r.outFd, () => this.drain(r));
      r.killTimer = this.loop.setTimer(this.opts.timeoutMs, () => {
        r.killTimer = null;
        this.loop.log('warning', `${job.label}: still running after ${Math.round(this.opts.timeoutMs / 1000)} s, killing it`);
        this.kill(r);
      });
      this.schedulePoll(key, r);
      return;
    }
  }

  private schedulePoll(key: string, r: Running): void {
    r.pollTimer = this.loop.setTimer(this.pollMs, () => {
      r.pollTimer = null;
      const code = this.native.waitPid(r.pid);
      if (code === null) return this.schedulePoll(key, r);
      this.finish(key, r, code);
    });
  }

  private kill(r: Running): void {
    r.killed = true;
    // the whole process group first (a hook's own children), then the child itself
    if (this.native.kill(-r.pid, SIGKILL) < 0) this.native.kill(r.pid, SIGKILL);
  }

  /** Reads what is available; returns false at EOF or error. */
  private drain(r: Running): boolean {
    if (r.outFd < 0) return false;
    for (;;) {
      const n = this.native.read(r.outFd, this.readBuf);
      if (n > 0) {
        const keep = Math.min(n, this.maxOutput - r.outputBytes);
        if (keep > 0) {
          r.output.push(this.readBuf.slice(0, keep));
          r.outputBytes += keep;
        }
        continue;
      }
      if (n === -this.native.errno.EINTR) continue;
      if (n === -this.native.errno.EAGAIN) return true;
      // EOF or error: stop watching, keep the fd until the job is finished
      this.loop.onReadable(r.outFd, null);
      return false;
    }
  }

  private finish(key: string, r: Running, code: number): void {
    this.drain(r);
    if (r.outFd >= 0) {
      this.loop.onReadable(r.outFd, null);
      this.native.close(r.outFd);
      r.outFd = -1;
    }
    if (r.killTimer !== null) this.loop.cancelTimer(r.killTimer);
    this.running.delete(key);
    this.queues.get(key)?.shift();
    const { job } = r;
    const seconds = ((this.loop.now() - r.startedAt) / 1000).toFixed(1);
    this.onFinish?.(job, code, r.killed, this.loop.now() - r.startedAt);
    const text = outputText(r.output);
    const how = r.killed ? `was killed (exit ${code})` : `exited with code ${code}`;
    const msg = `${job.label}: ${[job.path, ...job.logArgs].join(' ')} ${how} after ${seconds} s` +
      (text ? `; output: ${text}` : '');
    if (code === 0) {
      this.counters?.add('jobs-ok');
      this.loop.log(text ? 'info' : 'debug', msg);
    } else if (job.ignoreFailure) {
      this.loop.log('debug', msg);
    } else {
      this.counters?.add('jobs-failed');
      this.loop.log('warning', msg);
    }
    this.startNext(key);
  }

  private checkIdle(): void {
    if (this.busy || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const cb of waiters) cb();
  }

  /** Observer of every finished job (metrics): exit code (null = could not start), killed by
   *  the timeout, run time in ms. */
  onFinish: ((job: Job, code: number | null, killed: boolean, ms: number) => void) | null = null;
}

/** Output as one log line: UTF-8, trimmed, line breaks shown as " | ". */
function outputText(chunks: Uint8Array[]): string {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return utf8Decode(all).trim().replace(/[\r\n]+/g, ' | ').replace(/[\u0000-\u0008\u000b-\u001f]/g, '?');
}
