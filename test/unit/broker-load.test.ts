// The broker under load (issue 6): every tunnel's keepalive, probe and timeout fire at their
// time with many tunnels, the work per timer event and per datagram does not grow with the
// number of tunnels (counted calls, not time), keepalives of tunnels created together stay
// spread, and a shutdown with 100 tunnels tells every client and runs every hook at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../../src/native.js';
import type { Action, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore, TIMER_SLACK_MS } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { BrokerTunnel } from '../../src/broker/tunnel.js';
import * as m from '../../src/protocol/messages.js';
import { DEFAULT_MAX_RUNNING } from '../../src/broker/job-runner.js';
import { CFG, ERRNO, handshake, rig } from './broker-fakes.js';

const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const T0 = 1_000_000;

function config(over: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels: 5000, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: false,
    hooks: { sessionUp: '', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' },
    ...over,
  };
}

/** A core with n tunnels created at T0 (deterministic jitter); returns it and the endpoints. */
function fleet(n: number, over: Partial<BrokerConfig> = {}): { b: BrokerCore; eps: Endpoint[] } {
  let seed = 42;
  const b = new BrokerCore(config(over), {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0,
    random: () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000), errno: ERRNO,
    tcPath: '/usr/sbin/tc',
  });
  const eps: Endpoint[] = [];
  for (let i = 0; i < n; i++) {
    const ep = { ip: `198.51.100.${1 + (i % 250)}`, port: 10_000 + i };
    const reply = b.datagram(LISTENER, m.encodeCookieRequest(), ep, T0).find((a) => a.type === 'send') as { data: Uint8Array };
    const cookie = m.decodeCookieReply((m.parseFrame(reply.data) as m.Frame).payload)!;
    const out = b.datagram(LISTENER, m.encodePrepare(cookie, m.utf8Encode(`u${i}`), 1, 1), ep, T0);
    const setup = out.find((a) => a.type === 'setup') as Action & { type: 'setup' };
    b.setupResult(setup.setup.tunnelId, { ok: true }, T0);
    eps.push(ep);
  }
  return { b, eps };
}

/** Counts calls of BrokerTunnel methods while fn runs. */
function countTunnelCalls<T>(fn: () => T): { result: T; calls: Record<string, number> } {
  const calls: Record<string, number> = {};
  const proto = BrokerTunnel.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const names = ['tick', 'nextDeadline', 'handle'];
  const saved = names.map((n) => proto[n]);
  names.forEach((n, i) => {
    proto[n] = function (this: unknown, ...a: unknown[]) {
      calls[n] = (calls[n] ?? 0) + 1;
      return saved[i].apply(this, a);
    };
  });
  try {
    return { result: fn(), calls };
  } finally {
    names.forEach((n, i) => { proto[n] = saved[i]; });
  }
}

/** Drives the core the way the driver does: tick at each next deadline until `end`; client
 *  keepalives every 5 s from `alive` endpoints. Returns every send action with its time. */
function drive(b: BrokerCore, eps: Endpoint[], end: number, alive: (i: number) => boolean): { t: number; a: Action & { type: 'send' } }[] {
  const sent: { t: number; a: Action & { type: 'send' } }[] = [];
  let nextClient = T0 + 5000;
  for (let t = T0; t <= end;) {
    if (t >= nextClient) {
      eps.forEach((ep, i) => {
        if (alive(i)) b.datagram({ kind: 'tunnel', tunnelId: 100 + i }, m.encodeClientKeepalive(1), ep, t);
      });
      nextClient += 5000;
    }
    for (const a of b.tick(t)) if (a.type === 'send') sent.push({ t, a });
    t = Math.min(b.nextDeadline(), nextClient);
  }
  return sent;
}

test('1,000 tunnels: each one keeps alive every 5 s from 1-5 s after TUNNEL, probes once a second, times out at 120-125 s ' +
  '(never late, at most TIMER_SLACK_MS early, no drift)', () => {
  const N = 1000;
  const { b, eps } = fleet(N);
  // tunnels 0-499 have live clients, 500-999 go silent
  const sent = drive(b, eps, T0 + 130_000, (i) => i < 500);
  const perTunnel = new Map<number, { ka: number[]; probes: number[]; error?: number }>();
  for (const { t, a } of sent) {
    if (a.socket.kind !== 'tunnel') continue;
    const rec = perTunnel.get(a.socket.tunnelId) ?? { ka: [], probes: [] };
    perTunnel.set(a.socket.tunnelId, rec);
    if (a.data[4] === 0x05) rec.ka.push(t - T0);
    else if (a.data[4] === 0x06) rec.probes.push(t - T0);
    else if (a.data[4] === 0x03) rec.error = t - T0;
  }
  assert.is(perTunnel.size, N);
  for (const [tid, rec] of perTunnel) {
    const i = tid - 100;
    const W = TIMER_SLACK_MS;
    const first = rec.ka[0];
    assert.ok(first >= 1000 - W && first < 5000, `tunnel ${tid}: first keepalive at ${first}`);
    // the k-th keepalive is due exactly k x 5 s after the first one's due time
    for (let k = 1; k < rec.ka.length; k++) {
      const off = rec.ka[k] - first - k * 5000;
      assert.ok(off >= -W && off <= W, `tunnel ${tid} keepalive ${k}: ${off} ms off schedule`);
    }
    assert.is(rec.probes.length, 24, `tunnel ${tid} probes`);
    rec.probes.forEach((p, k) => assert.ok(Math.abs(p - rec.probes[0] - k * 1000) <= W, `tunnel ${tid} probe ${k} at ${p}`));
    if (i < 500) {
      assert.is(rec.error, undefined, `tunnel ${tid} with a live client closed`);
    } else {
      assert.ok(rec.error !== undefined && rec.error > 120_000 && rec.error <= 125_000, `tunnel ${tid} timeout at ${rec.error}`);
    }
  }
  assert.is(b.tunnelCount, 500);
  assert.is(b.counters.get('tunnels-timed-out'), 500);
});

test('keepalives of tunnels created together stay spread over the 5 s interval', () => {
  const N = 1000;
  const { b, eps } = fleet(N);
  const sent = drive(b, eps, T0 + 60_000, () => true);
  const perSecond = new Map<number, number>();
  for (const { t, a } of sent) {
    if (a.data[4] !== 0x05 || t < T0 + 10_000) continue;
    const s = Math.floor((t - T0) / 1000);
    perSecond.set(s, (perSecond.get(s) ?? 0) + 1);
  }
  // 1,000 keepalives per 5 s: 200 per second on average; no second has more than twice that
  const counts = [...perSecond.values()];
  assert.is(counts.reduce((x, y) => x + y, 0), N * 10);
  assert.ok(Math.max(...counts) <= 400, `busiest second: ${Math.max(...counts)}`);
  assert.ok(Math.min(...counts) >= 100, `quietest second: ${Math.min(...counts)}`);
});

test('work per timer event and per datagram does not grow with the number of tunnels (counted calls)', () => {
  const measure = (n: number): { perDue: number; perDatagram: number; perDeadline: number } => {
    const { b, eps } = fleet(n);
    // settle: past the first keepalives and probes
    drive(b, eps, T0 + 20_000, () => true);
    // timer events: tick at each deadline for 10 s; tunnel method calls per due tunnel
    let due = 0;
    let t = b.nextDeadline();
    const { calls } = countTunnelCalls(() => {
      for (const end = t + 10_000; t < end; t = b.nextDeadline()) {
        const out = b.tick(t);
        due += out.filter((a) => a.type === 'send').length;
      }
    });
    // datagrams: one keepalive from every client
    const dg = countTunnelCalls(() => eps.forEach((ep, i) => b.datagram({ kind: 'tunnel', tunnelId: 100 + i }, m.encodeClientKeepalive(2), ep, t)));
    const nd = countTunnelCalls(() => { for (let k = 0; k < 100; k++) b.nextDeadline(); });
    const total = (c: Record<string, number>): number => Object.values(c).reduce((x, y) => x + y, 0);
    return { perDue: total(calls) / due, perDatagram: total(dg.calls) / n, perDeadline: total(nd.calls) / 100 };
  };
  const small = measure(10);
  const large = measure(2000);
  // a due event costs a tick and a couple of deadline look-ups, whatever the fleet size
  assert.ok(large.perDue <= small.perDue * 1.5 + 0.5, `per due event: ${small.perDue} with 10 tunnels, ${large.perDue} with 2000`);
  assert.ok(large.perDue < 4, `per due event: ${large.perDue}`);
  assert.ok(large.perDatagram <= 2, `per datagram: ${large.perDatagram}`);
  assert.is(large.perDeadline, 0, 'nextDeadline() looks at no tunnel');
});

test('shutdown with 100 tunnels: every client told and every hook started at once, done when the hooks are', () => {
  const r = rig({ ...CFG, ports: [8942], maxTunnels: 200 });
  r.driver.openListeners();
  for (let i = 0; i < 100; i++) handshake(r, { ip: `198.51.100.${10 + (i % 200)}`, port: 20_000 + i }, `u${i}`);
  assert.is(r.core.tunnelCount, 100);
  r.loop.advance(1000);
  const sentBefore = r.native.sent.length;
  const spawnsBefore = r.native.calls.filter((c) => c.startsWith('spawn')).length;
  const start = r.loop.t;
  let doneAt = -1;
  // the kernel calls come only after every client was told (nothing slow before an ERROR)
  let sentAtDelete = -1;
  const del = r.kernel.deleteTunnels.bind(r.kernel);
  r.kernel.deleteTunnels = (ids) => { sentAtDelete = r.native.sent.length - sentBefore; return del(ids); };
  r.kernel.listedAfterDelete = 3;
  r.driver.shutdown(65_000, (clean) => { assert.ok(clean); doneAt = r.loop.t; });
  assert.is(sentAtDelete, 100);
  const errors = r.native.sent.slice(sentBefore).filter((s) => s.hex.startsWith('80 73 a7 01 03 01 02'));
  assert.is(errors.length, 100, 'every client got ERROR 02 in the same turn');
  // the kernel teardown is pipelined: one deleteTunnels call for all 100, no SESSION_DELETE
  assert.equal(r.kernel.calls.filter((c) => c.startsWith('delete')).map((c) => c.split(',').length), [100]);
  // every tunnel's pre-down hook is queued at once (one queue per tunnel); the job runner starts
  // as many as its global cap allows (hooks.max_concurrent, default 32) right away
  const cap = Math.min(100, DEFAULT_MAX_RUNNING);
  assert.is(r.native.calls.filter((c) => c.startsWith('spawn /predown')).length, cap);
  r.loop.advance(10_000);
  assert.is(r.native.calls.filter((c) => c.startsWith('spawn')).length - spawnsBefore, 200);
  // per tunnel: pre-down exited before its down started; never more than the cap at once
  const kids = [...r.native.children.values()];
  const preDownEnd = new Map(kids.filter((c) => c.path === '/predown').map((c) => [c.args[0], c.exitAt]));
  for (const c of kids.filter((k) => k.path === '/down')) assert.ok(c.startedAt >= preDownEnd.get(c.args[0])!, `tunnel ${c.args[0]}`);
  assert.is(r.jobs.peakRunning, cap);
  // hooks take 200 ms each: 200 of them, `cap` at a time, done after about 200/cap x 0.2 s, not
  // after 200 x 0.2 s
  const bound = Math.ceil(200 / cap) * 200 + 500;
  assert.ok(doneAt > 0 && doneAt - start <= bound, `done after ${doneAt - start} ms (bound ${bound})`);
});

test.run();
