// Broker benchmark (Node, no kernel): the real BrokerCore *and* BrokerDriver (src/broker/) on a
// simulated world (bench/broker-sim.ts: virtual-time loop, in-memory UDP sockets, a kernel whose
// netlink calls all succeed, hooks that exit at once). N simulated clients do USAGE -> COOKIE ->
// PREPARE, then keep alive every 5 s and answer PMTU probes. Whatever the driver does with its
// timers (grid, heap...) and sockets is what is measured. Reports
//   * handshakes/s: CPU time from N clients starting at once to N tunnels up (hooks reaped),
//   * heap per tunnel at N tunnels (needs `node --expose-gc`),
//   * idle: CPU share of one core and timer wake-ups for N idle tunnels over 60 simulated
//     seconds, after 30 s of settling (the broker's PMTU discovery has finished by then).
// CPU includes the simulated clients and network (a few encodes and queue operations per datagram).
//
//   node --expose-gc build/js/bench/broker.js [--tunnels N]      (default 1000)
import { createHmac } from 'node:crypto';
import { BrokerCore } from '../src/broker/broker.js';
import type { BrokerConfig } from '../src/broker/config.js';
import { BrokerDriver } from '../src/broker/executor.js';
import { JobRunner } from '../src/broker/job-runner.js';
import { timers } from '../src/protocol/constants.js';
import { COOKIE_TICK_MS } from '../src/protocol/cookie.js';
import * as m from '../src/protocol/messages.js';
import { SimLoop, SimNet, okKernel } from './broker-sim.js';
import { check, fmtInt, table } from './harness.js';
import { nodeCpuClock } from './node-clock.js';

const PORT = 8942;
const T0 = 3 * COOKIE_TICK_MS + 5;
const SETTLE_MS = 30_000;
const SIM_SECONDS = 60;
const KEEPALIVE_MS = 5_000;

function config(maxTunnels: number): BrokerConfig {
  // production-like: hooks configured (run as jobs), automatic PMTU; rate limits off so that
  // every handshake is admitted
  return {
    address: '203.0.113.1', ports: [PORT], interface: 'eth0', maxTunnels, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: false,
    hooks: {
      sessionUp: '/etc/tunneldigger/up', sessionPreDown: '/etc/tunneldigger/pre-down',
      sessionDown: '/etc/tunneldigger/down', sessionMtuChanged: '/etc/tunneldigger/mtu', connectionRateLimit: '',
    },
  };
}

interface World {
  loop: SimLoop;
  net: SimNet;
  core: BrokerCore;
  driver: BrokerDriver;
  flush: () => void;
}

function world(n: number): World {
  const loop = new SimLoop();
  loop.t = T0;
  const net = new SimNet(loop);
  const native = net.native();
  const cfg = config(n);
  let seed = 12345;
  const core = new BrokerCore(cfg, {
    key: Uint8Array.from({ length: 32 }, (_, i) => i * 7),
    mac: (k, msg) => createHmac('sha1', k).update(msg).digest(),
    startMs: loop.t,
    // deterministic jitter: runs are comparable
    random: () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000),
    errno: native.errno,
    tcPath: '/usr/sbin/tc',
  });
  const jobs = new JobRunner(native, loop, { timeoutMs: timers.hookTimeout }, core.counters);
  const driver = new BrokerDriver(core, cfg, native, loop, okKernel(), jobs);
  driver.cleanupStaleKernelState();
  check(driver.openListeners() === 1, 'the simulated listener opens');
  net.adoptListeners();
  for (let i = 0; i < n; i++) net.addClient(i);
  return { loop, net, core, driver, flush: () => net.flush(PORT) };
}

/** All clients start at once; runs until every tunnel is up and its hook jobs were reaped. */
function connectAll(w: World): void {
  for (const c of w.net.clients) w.net.startHandshake(c, PORT);
  w.loop.runUntil(w.loop.t + 1_000, w.flush);
  const n = w.net.clients.length;
  check(w.net.upCount === n && w.core.tunnelCount === n, `${n} tunnels up (clients ${w.net.upCount}, broker ${w.core.tunnelCount}; last error: ${w.loop.lastError || 'none'})`);
}

function handshakeRate(n: number, rounds: number): { perSec: number; usPer: number } {
  connectAll(world(n)); // warm-up
  let best = Infinity;
  for (let r = 0; r < rounds; r++) {
    const w = world(n);
    const t0 = nodeCpuClock.now();
    connectAll(w);
    best = Math.min(best, nodeCpuClock.now() - t0);
  }
  return { perSec: (n * 1000) / best, usPer: (best * 1000) / n };
}

function heapPerTunnel(n: number): { bytes: number; total: number } | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) return null;
  const settle = (): number => { gc(); gc(); return process.memoryUsage().heapUsed; };
  const w = world(n);
  const before = settle();
  connectAll(w);
  const after = settle();
  check(w.core.tunnelCount === n, `${n} tunnels up`);
  return { bytes: (after - before) / n, total: after - before };
}

/** Every client keeps alive every 5 s (evenly staggered) on its own timer. */
function keepalives(w: World): void {
  const ka = m.encodeClientKeepalive(1);
  const n = w.net.clients.length;
  w.net.clients.forEach((c, i) => {
    const beat = (): void => {
      w.net.clientSend(c, ka, PORT);
      w.loop.setTimer(KEEPALIVE_MS, beat);
    };
    w.loop.setTimer(Math.floor((i * KEEPALIVE_MS) / n), beat);
  });
}

function steadyState(n: number): { cpuPercent: number; wakeups: number; sends: number; brokerTimers: number } {
  const w = world(n);
  connectAll(w);
  keepalives(w);
  w.loop.runUntil(w.loop.t + SETTLE_MS, w.flush);
  const fired0 = w.loop.timersFired;
  const sent0 = w.net.sentByBroker;
  const t0 = nodeCpuClock.now();
  w.loop.runUntil(w.loop.t + SIM_SECONDS * 1000, w.flush);
  const cpu = nodeCpuClock.now() - t0;
  check(w.core.tunnelCount === n && w.net.upCount === n, `all ${n} tunnels still up after ${SIM_SECONDS} s`);
  const wakeups = w.loop.timersFired - fired0;
  // the clients' own keepalive timers are part of wakeups: subtract them
  const clientTimers = Math.round((n * SIM_SECONDS * 1000) / KEEPALIVE_MS);
  return { cpuPercent: (cpu / (SIM_SECONDS * 1000)) * 100, wakeups, sends: w.net.sentByBroker - sent0, brokerTimers: wakeups - clientTimers };
}

function main(argv: string[]): void {
  const at = argv.indexOf('--tunnels');
  const n = at >= 0 ? Number(argv[at + 1]) : 1000;
  if (!Number.isInteger(n) || n < 1 || n > 90_000) {
    console.error(`broker bench: --tunnels must be an integer 1..90000, not "${argv[at + 1]}"`);
    process.exitCode = 2;
    return;
  }
  console.log(`BrokerCore + BrokerDriver on Node ${process.version}, ${n} simulated clients (USAGE, COOKIE, PREPARE, netlink ok); ` +
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
    [`  = CPU per minute`, `${((steady.cpuPercent / 100) * 60).toFixed(3)} s`],
    [`  broker timer wake-ups in ${SIM_SECONDS} s`, fmtInt(steady.brokerTimers)],
    [`  datagrams sent by the broker in ${SIM_SECONDS} s`, fmtInt(steady.sends)],
  ];
  console.log(table(['broker core', 'value'], rows));
  const need = 2000 / 60;
  console.log(`\nNeed: 2000 tunnels reconnecting within 60 s = ${need.toFixed(1)} handshakes/s -> headroom ` +
    `x${fmtInt(rate.perSec / need)} (core + driver; a real handshake also costs 3+ netlink round trips and a hook process: see make bench-load).`);
}

main(process.argv.slice(2));
