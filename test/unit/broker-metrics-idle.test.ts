// The broker's process metrics must not cost an idle broker wake-ups: prom-client's event-loop lag
// histogram (perf_hooks.monitorEventLoopDelay) is a libuv timer at its resolution, running whether
// or not anyone scrapes. At 20 ms it was 50 wake-ups a second (docs/performance.md "Broker idle").
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRequire } from 'node:module';
import type { BrokerCore } from '../../src/broker/broker.js';
import { BrokerMetrics, EVENT_LOOP_LAG_PERIOD_MS } from '../../src/broker/metrics.js';

test('the event-loop lag is sampled once a second, and still reported', async () => {
  // prom-client reads perf_hooks.monitorEventLoopDelay from the shared CommonJS module object
  const perfHooks = createRequire(import.meta.url)('node:perf_hooks') as typeof import('node:perf_hooks');
  const original = perfHooks.monitorEventLoopDelay;
  const resolutions: number[] = [];
  perfHooks.monitorEventLoopDelay = (opts) => {
    resolutions.push(opts?.resolution ?? 10);
    return original(opts);
  };
  try {
    // the core is only read when the tunnel metrics are collected, which this test does not do
    const metrics = new BrokerMetrics({} as BrokerCore);
    assert.equal(resolutions, [EVENT_LOOP_LAG_PERIOD_MS], 'one lag monitor, at the lag period');
    assert.ok(EVENT_LOOP_LAG_PERIOD_MS >= 1000, `${EVENT_LOOP_LAG_PERIOD_MS} ms: at most one wake-up a second`);
    const lag = metrics.registry.getSingleMetric('nodejs_eventloop_lag_p99_seconds');
    assert.ok(lag, 'the lag metric is still there');
    const value = await lag.get();
    assert.is(value.values.length, 1);
  } finally {
    perfHooks.monitorEventLoopDelay = original;
  }
});

test.run();
