// Cost of the Prometheus metrics (src/broker/metrics.ts, prom-client) at N tunnels, sans-IO:
//   * RSS and heap added by loading prom-client and building the registry (with process metrics),
//   * one scrape at N tunnels: CPU ms, exposition size, and the CPU share of one core when
//     scraped every 15 s (a usual Prometheus interval).
//
//   node --expose-gc build/js/bench/metrics.js [--tunnels N]      (default 10000)
import { createHmac } from 'node:crypto';
import type { SocketRef } from '../src/broker/actions.js';
import { BrokerCore } from '../src/broker/broker.js';
import type { BrokerConfig } from '../src/broker/config.js';
import * as m from '../src/protocol/messages.js';
import { check, table } from './harness.js';

const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const arg = process.argv.indexOf('--tunnels');
const N = arg > 0 ? Number(process.argv[arg + 1]) : 10_000;
const gc = (globalThis as { gc?: () => void }).gc;
const mem = (): { rss: number; heap: number } => {
  gc?.();
  gc?.();
  const u = process.memoryUsage();
  return { rss: u.rss, heap: u.heapUsed };
};
const MiB = (b: number): string => (b / 1048576).toFixed(1);
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const cfg: BrokerConfig = {
  address: '203.0.113.1', ports: [8942, 53, 123], interface: 'eth0', maxTunnels: Math.min(99_000, N + 10), tunnelIdBase: 100,
  connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: false,
  hooks: { sessionUp: '/up', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' },
};
const core = new BrokerCore(cfg, {
  key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0,
  random: () => 0.5, errno: { EEXIST: 17, EMSGSIZE: 90 }, tcPath: '/usr/sbin/tc',
});
for (let i = 0; i < N; i++) {
  const ep = { ip: `198.51.100.${1 + (i % 250)}`, port: 20000 + Math.floor(i / 250) };
  const reply = m.parseFrame(core.datagram(LISTENER, m.encodeCookieRequest(), ep, 1000).find((a) => a.type === 'send')!.data as Uint8Array);
  const cookie = m.decodeCookieReply((reply as m.Frame).payload)!;
  const setup = core.datagram(LISTENER, m.encodePrepare(cookie, m.utf8Encode(`uuid-${i}`), 1, 1), ep, 1000).find((a) => a.type === 'setup');
  if (setup?.type === 'setup') core.setupResult(setup.setup.tunnelId, { ok: true }, 1000);
}
check(core.tunnelCount === N, `${N} tunnels up`);

const before = mem();
const { BrokerMetrics } = await import('../src/broker/metrics.js');
const metrics = new BrokerMetrics(core);
const loaded = mem();
let text = await metrics.text(); // warm-up
const scrapes = 20;
const c0 = cpuMs();
for (let i = 0; i < scrapes; i++) text = await metrics.text();
const perScrape = (cpuMs() - c0) / scrapes;
const after = mem();
check(text.includes(`tunneldigger_tunnel_mtu_count ${N}`), 'the histogram counts every tunnel');
process.stdout.write(`metrics at ${N} tunnels (prom-client, process metrics on)\n` + table(['figure', 'value'], [
  ['RSS added by prom-client + registry', `${MiB(loaded.rss - before.rss)} MiB`],
  ['heap added by prom-client + registry', `${MiB(loaded.heap - before.heap)} MiB`],
  ['heap after 20 scrapes (vs loaded)', `${MiB(after.heap - loaded.heap)} MiB`],
  ['CPU per scrape', `${perScrape.toFixed(2)} ms`],
  ['CPU share at one scrape per 15 s', `${(perScrape / 150).toFixed(3)} %`],
  ['exposition size', `${text.length} bytes`],
]) + '\n');
process.exit(0);
