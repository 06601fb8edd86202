// Load generator: N simulated tunneldigger clients in one Node process (bench/README.md,
// "Load generator"). Each client is our client core (or the original client's main loop, see
// sim.ts) with its own UDP socket from the native addon, read by the addon's batched reader
// (all readable sockets of an event-loop turn in one callback, as the broker reads its tunnel
// sockets; --read-ms: at most every MS ms; --per-socket: one callback per socket); one
// 500 ms timer ticks them all (--spread: in slices; --deadlines: each at its own deadline, from a
// heap, as our client's driver arms its timer; schedule.ts). --kernel also creates the
// client-side kernel tunnel and session through the project's netlink code.
//
// Broker-side figures come from the broker itself: CPU (utime+stime) and VmRSS from /proc, and
// the tunnel creations (counter tunnels-created) and tunnels held ("status: N/M tunnels") from
// the lines it logs on SIGUSR1.
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { Action } from '../../src/client/actions.js';
import { NetlinkKernel } from '../../src/netlink/kernel.js';
import { MessageType } from '../../src/protocol/constants.js';
import { decodeError, isFrame, parseFrame } from '../../src/protocol/messages.js';
import { formatHostPort } from '../../src/protocol/ip-address.js';
import { native } from '../../src/runtime/node/native.js';
import { nodeDatagramReader, type NodeDatagramReader } from '../../src/runtime/node/datagram-reader.js';
import type { DatagramBatch } from '../../src/runtime/datagram-batch.js';
import { HELP, OptionError, parseLoadOptions, type LoadOptions } from './options.js';
import { ClientScheduler } from './schedule.js';
import { createSim, type Sim } from './sim.js';
import { LocalBrokerProbe, RemoteBrokerProbe, type BrokerProbe, type BrokerSample, type StopWatch } from './broker-probe.js';
import { cpuPerMinute, type CpuSample, LagMonitor, percentile, procCpu, procRssKiB } from './stats.js';

const TICK_MS = 500;
/** --spread: the tick period in this many slices. */
const SPREAD_SLICES = 25;
const SETTLE_MS = 2_000;
/** --deadlines: the clients due within this much after the earliest are ticked together (our
 *  client's keepalive has 1 s of slack). */
const DEADLINE_SLACK_MS = 20;
/** Longest wait for the broker to close the tunnels after teardown. */
const TEARDOWN_WAIT_MS = 60_000;
/** Longest wait for one broker sample (its SIGUSR1 counters; brokerCounters' default). */
const BROKER_SAMPLE_S = 30;

interface Slot {
  i: number;
  sim: Sim;
  fd: number;
  started: boolean;
  startAt: number;
  attemptAt: number;
  firstUpAt: number;
  up: boolean;
  /** Being closed by us (churn, teardown): its going down is not a loss. */
  closing: boolean;
  queue: Action[];
  busy: boolean;
  /** --deadlines: the earliest deadline of this client in the scheduler's heap. */
  scheduledAt: number;
}

const say = (line: string): void => void process.stdout.write(`loadgen: ${line}\n`);

class LoadGen {
  readonly slots: Slot[] = [];
  readonly kernel: NetlinkKernel | null;
  readonly t0 = performance.now();
  upNow = 0;
  started = 0;
  opens = 0;
  lost = 0;
  reconnects = 0;
  churned = 0;
  sendErrors = 0;
  kernelErrors = 0;
  told = new Map<string, number>();
  logs = { error: 0, warning: 0 };
  /** First-attempt figures: time from the start of the attempt that succeeded to up, and from
   *  the client's start (retries included) to up. */
  readonly handshakeMs: number[] = [];
  readonly timeToUpMs: number[] = [];
  readonly reconnectMs: number[] = [];
  /** When the number of tunnels up last fell below N, and each recovery to N (ms since start). */
  lossStartedAt = -1;
  readonly recoveries: { lostAt: number; allBackAt: number }[] = [];
  private readonly buf = new Uint8Array(2048);
  private readonly from = { ip: '', port: 0 };
  private lastLossAt = -1;
  /** --deadlines: the clients' next deadlines and the one timer for the earliest. */
  readonly scheduler = new ClientScheduler<Slot>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private timerAt = Infinity;
  /** The batched reader (null: --per-socket) and the client of each socket it reads. */
  private readonly reader: NodeDatagramReader | null;
  private readonly byFd = new Map<number, Slot>();
  /** Sockets closed while a batch is delivered: their number may be reused by a new socket in
   *  the same callback, and their datagrams still in the batch belong to nobody. */
  private closedInBatch: Set<number> | null = null;

  constructor(readonly o: LoadOptions) {
    this.kernel = o.kernel ? new NetlinkKernel(native) : null;
    this.reader = o.perSocket ? null : nodeDatagramReader(native, o.readMs) ?? null;
    if (!o.perSocket && !this.reader) throw new Error('the native addon has no batched reader (datagramReader); rebuild it or use --per-socket');
    const rc = this.reader?.start((b) => this.receiveBatch(b)) ?? 0;
    if (rc < 0) throw new Error(`cannot start the batched reader: ${native.strerror(-rc)}`);
    for (let i = 0; i < o.clients; i++) {
      this.slots.push({
        i, sim: this.newSim(i), fd: -1, started: false, startAt: 0, attemptAt: 0, firstUpAt: -1, up: false,
        closing: false, queue: [], busy: false, scheduledAt: Infinity,
      });
    }
  }

  now(): number {
    return performance.now() - this.t0;
  }

  private newSim(i: number): Sim {
    const o = this.o;
    return createSim(o.mode, {
      host: o.brokerIp, port: o.brokerPort, uuid: `${o.uuidPrefix}-${i}`, tunnelId: o.tunnelIdBase + i, ifname: `${o.ifnamePrefix}${i}`,
      limitKbps: o.limitKbps,
    });
  }

  start(s: Slot): void {
    s.started = true;
    s.startAt = this.now();
    this.started++;
    this.run(s, s.sim.start(s.startAt));
  }

  tickAll(): void {
    const now = this.now();
    for (const s of this.slots) if (s.started) this.run(s, s.sim.tick(now));
  }

  /** Ticks slice `k` of `n`: the clients i with i % n == k (--spread). */
  tickSlice(k: number, n: number): void {
    const now = this.now();
    for (let i = k; i < this.slots.length; i += n) {
      const s = this.slots[i];
      if (s.started) this.run(s, s.sim.tick(now));
    }
  }

  /** Churn/teardown: ERROR 0x11 to the broker, kernel cleanup, socket closed. */
  close(s: Slot): void {
    s.closing = true;
    this.run(s, s.sim.shutdown(this.now()));
    this.closeSocket(s);
    s.closing = false;
  }

  churn(s: Slot): void {
    this.close(s);
    this.churned++;
    s.sim = this.newSim(s.i);
    s.scheduledAt = Infinity;
    this.run(s, s.sim.start(this.now()));
  }

  run(s: Slot, actions: Action[]): void {
    s.queue.push(...actions);
    if (s.busy) return;
    s.busy = true;
    try {
      for (let a = s.queue.shift(); a; a = s.queue.shift()) this.exec(s, a);
    } finally {
      s.busy = false;
    }
    this.observe(s);
    if (this.o.deadlines && s.started) {
      this.scheduler.schedule(s, this.now());
      this.arm();
    }
  }

  /** --deadlines: the one timer, armed for the earliest deadline of the heap. */
  private arm(): void {
    const at = this.scheduler.nextAt();
    if (at >= this.timerAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.timerAt = Infinity;
      this.scheduler.runDue(this.now(), DEADLINE_SLACK_MS, (s, now) => this.run(s, s.sim.tick(now)));
      this.arm();
    }, Math.max(0, at - this.now()));
  }

  /** --deadlines: no more ticks (the end of the run). */
  stopDeadlines(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private observe(s: Slot): void {
    const up = s.sim.ctx.state === 'up';
    if (up === s.up) return;
    const now = this.now();
    s.up = up;
    if (up) {
      this.upNow++;
      if (s.firstUpAt < 0) {
        s.firstUpAt = now;
        this.handshakeMs.push(now - s.attemptAt);
        this.timeToUpMs.push(now - s.startAt);
      } else {
        this.reconnects++;
        this.reconnectMs.push(now - s.attemptAt);
      }
      if (this.upNow === this.o.clients && this.lossStartedAt >= 0) {
        this.recoveries.push({ lostAt: this.lossStartedAt, allBackAt: now });
        say(`all ${this.o.clients} tunnels up again ${((now - this.lossStartedAt) / 1000).toFixed(1)} s after the first loss`);
        this.lossStartedAt = -1;
      }
      return;
    }
    this.upNow--;
    if (s.closing) return;
    this.lost++;
    if (this.lossStartedAt < 0 && this.upNow === this.o.clients - 1) this.lossStartedAt = now;
    if (this.lastLossAt < 0 || now - this.lastLossAt > 1000) say(`client ${s.i} lost its tunnel at ${(now / 1000).toFixed(1)} s (${this.lost} lost so far)`);
    this.lastLossAt = now;
  }

  private exec(s: Slot, x: Action): void {
    const n = native;
    const now = this.now();
    switch (x.a) {
      case 'log':
        if (x.level === 'error' || x.level === 'warning') {
          this.logs[x.level]++;
          if (this.o.verbose) say(`client ${s.i}: ${x.level}: ${x.msg}`);
        }
        return;
      case 'open':
        // the broker is an address literal (-b): nothing to resolve
        this.closeSocket(s);
        return this.run(s, s.sim.opened(x.gen, [{ ip: this.o.brokerIp, port: this.o.brokerPort, family: this.o.family }], now));
      case 'connect':
        return this.open(s, x.gen);
      case 'close':
        return this.closeSocket(s);
      case 'send': {
        if (s.fd < 0) return;
        const rc = n.send(s.fd, x.data);
        if (rc >= 0 || x.quiet) return;
        this.sendErrors++;
        if (rc === -n.errno.EINVAL) this.run(s, s.sim.sendFailed(n.strerror(-rc), now, this.o.family));
        return;
      }
      case 'setup': {
        let error: string | null = null;
        const k = this.kernel;
        if (k) {
          let rc = k.createTunnel({ tunnelId: x.tunnelId, peerTunnelId: x.peerTunnelId, fd: s.fd });
          if (rc < 0) error = `creating kernel tunnel ${x.tunnelId} failed: ${n.strerror(-rc)}`;
          else if ((rc = k.createSession({ tunnelId: x.tunnelId, sessionId: x.sessionId, peerSessionId: x.peerSessionId, ifname: x.ifname })) < 0) {
            error = `creating kernel session ${x.sessionId} (${x.ifname}) failed: ${n.strerror(-rc)}`;
            k.deleteTunnel(x.tunnelId);
          }
          if (error) {
            this.kernelErrors++;
            if (this.kernelErrors <= 5) say(`client ${s.i}: ${error}`);
          }
        }
        return this.run(s, s.sim.setupDone(error, now));
      }
      case 'teardown': {
        const k = this.kernel;
        if (!k) return;
        for (const sid of x.sessionIds) k.deleteSession(x.tunnelId, sid);
        k.deleteTunnel(x.tunnelId);
        return;
      }
      case 'mtu': {
        const rc = this.kernel ? this.kernel.setLinkMtu(x.ifname, x.mtu) : 0;
        return this.run(s, s.sim.mtuDone(x.mtu, 0, rc < 0 ? n.strerror(-rc) : null, now));
      }
      case 'hook':
      case 'exit':
        return;
    }
  }

  private open(s: Slot, gen: number): void {
    const n = native;
    const o = this.o;
    this.closeSocket(s);
    this.opens++;
    s.attemptAt = this.now();
    const fail = (what: string, rc: number): void => this.run(s, s.sim.connected(gen, o.family, `${what}: ${n.strerror(-rc)}`, this.now()));
    const fd = n.udpSocket(o.family);
    if (fd < 0) return fail('cannot create a UDP socket', fd);
    s.fd = fd;
    const src = o.sources[s.i % o.sources.length];
    let rc = n.bind(fd, src, 0);
    if (rc < 0) return fail(`cannot bind to ${src}`, rc);
    if ((rc = n.setPmtuProbe(fd)) < 0) return fail('cannot enable PMTU probing', rc);
    if ((rc = n.connect(fd, o.brokerIp, o.brokerPort)) < 0) return fail(`cannot connect to ${formatHostPort(o.brokerIp, o.brokerPort)}`, rc);
    if (this.reader) {
      this.byFd.set(fd, s);
      rc = this.reader.watch(fd, o.readMs > 0);
    } else rc = n.watch(fd, () => this.receive(s, fd));
    if (rc < 0) return fail('cannot watch the socket', rc);
    this.run(s, s.sim.connected(gen, o.family, null, this.now()));
  }

  private closeSocket(s: Slot): void {
    if (s.fd < 0) return;
    // close() also stops the watch (either kind)
    native.close(s.fd);
    this.byFd.delete(s.fd);
    this.closedInBatch?.add(s.fd);
    s.fd = -1;
  }

  /** --per-socket: fd is readable. */
  private receive(s: Slot, fd: number): void {
    const n = native;
    for (let k = 0; k < 64 && s.fd === fd; k++) {
      const len = n.recvFrom(fd, this.buf, this.from);
      if (len === -n.errno.EAGAIN) return;
      if (len < 0) continue;
      this.deliver(s, this.buf.subarray(0, len));
    }
  }

  /** What the batched reader read in one event-loop turn; socket errors (ICMP) are skipped, as
   *  by --per-socket, and a datagram of a socket closed meanwhile is dropped. */
  private receiveBatch(b: DatagramBatch): void {
    const closed = (this.closedInBatch = new Set());
    try {
      for (let i = 0; i < b.count; i++) {
        const fd = b.fd(i);
        const s = this.byFd.get(fd);
        if (!s || s.fd !== fd || b.result(i) < 0 || closed.has(fd)) continue;
        this.deliver(s, b.data(i));
      }
    } finally {
      this.closedInBatch = null;
    }
  }

  private deliver(s: Slot, data: Uint8Array): void {
    if (s.up) {
      const f = parseFrame(data);
      if (isFrame(f) && f.type === MessageType.ERROR) {
        const r = decodeError(f.payload).reason;
        const key = r === undefined ? 'none' : `0x${r.toString(16).padStart(2, '0')}`;
        this.told.set(key, (this.told.get(key) ?? 0) + 1);
      }
    }
    this.run(s, s.sim.feed(data, this.now(), this.o.family));
  }

  silentGiveUps(): number {
    return this.slots.reduce((t, s) => t + s.sim.silentGiveUps, 0);
  }

  neverUp(): number {
    return this.slots.filter((s) => s.firstUpAt < 0).length;
  }
}

/** The broker's readings (null without a probe, or when the probe failed: said once per sample). */
async function sampleBroker(probe: BrokerProbe | null, counters = true): Promise<BrokerSample | null> {
  if (!probe) return null;
  try {
    const b = await probe.sample(counters);
    if (counters && !b.log) say(`${probe.label}: the broker did not log its counters after SIGUSR1 (gone or too slow); its figures stay empty`);
    return b;
  } catch (e) {
    say(`${probe.label}: no sample (${e instanceof Error ? e.message : String(e)}); its figures stay empty`);
    return null;
  }
}

function brokerProbe(o: LoadOptions, g: LoadGen): BrokerProbe | null {
  if (o.brokerAgent) return new RemoteBrokerProbe(o.brokerAgent);
  if (o.brokerPid !== null && o.brokerLog !== null) return new LocalBrokerProbe(o.brokerPid, o.brokerLog, () => g.now());
  return null;
}

/** CLOCK_MONOTONIC in µs (the clock of V8's CPU profiles). */
const mono = (): number => Number(process.hrtime.bigint() / 1000n);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Soft limit on open files (/proc/self/limits), or null if unknown. */
function fdLimit(): number | null {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return !m ? null : m[1] === 'unlimited' ? Infinity : Number(m[1]);
  } catch {
    return null;
  }
}

function ms(v: number): string {
  return Number.isNaN(v) ? '-' : `${Math.round(v)} ms`;
}

export async function main(argv: string[]): Promise<number> {
  let o: LoadOptions;
  try {
    const r = parseLoadOptions(argv);
    if (r === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    o = r;
  } catch (e) {
    if (!(e instanceof OptionError)) throw e;
    process.stderr.write(`loadgen: ${e.message}\n`);
    return 2;
  }
  const limit = fdLimit();
  if (limit !== null && limit < o.clients + 64) {
    process.stderr.write(`loadgen: ${o.clients} clients need ${o.clients + 64} file descriptors, the limit is ${limit}; raise it (ulimit -n)\n`);
    return 2;
  }
  const g = new LoadGen(o);
  const probe = brokerProbe(o, g);
  if (g.kernel) {
    const fam = g.kernel.resolveL2tpFamily();
    if (fam < 0) {
      process.stderr.write(`loadgen: --kernel: no l2tp generic netlink family (${native.strerror(-fam)}); load l2tp_eth and l2tp_netlink\n`);
      return 2;
    }
  }
  // bounded whatever happens: arrivals + up-timeout + settling + hold + the broker queries (five
  // samples of up to BROKER_SAMPLE_S each) and the teardown wait when there is a broker to ask,
  // the stop wait, and 90 s of slack (a guard shorter than the sum killed runs that were still
  // working, without a result line)
  const brokerS = probe === null ? 0 : 5 * BROKER_SAMPLE_S + TEARDOWN_WAIT_MS / 1000;
  const maxS = (o.rate > 0 ? o.clients / o.rate : 0) + o.upTimeoutS + SETTLE_MS / 1000 + o.settleS + o.durationS +
    brokerS + 90 + (o.stopSignal ? o.stopWaitS : 0);
  const guard = setTimeout(() => {
    say(`still running after ${Math.round(maxS)} s: giving up`);
    process.exit(1);
  }, maxS * 1000);
  guard.unref();

  say(`${o.clients} clients (${o.mode === 'ours' ? 'our client' : 'original client'}, ${o.kernel ? 'kernel tunnels' : 'control only'}), ` +
    `${o.rate > 0 ? `${o.rate}/s` : 'all at once'}, broker ${formatHostPort(o.brokerIp, o.brokerPort)}, ${o.sources.length} source address(es)`);
  // CLOCK_MONOTONIC µs of the phases, to cut a broker CPU profile (node --cpu-prof) into them
  const marks: Record<string, number> = {};
  const before = await sampleBroker(probe);
  // --spread: every client is still ticked every TICK_MS, at its own phase; --deadlines: no
  // shared tick (each client's run() schedules it)
  let slice = 0;
  const ticker = o.deadlines ? null : o.spread
    ? setInterval(() => { g.tickSlice(slice, SPREAD_SLICES); slice = (slice + 1) % SPREAD_SLICES; }, TICK_MS / SPREAD_SLICES)
    : setInterval(() => g.tickAll(), TICK_MS);
  const lag = new LagMonitor(() => g.now());
  // the load generator's own CPU (utime+stime), phase by phase
  const selfCpu = (): CpuSample => ({ at: g.now(), cpu: procCpu(process.pid) });
  let progress: ReturnType<typeof setInterval> | null = null;
  if (o.progressS > 0) {
    progress = setInterval(() => {
      process.stderr.write(`loadgen: ${(g.now() / 1000).toFixed(1)} s: started ${g.started}/${o.clients}, up ${g.upNow}, ` +
        `attempts ${g.opens}, lost ${g.lost}, silent give-ups ${g.silentGiveUps()}, churned ${g.churned}; own loop late by up to ${Math.round(lag.take())} ms\n`);
    }, o.progressS * 1000);
  }

  // arrivals
  marks.start = mono();
  const selfAtStart = selfCpu();
  const t0 = g.now();
  if (o.rate <= 0) for (const s of g.slots) g.start(s);
  else {
    const arrive = setInterval(() => {
      const due = Math.min(o.clients, Math.floor(((g.now() - t0) / 1000) * o.rate) + 1);
      for (let i = g.started; i < due; i++) g.start(g.slots[i]);
      if (g.started >= o.clients) clearInterval(arrive);
    }, 20);
  }
  const upDeadline = t0 + (o.rate > 0 ? (o.clients / o.rate) * 1000 : 0) + o.upTimeoutS * 1000;
  while (g.upNow < o.clients && g.now() < upDeadline) await sleep(50);
  const allUpMs = g.upNow === o.clients ? g.now() - t0 : NaN;
  marks.allUp = mono();
  if (Number.isNaN(allUpMs)) say(`only ${g.upNow} of ${o.clients} tunnels up after ${o.upTimeoutS} s`);
  else say(`all ${o.clients} tunnels up ${(allUpMs / 1000).toFixed(2)} s after the first client started`);
  await sleep(SETTLE_MS);
  const burst = await sampleBroker(probe);
  const selfAtBurstEnd = selfCpu();
  const lagInBurst = lag.max;
  marks.burstEnd = mono();
  if (o.settleS > 0) await sleep(o.settleS * 1000);

  // hold (idle measurement), with churn
  let churnTimer: ReturnType<typeof setInterval> | null = null;
  if (o.churn > 0) {
    churnTimer = setInterval(() => {
      const ups = g.slots.filter((s) => s.up);
      if (ups.length) g.churn(ups[Math.floor(Math.random() * ups.length)]);
    }, 1000 / o.churn);
  }
  const holdStart = await sampleBroker(probe);
  marks.holdStart = mono();
  // the hold's windows: the broker's CPU (/proc only, no SIGUSR1) at each inner boundary, on the
  // probe's clock (a remote probe's is its own)
  const noCpu: CpuSample = { at: 0, cpu: null };
  const windowCpu: CpuSample[] = [holdStart ?? noCpu];
  const selfWindows: CpuSample[] = [selfCpu()];
  lag.take();
  for (let w = 1; w < o.windows; w++) {
    await sleep((o.durationS * 1000) / o.windows);
    windowCpu.push((await sampleBroker(probe, false)) ?? noCpu);
    selfWindows.push(selfCpu());
  }
  if (o.durationS > 0) await sleep((o.durationS * 1000) / o.windows);
  if (churnTimer) clearInterval(churnTimer);
  selfWindows.push(selfCpu());
  const lagInHold = lag.take();
  const selfRssKiB = procRssKiB(process.pid);
  marks.holdEnd = mono();
  const holdEnd = await sampleBroker(probe);
  windowCpu.push(holdEnd ?? noCpu);
  const upAtEnd = g.upNow;

  let afterTeardown: BrokerSample | null = null;
  const stop = o.stopSignal && probe ? await stopBroker(probe, o.stopSignal, o.stopWaitS, g) : null;
  if (o.teardown && !stop) {
    for (const s of g.slots) g.close(s);
    // the broker closes each tunnel on its ERROR 0x11: poll (bounded) until it holds none; without
    // a broker to ask, one second for the ERRORs to leave is all
    const end = g.now() + (probe === null ? 0 : TEARDOWN_WAIT_MS);
    do {
      await sleep(1_000);
      afterTeardown = await sampleBroker(probe);
      // a broker still busy closing may answer SIGUSR1 late: a missed sample is no answer
    } while ((!afterTeardown?.log || afterTeardown.log.tunnels !== 0) && g.now() < end);
  }
  if (ticker) clearInterval(ticker);
  g.stopDeadlines();
  if (progress) clearInterval(progress);
  lag.stop();
  marks.end = mono();

  // report
  const created = (a: BrokerSample | null, b: BrokerSample | null): number | null =>
    a?.log && b?.log ? (b.log.counters['tunnels-created'] ?? 0) - (a.log.counters['tunnels-created'] ?? 0) : null;
  const cpuDelta = (a: BrokerSample | null, b: BrokerSample | null): { self: number; children: number } | null =>
    a?.cpu && b?.cpu ? { self: b.cpu.self - a.cpu.self, children: b.cpu.children - a.cpu.children } : null;
  const burstCreated = created(before, burst);
  const burstCpu = cpuDelta(before, burst);
  const holdMin = holdStart && holdEnd ? (holdEnd.at - holdStart.at) / 60_000 : 0;
  const result = {
    clients: o.clients, mode: o.mode, kernel: o.kernel, rate: o.rate,
    allUpS: Number.isNaN(allUpMs) ? null : allUpMs / 1000,
    neverUp: g.neverUp(), upAtEnd, lost: g.lost, reconnects: g.reconnects, churned: g.churned,
    attempts: g.opens, silentGiveUps: g.silentGiveUps(), sendErrors: g.sendErrors, kernelErrors: g.kernelErrors,
    clientWarnings: g.logs.warning, clientErrors: g.logs.error,
    toldWhileUp: Object.fromEntries(g.told),
    handshakeMs: { p50: percentile(g.handshakeMs, 50), p95: percentile(g.handshakeMs, 95), p99: percentile(g.handshakeMs, 99), max: percentile(g.handshakeMs, 100) },
    timeToUpMs: { p50: percentile(g.timeToUpMs, 50), p95: percentile(g.timeToUpMs, 95), p99: percentile(g.timeToUpMs, 99), max: percentile(g.timeToUpMs, 100) },
    monotonicUs: marks,
    stop,
    // the load generator itself: whether its figures are the broker's or its own limits
    loadgen: {
      arrivalCpuS: selfAtStart.cpu && selfAtBurstEnd.cpu ? selfAtBurstEnd.cpu.self - selfAtStart.cpu.self : null,
      holdCpuPerMinS: cpuPerMinute(selfWindows[0], selfWindows[selfWindows.length - 1]),
      holdWindowsCpuPerMinS: selfWindows.slice(1).map((w, i) => cpuPerMinute(selfWindows[i], w)),
      rssKiB: selfRssKiB,
      maxLagMs: { arrival: Math.round(lagInBurst), hold: Math.round(lagInHold) },
    },
    recoveries: g.recoveries.map((r) => ({ lostAtS: r.lostAt / 1000, allBackAfterS: (r.allBackAt - r.lostAt) / 1000 })),
    broker: probe === null ? null : {
      createdInBurst: burstCreated,
      // by the last sample the broker answered (a swamped broker may miss the later ones)
      createdTotal: created(before, afterTeardown) ?? created(before, holdEnd) ?? burstCreated,
      tunnelsAtEnd: holdEnd?.log?.tunnels ?? null,
      orphans: holdEnd?.log?.tunnels != null ? holdEnd.log.tunnels - upAtEnd : null,
      tunnelsAfterTeardown: afterTeardown?.log?.tunnels ?? null,
      burstCpuS: burstCpu,
      cpuPerCreatedMs: burstCpu && burstCreated ? ((burstCpu.self + burstCpu.children) * 1000) / burstCreated : null,
      // the broker process itself (utime+stime) and the children it reaped (hooks: cutime+cstime)
      cpuPerCreatedOwnMs: burstCpu && burstCreated ? (burstCpu.self * 1000) / burstCreated : null,
      cpuPerCreatedChildrenMs: burstCpu && burstCreated ? (burstCpu.children * 1000) / burstCreated : null,
      holdCpuPerMinS: cpuPerMinute(windowCpu[0], windowCpu[windowCpu.length - 1]),
      // --windows: the same for each part of the hold, in order
      holdWindowsCpuPerMinS: windowCpu.slice(1).map((w, i) => cpuPerMinute(windowCpu[i], w)),
      holdS: holdMin * 60,
      rssKiB: { before: before?.rssKiB ?? null, burst: burst?.rssKiB ?? null, holdEnd: holdEnd?.rssKiB ?? null, afterTeardown: afterTeardown?.rssKiB ?? null },
      fds: { before: before?.fds ?? null, burst: burst?.fds ?? null, holdEnd: holdEnd?.fds ?? null },
      counters: holdEnd?.log?.counters ?? null,
    },
  };
  const b = result.broker;
  say(`time to all up ${result.allUpS === null ? 'never' : `${result.allUpS.toFixed(2)} s`}; never up ${result.neverUp}; ` +
    `lost ${result.lost}, reconnected ${result.reconnects}, churned ${result.churned}; attempts ${result.attempts}, silent give-ups ${result.silentGiveUps}`);
  say(`handshake (attempt that succeeded) p50 ${ms(result.handshakeMs.p50)} p95 ${ms(result.handshakeMs.p95)} p99 ${ms(result.handshakeMs.p99)} max ${ms(result.handshakeMs.max)}; ` +
    `client start to up p50 ${ms(result.timeToUpMs.p50)} p95 ${ms(result.timeToUpMs.p95)} p99 ${ms(result.timeToUpMs.p99)}`);
  if (b) {
    say(`broker: ${b.createdInBurst ?? '?'} tunnels created in the burst, ${b.createdTotal ?? '?'} in all; holds ${b.tunnelsAtEnd ?? '?'} ` +
      `(orphans ${b.orphans ?? '?'}), ${b.tunnelsAfterTeardown ?? '-'} after teardown`);
    say(`broker CPU: burst ${b.burstCpuS ? `${b.burstCpuS.self.toFixed(2)} s + children ${b.burstCpuS.children.toFixed(2)} s` : '?'}, ` +
      `${b.cpuPerCreatedMs?.toFixed(2) ?? '?'} ms per created tunnel; hold ${b.holdCpuPerMinS?.toFixed(3) ?? '?'} s per minute over ${b.holdS.toFixed(0)} s` +
      (o.windows > 1 ? ` (in ${o.windows} parts: ${b.holdWindowsCpuPerMinS.map((v) => v?.toFixed(3) ?? '?').join(', ')} s per minute)` : ''));
    say(`broker RSS KiB: before ${b.rssKiB.before ?? '?'}, after burst ${b.rssKiB.burst ?? '?'}, end of hold ${b.rssKiB.holdEnd ?? '?'}, after teardown ${b.rssKiB.afterTeardown ?? '-'}`);
  }
  const lgs = result.loadgen;
  say(`load generator CPU: arrivals ${lgs.arrivalCpuS?.toFixed(2) ?? '?'} s, hold ${lgs.holdCpuPerMinS?.toFixed(3) ?? '?'} s per minute` +
    (o.windows > 1 ? ` (in ${o.windows} parts: ${lgs.holdWindowsCpuPerMinS.map((v) => v?.toFixed(3) ?? '?').join(', ')})` : '') +
    `; RSS ${lgs.rssKiB ?? '?'} KiB; own event loop late by up to ${lgs.maxLagMs.arrival} ms (arrivals), ${lgs.maxLagMs.hold} ms (hold)`);
  if (stop) {
    say(`broker ${stop.signal}: ${stop.exitAfterS === null ? `still running after ${o.stopWaitS} s` : `exited after ${stop.exitAfterS.toFixed(1)} s`}; ` +
      `${stop.told} of ${stop.upWhenStopped} clients up were told (ERROR); at most ${stop.maxChildren} child processes, ` +
      `RSS at most ${stop.maxRssKiB ?? '?'} KiB`);
  }
  process.stdout.write(`LOADGEN-RESULT ${JSON.stringify(result)}\n`);
  return result.neverUp > 0 ? 1 : 0;
}

/** --stop-broker: signal the broker and have the probe watch it until it is gone; the clients
 *  keep running meanwhile, so an ERROR it sends while closing counts as told. */
async function stopBroker(probe: BrokerProbe, signal: 'SIGTERM' | 'SIGKILL', waitS: number, g: LoadGen) {
  const toldSum = (): number => [...g.told.values()].reduce((a, x) => a + x, 0);
  const told0 = toldSum();
  const upWhenStopped = g.upNow;
  const lostBeforeStop = g.lost;
  let w: StopWatch = { exitAfterS: null, maxChildren: 0, maxRssKiB: null };
  try {
    w = await probe.stop(signal, waitS);
  } catch (e) {
    say(`${probe.label}: the stop was not watched (${e instanceof Error ? e.message : String(e)})`);
  }
  // ERRORs still in flight or in the sockets' queues
  await sleep(1_000);
  return { signal, ...w, told: toldSum() - told0, upWhenStopped, lostBeforeStop };
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`loadgen: internal error: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
