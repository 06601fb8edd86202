// The broker's process metrics must not cost an idle broker wake-ups: prom-client's event-loop lag
// histogram (perf_hooks.monitorEventLoopDelay) is a libuv timer at its resolution, running whether
// or not anyone scrapes. At 20 ms it was 50 wake-ups a second (docs/performance.md "Broker idle").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import { BrokerCore } from '../../src/broker/broker.js';
import { BrokerMetrics, EVENT_LOOP_LAG_PERIOD_MS } from '../../src/broker/metrics.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { parseConfig } from '../../src/broker/config.js';
import type { BrokerDriver } from '../../src/broker/executor.js';
import type { JobRunner } from '../../src/broker/job-runner.js';
import { BrokerOps } from '../../src/main/broker/broker-ops.js';
import type { NodeLoop } from '../../src/runtime/node/loop.js';
import type { NodeNative } from '../../src/runtime/node/native.js';

// prom-client reads perf_hooks.monitorEventLoopDelay from the shared CommonJS module object
const perfHooks = createRequire(import.meta.url)('node:perf_hooks') as typeof import('node:perf_hooks');

/** Runs fn with monitorEventLoopDelay recorded: the resolutions of the monitors created. */
async function monitors(fn: () => Promise<void> | void): Promise<number[]> {
  const original = perfHooks.monitorEventLoopDelay;
  const resolutions: number[] = [];
  perfHooks.monitorEventLoopDelay = (opts) => {
    resolutions.push(opts?.resolution ?? 10);
    return original(opts);
  };
  try {
    await fn();
  } finally {
    perfHooks.monitorEventLoopDelay = original;
  }
  return resolutions;
}

test('the event-loop lag is sampled once a second, and still reported', async () => {
  let metrics: BrokerMetrics | undefined;
  // the core is only read when the tunnel metrics are collected, which this test does not do
  const made = await monitors(() => { metrics = new BrokerMetrics({} as BrokerCore); });
  assert.equal(made, [EVENT_LOOP_LAG_PERIOD_MS], 'one lag monitor, at the lag period');
  assert.ok(EVENT_LOOP_LAG_PERIOD_MS >= 1000, `${EVENT_LOOP_LAG_PERIOD_MS} ms: at most one wake-up a second`);
  const lag = metrics!.registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds');
  assert.ok(lag, 'the lag metric is still there');
  const value = await lag.get();
  assert.is(value.values.length, 1);
});

test('the broker starts the lag monitor with its /metrics endpoint only: none without [metrics] listen', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'td-metrics-idle-'));
  const base = '[broker]\naddress=203.0.113.1\nport=8942\ninterface=eth0\nmax_tunnels=4\ntunnel_id_base=100\n' +
    'connection_rate_limit=0\npmtu=0\n[log]\nverbosity=INFO\nlog_ip_addresses=false\n[hooks]\nsession.up=\nsession.pre-down=\n' +
    `session.down=\nsession.mtu-changed=\nbroker.connection-rate-limit=\n[control]\nsocket=${dir}/ctl.sock\n`;
  const run = async (cfgText: string): Promise<{ made: number[]; body: string; lag: boolean }> => {
    const cfg = parseConfig(cfgText);
    const core = new BrokerCore(cfg, {
      key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0,
      random: Math.random, errno: osConstants.errno, tcPath: '/usr/sbin/tc',
    });
    let ops: BrokerOps | undefined;
    let body = '';
    const loop = { log: () => {} } as unknown as NodeLoop;
    const made = await monitors(async () => {
      ops = new BrokerOps(core, cfg, `${dir}/broker.cfg`, { sdNotify: () => 0 } as unknown as NodeNative, loop, { onFinish: null } as unknown as JobRunner);
      await ops.start({} as BrokerDriver);
      const http = (ops as unknown as { http: Server | null }).http;
      if (http) body = await (await fetch(`http://127.0.0.1:${(http.address() as AddressInfo).port}/metrics`)).text();
    });
    const lag = ops!.metrics.registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds') !== undefined;
    ops!.stopped();
    return { made, body, lag };
  };
  try {
    const off = await run(base);
    assert.equal(off.made, [], 'no lag monitor (no timer) while nobody can scrape');
    assert.not.ok(off.lag);
    // a free port (the config takes 1-65535 only)
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const on = await run(`${base}[metrics]\nlisten=127.0.0.1:${port}\n`);
    assert.equal(on.made, [EVENT_LOOP_LAG_PERIOD_MS], 'one monitor with the endpoint');
    assert.match(on.body, /^nodejs_eventloop_lag_p99_seconds /m);
    assert.match(on.body, /^process_cpu_seconds_total /m);
    assert.match(on.body, /^tunneldigger_tunnels\{port="8942"\} 0$/m);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('enableProcessMetrics is idempotent: one lag monitor however often it is called', async () => {
  const metrics = new BrokerMetrics({} as BrokerCore, { processMetrics: false });
  const made = await monitors(() => { metrics.enableProcessMetrics(); metrics.enableProcessMetrics(); });
  assert.equal(made, [EVENT_LOOP_LAG_PERIOD_MS]);
});

test.run();
