// How the load generator reads the broker it loads: its CPU, RSS and fds, its counters, and the
// watch of a signal that stops it. Local: /proc and SIGUSR1 of a process on this machine.
// Remote: the same readings taken by bench/loadgen/broker-agent.ts next to the broker (in the
// VM) and fetched over HTTP, so that the load generator can run on the host at native speed
// while the broker and its kernel run in a TCG guest (make bench-scale-host).
import {
  alive, brokerCounters, procChildCount, procCpu, procFdCount, procRssKiB, type BrokerCounters, type ProcCpu,
} from './stats.js';

export interface BrokerSample {
  /** ms on the probe's own clock: differences between samples of one probe are elapsed time. */
  at: number;
  cpu: ProcCpu | null;
  rssKiB: number | null;
  fds: number | null;
  /** The SIGUSR1 counters (null: not asked for, or the broker did not answer in time). */
  log: BrokerCounters | null;
}

export interface StopWatch {
  /** null: still running after the wait. */
  exitAfterS: number | null;
  maxChildren: number;
  maxRssKiB: number | null;
}

export interface BrokerProbe {
  /** Where the readings come from, for messages. */
  readonly label: string;
  /** counters false: /proc only (no SIGUSR1), for the hold's windows. */
  sample(counters: boolean): Promise<BrokerSample>;
  /** Sends the signal, then watches (every 100 ms, at most waitS) until the broker is gone. */
  stop(signal: 'SIGTERM' | 'SIGKILL', waitS: number): Promise<StopWatch>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A broker process on this machine. */
export class LocalBrokerProbe implements BrokerProbe {
  readonly label: string;

  constructor(readonly pid: number, readonly logPath: string, private readonly now: () => number = () => performance.now(),
    private readonly counterTimeoutMs = 30_000) {
    this.label = `broker pid ${pid}`;
  }

  async sample(counters: boolean): Promise<BrokerSample> {
    const at = this.now();
    return {
      at, cpu: procCpu(this.pid), rssKiB: procRssKiB(this.pid), fds: procFdCount(this.pid),
      log: counters ? await brokerCounters(this.pid, this.logPath, this.counterTimeoutMs) : null,
    };
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL', waitS: number): Promise<StopWatch> {
    const t0 = this.now();
    let maxChildren = 0;
    let maxRssKiB: number | null = null;
    try {
      process.kill(this.pid, signal);
    } catch {
      return { exitAfterS: 0, maxChildren, maxRssKiB };
    }
    while (this.now() - t0 < waitS * 1000) {
      if (!alive(this.pid)) return { exitAfterS: (this.now() - t0) / 1000, maxChildren, maxRssKiB };
      maxChildren = Math.max(maxChildren, procChildCount(this.pid));
      const rss = procRssKiB(this.pid);
      if (rss !== null) maxRssKiB = Math.max(maxRssKiB ?? 0, rss);
      await sleep(100);
    }
    return { exitAfterS: null, maxChildren, maxRssKiB };
  }
}

/** A broker-agent at url (http://IP:PORT): the readings of a broker on another machine. */
export class RemoteBrokerProbe implements BrokerProbe {
  readonly label: string;

  constructor(readonly url: string, private readonly sampleTimeoutMs = 35_000) {
    this.label = `broker agent ${url}`;
  }

  async sample(counters: boolean): Promise<BrokerSample> {
    return await this.call(`/sample?counters=${counters ? 1 : 0}`, 'GET', this.sampleTimeoutMs) as BrokerSample;
  }

  async stop(signal: 'SIGTERM' | 'SIGKILL', waitS: number): Promise<StopWatch> {
    return await this.call(`/stop?signal=${signal}&wait=${waitS}`, 'POST', (waitS + 15) * 1000) as StopWatch;
  }

  private async call(path: string, method: string, timeoutMs: number): Promise<unknown> {
    const r = await fetch(this.url + path, { method, signal: AbortSignal.timeout(timeoutMs) });
    if (!r.ok) throw new Error(`${this.label}${path}: HTTP ${r.status} ${await r.text()}`);
    return await r.json();
  }
}
