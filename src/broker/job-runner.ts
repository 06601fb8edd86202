// Runs hook and tc child processes (Native.spawn: posix_spawn, no shell) in per-key FIFO queues:
// a job starts only after the previous job of the same key has exited, and at most maxRunning
// jobs run at once over all keys (keys take turns for the free slots, so one busy key cannot
// starve the others). Output (stdout+stderr) is collected and logged with the exit code; a job
// running longer than the timeout is killed with its process group. The children themselves
// are watched by src/process/supervisor.ts (pidfd, no polling).
// Runtime-neutral: only Native and Loop.
import type { Native } from '../native.js';
import type { Loop } from '../runtime/loop.js';
import type { Job } from './actions.js';
import type { Counters } from './counters.js';
import { utf8Decode } from '../protocol/messages.js';
import { Supervisor, type ChildExit } from '../process/supervisor.js';

export interface JobRunnerOptions {
  timeoutMs: number;
  /** waitpid polling interval, only on kernels without pidfd_open (< 5.3). */
  pollMs?: number;
  /** Output bytes kept per job (the rest is read and dropped). */
  maxOutput?: number;
  /** Pending jobs per key beyond which new jobs are dropped (a flooding client). */
  maxQueue?: number;
  /** Jobs running at once over all keys (config hooks.max_concurrent). */
  maxRunning?: number;
  /** Nice increment of the jobs over the broker (config hooks.nice; DEFAULT_JOB_NICE). */
  nice?: number;
}

/** Default of hooks.max_concurrent: enough parallelism for hooks that wait on the network,
 *  few enough that a shutdown of 10,000 tunnels does not start 10,000 processes at once. */
export const DEFAULT_MAX_RUNNING = 32;

/** Default of hooks.nice: hooks run below the broker's priority, so a burst of them (32 at once
 *  on 2 CPUs) cannot starve its answers to the clients (who would retry, costing the broker
 *  more); they still get every CPU the broker leaves idle. */
export const DEFAULT_JOB_NICE = 10;

export class JobRunner {
  /** Per key: waiting jobs, the running one (if any) first. */
  private readonly queues = new Map<string, Job[]>();
  private readonly running = new Map<string, number>();
  /** Keys with a job waiting for a slot, in turn order (each key at most once). */
  private readonly ready = new KeyQueue();
  private idleWaiters: (() => void)[] = [];
  private readonly maxOutput: number;
  private readonly maxQueue: number;
  private readonly maxRunning: number;
  private readonly children: Supervisor;
  private peak = 0;
  private started = 0;
  private killed = 0;

  constructor(
    private readonly native: Native,
    private readonly loop: Loop,
    private readonly opts: JobRunnerOptions,
    private readonly counters?: Counters,
  ) {
    this.maxOutput = opts.maxOutput ?? 16384;
    this.maxQueue = opts.maxQueue ?? 64;
    this.maxRunning = Math.max(1, opts.maxRunning ?? DEFAULT_MAX_RUNNING);
    this.children = new Supervisor(native, loop, { pollMs: opts.pollMs });
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
    if (q.length === 1) {
      this.ready.push(job.queue);
      this.pump();
    }
  }

  /** True while a job is waiting or running. */
  get busy(): boolean {
    return this.queues.size > 0;
  }

  /** Number of jobs waiting or running. */
  get pending(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  /** Jobs running now, and the most that ever ran at once. */
  get runningCount(): number {
    return this.running.size;
  }

  get peakRunning(): number {
    return this.peak;
  }

  /** hooks.max_concurrent as applied. */
  get maxRunningJobs(): number {
    return this.maxRunning;
  }

  /** Jobs started so far, and how many of them were killed (timeout or abandon). */
  get startedCount(): number {
    return this.started;
  }

  get killedCount(): number {
    return this.killed;
  }

  /** cb runs (once) when no job is waiting or running. */
  whenIdle(cb: () => void): void {
    if (!this.busy) cb();
    else this.idleWaiters.push(cb);
  }

  /** Kills every running job and drops the waiting ones (used when a shutdown runs out of
   *  time); returns how many were running and how many were waiting. */
  abandon(): { running: number; dropped: number } {
    const running = this.running.size;
    let dropped = 0;
    for (const [key, q] of this.queues) {
      if (this.running.has(key)) dropped += q.splice(1).length;
      else {
        dropped += q.length;
        this.queues.delete(key);
      }
    }
    this.ready.clear();
    this.children.killAll();
    this.checkIdle();
    return { running, dropped };
  }

  /** Starts waiting jobs while slots are free, one key at a time in turn. */
  private pump(): void {
    while (this.running.size < this.maxRunning) {
      const key = this.ready.shift();
      if (key === undefined) break;
      this.startHead(key);
    }
    this.checkIdle();
  }

  /** Starts the first job of key; one that cannot start is logged and skipped. */
  private startHead(key: string): void {
    const q = this.queues.get(key);
    for (;;) {
      const job = q?.[0];
      if (!q || !job) {
        this.queues.delete(key);
        return;
      }
      const startedAt = this.loop.now();
      const pid = this.children.start({
        path: job.path, args: job.args, captureOutput: true, timeoutMs: this.opts.timeoutMs, maxOutput: this.maxOutput,
        nice: this.opts.nice ?? DEFAULT_JOB_NICE,
        onTimeout: () => this.loop.log('warning', `${job.label}: still running after ${Math.round(this.opts.timeoutMs / 1000)} s, killing it`),
        onExit: (exit) => this.finish(key, job, exit, startedAt),
      });
      if (pid < 0) {
        this.counters?.add('jobs-failed');
        this.loop.log('error', `${job.label}: cannot run ${job.path}: ${this.native.strerror(-pid)}`);
        this.onFinish?.(job, null, false, 0);
        q.shift();
        continue;
      }
      this.counters?.add('jobs-started');
      this.started++;
      this.loop.log('debug', `${job.label}: running ${[job.path, ...job.logArgs].join(' ')}`);
      this.running.set(key, pid);
      this.peak = Math.max(this.peak, this.running.size);
      return;
    }
  }

  private finish(key: string, job: Job, exit: ChildExit, startedAt: number): void {
    this.running.delete(key);
    const q = this.queues.get(key);
    q?.shift();
    if (q && q.length > 0) this.ready.push(key); // back of the line: other keys go first
    else this.queues.delete(key);
    const { code } = exit;
    if (exit.killed) this.killed++;
    this.onFinish?.(job, code, exit.killed, this.loop.now() - startedAt);
    const seconds = ((this.loop.now() - startedAt) / 1000).toFixed(1);
    const text = outputText(exit.output);
    const how = exit.killed ? `was killed (exit ${code})` : `exited with code ${code}`;
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
    this.pump();
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

/** FIFO of keys with O(1) push/shift (an Array.shift is O(n) with 10,000 tunnels). */
class KeyQueue {
  private items: string[] = [];
  private head = 0;
  push(key: string): void {
    this.items.push(key);
  }
  shift(): string | undefined {
    if (this.head >= this.items.length) return undefined;
    const key = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return key;
  }
  clear(): void {
    this.items = [];
    this.head = 0;
  }
}

/** Output as one log line: UTF-8, trimmed, line breaks shown as " | ". */
function outputText(all: Uint8Array): string {
  return utf8Decode(all).trim().replace(/[\r\n]+/g, ' | ').replace(/[\u0000-\u0008\u000b-\u001f]/g, '?');
}
