// Prometheus metrics of the broker (docs/metrics.md lists them), with prom-client. Most values
// are read from BrokerCore (tunnels, counters) when scraped, so the datagram path pays nothing;
// hook runs and kernel call failures are observed as they happen. No client IP or uuid in labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Job } from './actions.js';
import { HANDSHAKE_PREFIX, type BrokerCore } from './broker.js';
import { CLOSED_BY_PREFIX } from './tunnel.js';

export const MTU_BUCKETS = [1280, 1300, 1320, 1340, 1360, 1380, 1400, 1420, 1430, 1440, 1446];
export const HOOK_SECONDS_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Netlink calls on the worker thread, submit to answer (queue wait included): milliseconds on a
 *  quiet kernel, seconds when RTNL and RCU grace periods are contended (docs/scaling.md). */
export const KERNEL_SECONDS_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.25, 1, 2.5, 10, 30];

/** Counter names of BrokerCore that are dropped datagrams (reason = the rest of the name). */
const DROP_COUNTERS: Record<string, string> = {
  'drop-bad-cookie': 'bad_cookie', 'drop-short-payload': 'short_payload', 'drop-no-tunnel': 'no_tunnel',
  'drop-wrong-source': 'wrong_source', 'send-dropped-eagain': 'send_eagain',
  'listener-ignored-type': 'ignored_type', 'listener-unknown-keepalive': 'unknown_tunnel_keepalive',
};

/** The hook's name from a job label ("hook session.up for tunnel 100" -> session.up; tc -> tc). */
export function hookName(job: Job): string {
  const m = /^hook (\S+)/.exec(job.label);
  if (m) return m[1];
  return job.label.startsWith('tc ') ? 'tc' : 'other';
}

/** How often the event-loop lag is sampled (prom-client's eventLoopMonitoringPrecision). */
export const EVENT_LOOP_LAG_PERIOD_MS = 1000;

export class BrokerMetrics {
  readonly registry = new Registry();
  private readonly hookRuns: Counter<'hook'>;
  private readonly hookFailures: Counter<'hook'>;
  private readonly hookTimeouts: Counter<'hook'>;
  private readonly hookSeconds: Histogram<'hook'>;
  private readonly kernelFailures: Counter<'call' | 'errno'>;
  private readonly kernelSeconds: Histogram<'call'>;
  /** Netlink calls submitted to the worker and not yet answered (set by BrokerOps.wrapWorker). */
  kernelPending: () => number = () => 0;

  private processMetrics = false;

  /** processMetrics false: the process metrics (nodejs_*, process_*) wait for
   *  enableProcessMetrics(), which the broker calls when it starts serving /metrics. */
  constructor(private core: BrokerCore, opts: { processMetrics?: boolean } = {}) {
    const r = this.registry;
    const self = this;
    const counters = (): Record<string, number> => self.core.counters.snapshot();
    if (opts.processMetrics !== false) this.enableProcessMetrics();
    new Gauge({
      name: 'tunneldigger_tunnels', help: 'Established tunnels by listener port.', labelNames: ['port'], registers: [r],
      collect() {
        this.reset();
        const byPort = new Map<number, number>(self.core.cfg.ports.map((p) => [p, 0]));
        for (const t of self.core.tunnelList()) if (t.state === 'up') byPort.set(t.port, (byPort.get(t.port) ?? 0) + 1);
        for (const [port, n] of byPort) this.set({ port: String(port) }, n);
      },
    });
    new Gauge({
      name: 'tunneldigger_max_tunnels', help: 'broker.max_tunnels.', registers: [r],
      collect() { this.set(self.core.cfg.maxTunnels); },
    });
    new Gauge({
      name: 'tunneldigger_draining', help: '1 while draining (ctl drain): new tunnels are refused.', registers: [r],
      collect() { this.set(self.core.draining ? 1 : 0); },
    });
    new Gauge({
      name: 'tunneldigger_fd_budget_tunnels', help: 'Tunnels the file descriptor budget has room for (+Inf: no limit).', registers: [r],
      collect() { this.set(self.core.fdRoom); },
    });
    new Gauge({
      name: 'tunneldigger_usage_ratio', help: 'Usage reported to clients, 0..1 (0xFFFF = 1).', registers: [r],
      collect() { this.set(self.core.usage(0xffffffff) / 0xffff); },
    });
    const fromCounters = (name: string, help: string, label: string, pick: (n: string) => string | null): void => {
      new Counter({
        name, help, labelNames: [label], registers: [r],
        collect() {
          this.reset();
          for (const [n, v] of Object.entries(counters())) {
            const value = pick(n);
            if (value !== null) this.inc({ [label]: value }, v);
          }
        },
      });
    };
    new Counter({
      name: 'tunneldigger_tunnels_created_total', help: 'Tunnels established.', registers: [r],
      collect() { this.reset(); this.inc(self.core.counters.get('tunnels-created')); },
    });
    fromCounters('tunneldigger_tunnels_closed_total', 'Tunnels closed, by reason.', 'reason',
      (n) => (n.startsWith(CLOSED_BY_PREFIX) ? n.slice(CLOSED_BY_PREFIX.length).replace(/-/g, '_') : null));
    fromCounters('tunneldigger_handshakes_total', 'Handshake messages received, by type.', 'type',
      (n) => (n.startsWith(HANDSHAKE_PREFIX) ? n.slice(HANDSHAKE_PREFIX.length) : null));
    fromCounters('tunneldigger_dropped_datagrams_total', 'Datagrams dropped, by reason.', 'reason',
      (n) => DROP_COUNTERS[n] ?? (n.startsWith('drop-') ? n.slice(5).replace(/-/g, '_') : null));
    fromCounters('tunneldigger_admission_refusals_total', 'PREPAREs refused, by reason.', 'reason',
      (n) => (n.startsWith('refused-') ? admissionReason(n.slice(8)) : null));
    new Counter({
      name: 'tunneldigger_limit_requests_total', help: 'Bandwidth LIMIT requests applied.', registers: [r],
      collect() { this.reset(); this.inc(self.core.counters.get('limits-applied')); },
    });
    new Histogram({
      name: 'tunneldigger_tunnel_mtu', help: 'MTU of the established tunnels right now (PMTU discovery result).',
      buckets: MTU_BUCKETS, registers: [r],
      collect() {
        this.reset();
        for (const t of self.core.tunnelList()) if (t.state === 'up' && t.mtu > 0) this.observe(t.mtu);
      },
    });
    this.hookRuns = new Counter({ name: 'tunneldigger_hook_runs_total', help: 'Hook and tc runs finished.', labelNames: ['hook'], registers: [r] });
    this.hookFailures = new Counter({
      name: 'tunneldigger_hook_failures_total', help: 'Hook runs that could not start or exited non-zero.', labelNames: ['hook'], registers: [r],
    });
    this.hookTimeouts = new Counter({
      name: 'tunneldigger_hook_timeouts_total', help: 'Hook runs killed after the hook timeout.', labelNames: ['hook'], registers: [r],
    });
    this.hookSeconds = new Histogram({
      name: 'tunneldigger_hook_duration_seconds', help: 'Hook run time.', labelNames: ['hook'], buckets: HOOK_SECONDS_BUCKETS, registers: [r],
    });
    this.kernelFailures = new Counter({
      name: 'tunneldigger_kernel_call_failures_total', help: 'Failed netlink calls, by call and errno.',
      labelNames: ['call', 'errno'], registers: [r],
    });
    this.kernelSeconds = new Histogram({
      name: 'tunneldigger_kernel_call_duration_seconds', help: 'Netlink calls on the netlink thread, from submit to answer, by call.',
      labelNames: ['call'], buckets: KERNEL_SECONDS_BUCKETS, registers: [r],
    });
    new Gauge({
      name: 'tunneldigger_kernel_calls_pending', help: 'Netlink calls waiting for the kernel on the netlink thread.', registers: [r],
      collect() { this.set(self.kernelPending()); },
    });
    new Gauge({
      name: 'tunneldigger_prepares_waiting', help: 'PREPAREs with a valid cookie waiting in line for a tunnel setup slot.', registers: [r],
      collect() { this.set(self.core.preparesWaiting); },
    });
  }

  /** prom-client's process metrics, once (idempotent). Their event-loop lag histogram
   *  (monitorEventLoopDelay) is a libuv timer at EVENT_LOOP_LAG_PERIOD_MS that runs whether or
   *  not anyone scrapes: at 20 ms it was 50 wake-ups a second, most of an idle broker's wake-ups
   *  and, in the TCG VM, about half its idle CPU; at 1 s it is still a third of them (the other
   *  two: the tunnel sockets' reads). So it starts only with the /metrics endpoint and then runs
   *  for the life of the process (prom-client cannot stop it). Once a second still shows a
   *  stalled loop: a late timer is a lag sample as large as the stall. */
  enableProcessMetrics(): void {
    if (this.processMetrics) return;
    this.processMetrics = true;
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: EVENT_LOOP_LAG_PERIOD_MS });
  }

  /** JobRunner.onFinish. */
  jobFinished(job: Job, code: number | null, killed: boolean, ms: number): void {
    const hook = hookName(job);
    this.hookRuns.inc({ hook });
    if (killed) this.hookTimeouts.inc({ hook });
    if (code !== 0 && !job.ignoreFailure) this.hookFailures.inc({ hook });
    if (code !== null) this.hookSeconds.observe({ hook }, ms / 1000);
  }

  kernelFailure(call: string, errnoName: string): void {
    this.kernelFailures.inc({ call, errno: errnoName });
  }

  kernelCall(call: string, seconds: number): void {
    this.kernelSeconds.observe({ call }, seconds);
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

function admissionReason(name: string): string {
  const known: Record<string, string> = {
    'rate-limit': 'rate', 'rate-limit-ip': 'per_ip', 'no-ids': 'max_tunnels', 'stale-prepare': 'recently_refused',
    'fd-budget': 'fd_budget',
  };
  return known[name] ?? name.replace(/-/g, '_');
}
