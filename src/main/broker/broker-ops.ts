// Operations around a running broker (Node): the control socket (ctl), reload of the config on
// SIGHUP or `ctl reload`, the Prometheus /metrics endpoint, and systemd notification
// (READY/STATUS/STOPPING through the addon's sdNotify). broker-main.ts creates one BrokerOps.
import { accessSync, constants as fsConstants, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { constants as osConstants } from 'node:os';
import type { BrokerCore } from '../../broker/broker.js';
import { ConfigError, parseConfig, type BrokerConfig, type ListenAddress } from '../../broker/config.js';
import { controlSocketPath, handleControl, type ControlReply } from '../../broker/control.js';
import type { BrokerDriver, BrokerKernel, BrokerKernelWorker } from '../../broker/executor.js';
import type { JobRunner } from '../../broker/job-runner.js';
import { BrokerMetrics } from '../../broker/metrics.js';
import { ControlServer } from './control-server.js';
import type { NodeLoop } from '../../runtime/node/loop.js';
import type { NodeNative } from '../../runtime/node/native.js';

const STATUS_MS = 10_000;
const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([k, v]) => [v, k]));

export class BrokerOps {
  readonly metrics: BrokerMetrics;
  private control: ControlServer | null = null;
  private http: Server | null = null;
  private httpAt = '';
  private driver: BrokerDriver | null = null;
  private statusTimer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private readonly core: BrokerCore,
    private readonly cfg: BrokerConfig,
    private readonly configPath: string,
    private readonly native: NodeNative,
    private readonly loop: NodeLoop,
    jobs: JobRunner,
  ) {
    // the process metrics (and their event-loop lag timer) start with the /metrics endpoint
    this.metrics = new BrokerMetrics(core, { processMetrics: false });
    jobs.onFinish = (job, code, killed, ms) => this.metrics.jobFinished(job, code, killed, ms);
  }

  /** The kernel executor with failed calls counted (tunneldigger_kernel_call_failures_total). */
  wrapKernel<K extends BrokerKernel>(kernel: K): K {
    const calls = ['createTunnel', 'deleteTunnel', 'createSession', 'deleteSession', 'setSessionMtu', 'setLinkMtu'] as const;
    for (const call of calls) {
      const orig = (kernel[call] as (...a: unknown[]) => number).bind(kernel);
      (kernel as unknown as Record<string, unknown>)[call] = (...args: unknown[]): number => {
        const r = orig(...args);
        if (r < 0) this.metrics.kernelFailure(call, ERRNO_NAMES.get(-r) ?? String(-r));
        return r;
      };
    }
    // the pipelined form: one result per tunnel, counted as deleteTunnel
    const many = kernel.deleteTunnels?.bind(kernel);
    if (many) {
      kernel.deleteTunnels = (ids: number[]): number[] => {
        const rs = many(ids);
        for (const r of rs) if (r < 0) this.metrics.kernelFailure('deleteTunnel', ERRNO_NAMES.get(-r) ?? String(-r));
        return rs;
      };
    }
    return kernel;
  }

  /** The netlink worker with its failures counted like wrapKernel's (by operation), its call
   *  times and the calls pending in /metrics. */
  wrapWorker(worker: BrokerKernelWorker): BrokerKernelWorker {
    this.metrics.kernelPending = () => worker.pending;
    return {
      submit: (op, cb) => {
        const at = this.loop.now();
        worker.submit(op, (r, problem) => {
          this.metrics.kernelCall(op.op, (this.loop.now() - at) / 1000);
          if (r < 0) this.metrics.kernelFailure(op.op, ERRNO_NAMES.get(-r) ?? String(-r));
          cb(r, problem);
        });
      },
      get pending() {
        return worker.pending;
      },
    };
  }

  /** After the listeners are open: control socket, metrics, READY=1 (broker-main routes SIGHUP to reload()). Throws a one-line
   *  reason when the control socket or the metrics address cannot be used. */
  async start(driver: BrokerDriver): Promise<void> {
    this.driver = driver;
    const path = controlSocketPath(this.cfg, this.configPath);
    this.control = new ControlServer(path, (req) => this.command(req), (l, m) => this.loop.log(l, m));
    await this.control.start();
    this.loop.log('info', `control socket ${path} (tunneldigger-broker ctl -s ${path} status)`);
    if (this.cfg.metricsListen) await this.listenMetrics(this.cfg.metricsListen);
    this.notify('READY=1');
    this.statusTimer = setInterval(() => this.notify(`STATUS=${this.statusLine()}`), STATUS_MS);
    this.statusTimer.unref();
    this.notify(`STATUS=${this.statusLine()}`);
  }

  /** Shutdown began: tell systemd; metrics and ctl keep answering until stopped(). */
  stopping(): void {
    if (this.statusTimer) clearInterval(this.statusTimer);
    this.notify('STOPPING=1');
    this.notify(`STATUS=shutting down, closing ${this.core.tunnelCount} tunnels`);
  }

  stopped(): void {
    this.control?.stop();
    this.http?.close();
    this.http?.closeAllConnections();
    this.http = null;
  }

  private statusLine(): string {
    return `${this.core.tunnelCount}/${this.cfg.maxTunnels} tunnels${this.core.draining ? ', draining' : ''}`;
  }

  private notify(state: string): void {
    const r = this.native.sdNotify?.(state) ?? 0;
    if (r < 0) this.loop.log('debug', `sd_notify ${state.split('=')[0]}: ${this.native.strerror(-r)}`);
  }

  private command(request: string): ControlReply {
    const { reply, actions } = handleControl(this.core, request, this.loop.now(), () => this.reload('ctl reload'));
    if (actions.length) this.driver?.run(actions);
    if (reply.ok && /^\s*(drain|undrain)\b/.test(request)) this.notify(`STATUS=${this.statusLine()}`);
    return reply;
  }

  /** Re-reads the config file: live keys apply, restart-only keys are named and kept, a broken
   *  file keeps the running config. */
  reload(source: string): ControlReply {
    let next: BrokerConfig;
    try {
      next = parseConfig(readFileSync(this.configPath, 'utf8'));
    } catch (e) {
      const why = e instanceof ConfigError ? e.message : `cannot read ${this.configPath}: ${(e as Error).message}`;
      this.loop.log('error', `reload (${source}) failed: ${why}; keeping the running config`);
      return { ok: false, error: `${why}; keeping the running config` };
    }
    const oldListen = this.cfg.metricsListen ?? null;
    const { changed, needRestart } = this.core.reconfigure(next);
    this.loop.level = this.cfg.verbosity;
    warnHooksNotExecutable(this.cfg, this.loop);
    if (needRestart.length) {
      this.loop.log('warning', `reload (${source}): ${needRestart.join(', ')} changed but need a restart; ` +
        'they keep their running values');
    }
    const newListen = this.cfg.metricsListen ?? null;
    if (listenText(oldListen) !== listenText(newListen)) this.relistenMetrics(newListen);
    const text = `config ${this.configPath} re-read: ${changed.length ? changed.join('; ') : 'nothing changed'}` +
      (needRestart.length ? `; needs a restart (kept): ${needRestart.join(', ')}` : '');
    this.loop.log('info', `reload (${source}): ${text}`);
    return { ok: true, text, data: { changed, needRestart } };
  }

  private relistenMetrics(at: ListenAddress | null): void {
    const old = this.http;
    this.http = null;
    old?.close();
    old?.closeAllConnections();
    if (!at) {
      this.loop.log('info', 'metrics: off');
      return;
    }
    this.listenMetrics(at).catch((e: Error) => this.loop.log('error', `metrics: cannot listen on ${listenText(at)}: ${e.message}; metrics are off`));
  }

  private listenMetrics(at: ListenAddress): Promise<void> {
    this.metrics.enableProcessMetrics();
    const server = createServer((req, res) => {
      const url = (req.url ?? '/').split('?')[0];
      if (url !== '/metrics') {
        res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found; metrics are on /metrics\n');
        return;
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD' }).end();
        return;
      }
      this.metrics.text().then(
        (body) => res.writeHead(200, { 'Content-Type': this.metrics.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (e: Error) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
      );
    });
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    server.maxConnections = 32;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at.port, at.host, () => {
        server.off('error', reject);
        server.on('error', (e) => this.loop.log('error', `metrics server: ${e.message}`));
        server.unref();
        this.http = server;
        this.httpAt = listenText(at);
        this.loop.log('info', `metrics on http://${this.httpAt}/metrics`);
        resolve();
      });
    });
  }
}

function listenText(l: ListenAddress | null): string {
  if (!l) return 'off';
  return l.host.includes(':') ? `[${l.host}]:${l.port}` : `${l.host}:${l.port}`;
}

/** True when `path` is a file this process may execute (access X_OK). broker-main.ts uses it
 *  too (tc lookup). */
export function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** One warning per configured hook that is not executable (at start and on reload). */
export function warnHooksNotExecutable(cfg: BrokerConfig, loop: Pick<NodeLoop, 'log'>): void {
  for (const [key, hook] of Object.entries(cfg.hooks)) {
    if (hook && !isExecutable(hook)) loop.log('warning', `hook ${key} = ${hook} is not an executable file; running it will fail`);
  }
}
