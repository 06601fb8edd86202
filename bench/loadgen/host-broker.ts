// A broker for measuring the load generator itself on a machine without L2TP (bench/README.md,
// "The load generator's own cost"): the real BrokerCore and BrokerDriver on the addon's UDP
// sockets and datagram reader, as tunneldigger-broker wires them, but with a kernel whose every
// netlink call succeeds (bench/broker-sim.ts okKernel): no tunnel, session or data plane, and no
// hooks. Its figures are not the broker's (those come from the VM); it is a peer that answers
// cookies, creates tunnels, sends keepalives and PMTU probes like the real one, so the load
// generator can run against it at native speed and with a profiler.
//
//   node build/js/bench/loadgen/host-broker.js [--port P] [--max-tunnels N]
// Listens on 127.0.0.1:P (default 8942); logs to stderr; SIGUSR1 logs the counters and status
// lines the load generator's --broker-log reads; SIGTERM/SIGINT exit at once.
import { createHmac, randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { BrokerCore } from '../../src/broker/broker.js';
import { parseConfig } from '../../src/broker/config.js';
import { BrokerDriver, TUNNEL_READ_MS } from '../../src/broker/executor.js';
import { JobRunner } from '../../src/broker/job-runner.js';
import { timers } from '../../src/protocol/constants.js';
import { nodeDatagramReader } from '../../src/runtime/node/datagram-reader.js';
import { NodeLoop } from '../../src/runtime/node/loop.js';
import { native } from '../../src/runtime/node/native.js';
import { okKernel } from '../broker-sim.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  if (at < 0) return fallback;
  const v = Number(process.argv[at + 1]);
  if (!Number.isInteger(v) || v <= 0) {
    process.stderr.write(`host-broker: ${name} "${process.argv[at + 1] ?? ''}" is not a positive integer\n`);
    process.exit(2);
  }
  return v;
}

const port = arg('--port', 8942);
const maxTunnels = arg('--max-tunnels', 12_000);
const cfg = parseConfig(`[broker]
address=127.0.0.1
port=${port}
interface=lo
max_tunnels=${maxTunnels}
tunnel_id_base=100
connection_rate_limit=0
pmtu=0
[log]
verbosity=INFO
log_ip_addresses=false
[hooks]
session.up=
session.pre-down=
session.down=
session.mtu-changed=
broker.connection-rate-limit=
`);
const loop = new NodeLoop(native, cfg.verbosity);
const fdLimit = native.raiseFdLimit();
const core = new BrokerCore(cfg, {
  key: randomBytes(32),
  mac: (key, message) => createHmac('sha1', key).update(message).digest(),
  startMs: loop.now(),
  random: Math.random,
  errno: native.errno,
  tcPath: '/usr/sbin/tc',
  logEnabled: (level) => loop.enabled(level),
});
if (typeof fdLimit !== 'number') core.setFdLimit(fdLimit.soft);
const jobs = new JobRunner(native, loop, { timeoutMs: timers.hookTimeout }, core.counters);
const driver = new BrokerDriver(core, cfg, native, loop, okKernel(), jobs, nodeDatagramReader(native, TUNNEL_READ_MS));
if (driver.openListeners() === 0) {
  loop.log('error', `cannot listen on 127.0.0.1:${port}; exiting`);
  process.exit(1);
}
loop.log('info', `host broker started on 127.0.0.1:${port} (no kernel tunnels), pid ${process.pid}`);
loop.onSignal(native.signals.SIGUSR1, () => {
  loop.log('info', core.counters.line());
  for (const line of core.statusSummary(loop.now())) loop.log('info', `status: ${line}`);
});
for (const s of [osConstants.signals.SIGTERM, osConstants.signals.SIGINT]) loop.onSignal(s, () => process.exit(0));
