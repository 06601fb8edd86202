// Idle broker CPU with the real BrokerDriver and NodeLoop timers (fake sockets and kernel, no
// root): N tunnels whose clients each send a keepalive every 5 s (staggered); after a settling
// time (PMTU probing, default 30 s) the process CPU over the measuring window is reported as
// ms per minute. Unlike bench/broker.ts this includes the driver's wake-ups (setTimeout), which
// is where the timer design shows (docs/performance.md, "Broker core (JS)"). By default the
// datagrams reach the driver as the broker on Node gets them, in batches (a DatagramReader that
// hands over what arrived within one event-loop turn); --per-datagram: one readiness callback
// and recvFrom per datagram (the driver without a reader).
//
//   node build/js/bench/broker-idle.js [--tunnels N] [--settle S] [--seconds S] [--per-datagram]
import { createHmac } from 'node:crypto';
import type { Endpoint, Native } from '../src/native.js';
import { BrokerCore } from '../src/broker/broker.js';
import type { BrokerConfig } from '../src/broker/config.js';
import { BrokerDriver, type BrokerKernel } from '../src/broker/executor.js';
import { JobRunner } from '../src/broker/job-runner.js';
import { HandedDatagramReader } from '../src/runtime/datagram-batch.js';
import { NodeLoop } from '../src/runtime/node/loop.js';
import { native as hostNative } from '../src/runtime/node/native.js';
import * as m from '../src/protocol/messages.js';

function arg(name: string, fallback: number): number {
  const at = process.argv.indexOf(name);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
}
const N = arg('--tunnels', 100);
const SETTLE = arg('--settle', 30);
const SECONDS = arg('--seconds', 30);
const PER_DATAGRAM = process.argv.includes('--per-datagram');

// the platform's errno values: the one table (td_errno_table in qjs-native/td_core.c, through the addon)
const E = hostNative.errno;
const readable = new Map<number, () => void>();
const loop = new NodeLoop({ watch: (fd, cb) => (readable.set(fd, cb), 0), unwatch: (fd) => { readable.delete(fd); } }, 'info', () => {});
const inbox = new Map<number, { data: Uint8Array; from: Endpoint }[]>();
let nextFd = 10;
let sent = 0;
let lastSent: Uint8Array = new Uint8Array(0);
const native = {
  errno: E, udpSocket: () => nextFd++, setReusePort: () => 0, bindToDevice: () => 0, bind: () => 0, connect: () => 0,
  setPmtuProbe: () => 0, setRecvBuffer: (_fd: number, bytes: number) => 2 * bytes, close: () => 0,
  send: (_fd: number, d: Uint8Array) => (sent++, d.length),
  sendTo: (_fd: number, d: Uint8Array) => (sent++, (lastSent = d), d.length),
  recvFrom: (fd: number, buf: Uint8Array, from: Endpoint) => {
    const x = inbox.get(fd)?.shift();
    if (!x) return -E.EAGAIN;
    buf.set(x.data);
    from.ip = x.from.ip;
    from.port = x.from.port;
    return x.data.length;
  },
  strerror: (e: number) => `error ${e}`, spawn: () => -2, waitPid: () => null, kill: () => 0, read: () => -E.EAGAIN,
} as unknown as Native;
const kernel: BrokerKernel = {
  lastProblem: '', resolveL2tpFamily: () => 1, createTunnel: () => 0, deleteTunnel: () => 0, createSession: () => 0,
  deleteSession: () => 0, setSessionMtu: () => 0, setLinkMtu: () => 0, listTunnels: () => [], listSessions: () => [],
};
const cfg: BrokerConfig = {
  address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels: Math.max(N, 1), tunnelIdBase: 100,
  connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: false,
  hooks: { sessionUp: '', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' },
};
const core = new BrokerCore(cfg, {
  key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: loop.now(),
  random: Math.random, errno: E, tcPath: '/usr/sbin/tc',
});
// the simulated keepalives come one per timer callback, spread in time: each is a batch of one,
// the case where batching saves least
const reader = PER_DATAGRAM ? undefined : new HandedDatagramReader();
const driver = new BrokerDriver(core, cfg, native, loop, kernel, new JobRunner(native, loop, { timeoutMs: 30_000 }), reader);
driver.openListeners();
const deliver = (fd: number, data: Uint8Array, from: Endpoint): void => {
  if (reader) return reader.turn([[fd, data, from]]);
  const q = inbox.get(fd) ?? [];
  q.push({ data, from });
  inbox.set(fd, q);
  readable.get(fd)!();
};
const clients: { fd: number; ep: Endpoint }[] = [];
for (let i = 0; i < N; i++) {
  const ep = { ip: `198.51.100.${1 + (i % 250)}`, port: 10_000 + i };
  deliver(10, m.encodeCookieRequest(), ep);
  const cookie = m.decodeCookieReply((m.parseFrame(lastSent) as m.Frame).payload)!;
  deliver(10, m.encodePrepare(cookie, m.utf8Encode(`u${i}`), 1, 1), ep);
  clients.push({ fd: 11 + i, ep });
}
if (core.tunnelCount !== N) throw new Error(`broker-idle: ${core.tunnelCount} of ${N} tunnels up`);
const keepalive = m.encodeClientKeepalive(1);
clients.forEach((c, i) => setTimeout(() => setInterval(() => deliver(c.fd, keepalive, c.ep), 5000), (i * 5000) / N));
setTimeout(() => {
  const c0 = process.cpuUsage();
  const s0 = sent;
  setTimeout(() => {
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1000;
    console.log(`broker-idle${PER_DATAGRAM ? ' (per datagram)' : ''}: ${N} tunnels (${core.tunnelCount} up), CPU ${ms.toFixed(0)} ms in ${SECONDS} s = ` +
      `${((ms * 60) / SECONDS).toFixed(0)} ms/min (driver + core + the simulated clients' keepalives); ${sent - s0} datagrams sent`);
    process.exit(0);
  }, SECONDS * 1000);
}, SETTLE * 1000);
