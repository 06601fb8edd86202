// Broker core benchmark (Node, no kernel): N simulated clients do USAGE -> COOKIE -> PREPARE
// against BrokerCore (src/broker/broker.ts) and the setup is reported successful, as the driver
// would after TUNNEL_CREATE/SESSION_CREATE. Reports
//   * handshakes/s (CPU time of the core + the simulated clients' few encodes),
//   * heap per tunnel at N tunnels (needs `node --expose-gc`),
//   * steady state: CPU share of one core for N idle tunnels over 60 simulated seconds, driven
//     the way src/broker/executor.ts drives the core (client keepalives in, tick() at
//     nextDeadline()+1 ms, nextDeadline() after every event).
//
//   node --expose-gc build/js/bench/broker.js [--tunnels N]      (default 1000)
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../src/native.js';
import type { Action, SocketRef } from '../src/broker/actions.js';
import { BrokerCore } from '../src/broker/broker.js';
import type { BrokerConfig } from '../src/broker/config.js';
import { COOKIE_TICK_MS } from '../src/protocol/cookie.js';
import * as m from '../src/protocol/messages.js';
import { check, fmtInt, table } from './harness.js';
import { nodeCpuClock } from './node-clock.js';

const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const T0 = 3 * COOKIE_TICK_MS + 5;
const FEATURES = 1; // unique session ids, as current clients
const SIM_SECONDS = 60;

function config(maxTunnels: number): BrokerConfig {
  // production-like: hooks configured (they become `run` actions), automatic PMTU; rate limits
  // off so that every handshake is admitted
  return {
    address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: false,
    hooks: {
      sessionUp: '/etc/tunneldigger/up', sessionPreDown: '/etc/tunneldigger/pre-down',
      sessionDown: '/etc/tunneldigger/down', sessionMtuChanged: '/etc/tunneldigger/mtu', connectionRateLimit: '',
    },
  };
}

function newCore(maxTunnels: number): BrokerCore {
  let seed = 12345;
  return new BrokerCore(config(maxTunnels), {
    key: Uint8Array.from({ length: 32 }, (_, i) => i * 7),
    mac: (k, msg) => createHmac('sha1', k).update(msg).digest(),
    startMs: 0,
    // deterministic jitter: runs are comparable
    random: () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000),
    errno: { EEXIST: 17, EMSGSIZE: 90 },
    tcPath: '/usr/sbin/tc',
  });
}

/** Client i: a distinct address:port in the documentation ranges. */
function endpoint(i: number): Endpoint {
  const net = i % 2 === 0 ? '198.51.100' : '203.0.113';
  return { ip: `${net}.${1 + ((i >> 1) % 250)}`, port: 20000 + Math.floor(i / 500) };
}

function uuid(i: number): Uint8Array {
  return m.utf8Encode(`02:00:${(i >> 16 & 255).toString(16).padStart(2, '0')}:${(i >> 8 & 255).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}:01`);
}

const USAGE_REQ = m.encodeUsageRequest(FEATURES);
const COOKIE_REQ = m.encodeCookieRequest();

function sent(actions: Action[]): Uint8Array {
  const s = actions.find((a) => a.type === 'send');
  if (!s || s.type !== 'send') throw new Error('broker bench: the core did not answer');
  return s.data;
}

/** One client's handshake up to the tunnel being up; returns its tunnel id. */
function handshake(core: BrokerCore, i: number, now: number): number {
  const ep = endpoint(i);
  sent(core.datagram(LISTENER, USAGE_REQ, ep, now));
  const reply = m.parseFrame(sent(core.datagram(LISTENER, COOKIE_REQ, ep, now)));
  if (!m.isFrame(reply)) throw new Error('broker bench: bad COOKIE reply');
  const cookie = m.decodeCookieReply(reply.payload);
  if (!cookie) throw new Error('broker bench: bad COOKIE reply payload');
  const prep = core.datagram(LISTENER, m.encodePrepare(cookie, uuid(i), 1, FEATURES), ep, now);
  const setup = prep.find((a) => a.type === 'setup');
  if (!setup || setup.type !== 'setup') throw new Error(`broker bench: PREPARE of client ${i} was not admitted`);
  const up = core.setupResult(setup.setup.tunnelId, { ok: true }, now);
  const tunnel = m.parseFrame(sent(up));
  check(m.isFrame(tunnel) && m.decodeTunnel(tunnel.payload)?.tunnelId === setup.setup.tunnelId, 'TUNNEL reply carries the tunnel id');
  return setup.setup.tunnelId;
}

function connectAll(core: BrokerCore, n: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(handshake(core, i, T0));
  return ids;
}

function handshakeRate(n: number, rounds: number): { perSec: number; usPer: number } {
  connectAll(newCore(n), n); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const core = newCore(n);
    const t0 = nodeCpuClock.now();
    connectAll(core, n);
    best = Math.min(best, nodeCpuClock.now() - t0);
    check(core.tunnelCount === n, `${n} tunnels up`);
  }
  return { perSec: (n * 1000) / best, usPer: (best * 1000) / n };
}

function heapPerTunnel(n: number): { bytes: number; total: number } | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  const settle = (): number => { gc(); gc(); return process.memoryUsage().heapUsed; };
  const before = settle();
  const core = newCore(n);
  connectAll(core, n);
  const after = settle();
  check(core.tunnelCount === n, `${n} tunnels up`);
  return { bytes: (after - before) / n, total: after - before };
}

/** Idle tunnels for SIM_SECONDS: every client sends a KEEPALIVE each 5 s (staggered), the core
 *  is ticked at nextDeadline()+1 as the executor does. Returns CPU % of one core. */
function steadyState(n: number): { cpuPercent: number; events: number; sends: number } {
  const core = newCore(n);
  const ids = connectAll(core, n);
  const keepalive = m.encodeClientKeepalive(1);
  const start = T0 + 1;
  const end = start + SIM_SECONDS * 1000;
  const period = 5000;
  let next = 0; // client whose keepalive is due next (round robin, evenly staggered)
  let round = 0;
  let events = 0;
  let sends = 0;
  const count = (actions: Action[]): void => {
    for (const a of actions) if (a.type === 'send') sends++;
  };
  const t0 = nodeCpuClock.now();
  let timerAt = core.nextDeadline() + 1;
  for (;;) {
    const clientAt = start + round * period + Math.floor((next * period) / n);
    const now = Math.min(clientAt, timerAt);
    if (now >= end) break;
    if (clientAt <= timerAt) {
      count(core.datagram({ kind: 'tunnel', tunnelId: ids[next] }, keepalive, endpoint(next), now));
      if (++next === n) { next = 0; round++; }
    } else {
      count(core.tick(now));
    }
    timerAt = core.nextDeadline() + 1;
    events++;
  }
  const cpu = nodeCpuClock.now() - t0;
  check(core.tunnelCount === n, `all ${n} tunnels still up after ${SIM_SECONDS} s`);
  return { cpuPercent: (cpu / (SIM_SECONDS * 1000)) * 100, events, sends };
}

function main(argv: string[]): void {
  const at = argv.indexOf('--tunnels');
  const n = at >= 0 ? Number(argv[at + 1]) : 1000;
  if (!Number.isInteger(n) || n < 1 || n > 90_000) {
    console.error(`broker bench: --tunnels must be an integer 1..90000, not "${argv[at + 1]}"`);
    process.exitCode = 2;
    return;
  }
  console.log(`BrokerCore on Node ${process.version}, ${n} simulated clients (USAGE, COOKIE, PREPARE, setup ok); ` +
    `${nodeCpuClock.name}\n`);
  const rate = handshakeRate(n, 5);
  const heap = heapPerTunnel(n);
  const steady = steadyState(n);
  const rows = [
    ['handshakes/s (one core, best of 5)', fmtInt(rate.perSec)],
    ['CPU per handshake', `${rate.usPer.toFixed(1)} us`],
    [`heap per tunnel at ${n} tunnels`, heap ? `${fmtInt(heap.bytes)} B` : 'n/a (run node --expose-gc)'],
    [`heap for ${n} tunnels`, heap ? `${(heap.total / 1048576).toFixed(2)} MiB` : 'n/a'],
    [`idle ${n} tunnels: CPU of one core`, `${steady.cpuPercent.toFixed(2)} %`],
    ['  (events, datagrams sent in 60 s sim)', `${fmtInt(steady.events)}, ${fmtInt(steady.sends)}`],
  ];
  console.log(table(['broker core', 'value'], rows));
  const need = 2000 / 60;
  console.log(`\nNeed: 2000 tunnels reconnecting within 60 s = ${need.toFixed(1)} handshakes/s -> headroom ` +
    `x${fmtInt(rate.perSec / need)} (core only; each handshake also costs the driver a socket, 3 netlink round trips and a hook process).`);
}

main(process.argv.slice(2));
