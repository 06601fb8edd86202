// Keepalives sent through the listener (docs/performance.md "Keepalives in one batch"): every
// tunnel still keeps alive every 5 s (within the timer slack), the keepalives of one tick (the
// timer's, or a read's with the deadlines due before the next read) are consecutive actions,
// and the driver sends them in one batch on the listener of the tunnels' address and port, each
// to its tunnel's client, with the bytes the tunnel socket would send. A wildcard listener keeps
// the tunnel sockets. The batch sender is a test double here; the addon's sendBatchTo is tested
// on loopback in datagram-batch.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../../src/native.js';
import type { Action, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore, TIMER_SLACK_MS } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { DatagramBatch, HandedDatagramReader } from '../../src/runtime/datagram-batch.js';
import { formatIpv6 } from '../../src/ip-text.js';
import * as m from '../../src/protocol/messages.js';
import { CFG, ERRNO, rig } from './broker-fakes.js';

const hex = (d: Uint8Array): string => Array.from(d, (x) => x.toString(16).padStart(2, '0')).join(' ');
const isKeepalive = (h: string): boolean => h.startsWith('80 73 a7 01 05 02');

test('100 tunnels created at random times: each keeps alive every 5 s (± slack), a tick\'s keepalives consecutive and last', () => {
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const cfg: BrokerConfig = { ...CFG, maxTunnels: 200, verbosity: 'info', hooks: { ...CFG.hooks, sessionUp: '', sessionPreDown: '', sessionDown: '' } };
  const b = new BrokerCore(cfg, {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0, random, errno: ERRNO, tcPath: '/usr/sbin/tc',
  });
  const listener: SocketRef = { kind: 'listener', port: 8942 };
  const T0 = 1_000_123;
  const created = new Map<number, number>();
  const eps: Endpoint[] = [];
  let t = T0;
  const perTunnel = new Map<number, number[]>();
  const tickTimes = new Set<number>();
  const run = (now: number, out: Action[]): void => {
    let inKeepalives = false;
    let done = false;
    for (const a of out) {
      const ka = a.type === 'send' && a.data[4] === 0x05;
      if (ka) {
        assert.ok(!done, `keepalives of the tick at ${now} are consecutive actions`);
        assert.ok(a.shared === true, 'a keepalive may go through the listener');
        const id = (a.socket as { tunnelId: number }).tunnelId;
        perTunnel.set(id, [...(perTunnel.get(id) ?? []), now]);
        tickTimes.add(now);
        inKeepalives = true;
      } else if (inKeepalives && a.type !== 'log') {
        done = true;
      }
    }
  };
  const end = T0 + 70_000;
  while (t <= end) {
    // one new client every ~100 ms during the first 10 s
    if (eps.length < 100 && t >= T0 + eps.length * 100) {
      const ep = { ip: `198.51.100.${10 + (eps.length % 50)}`, port: 20_000 + eps.length };
      const reply = b.datagram(listener, m.encodeCookieRequest(), ep, t).find((a) => a.type === 'send') as { data: Uint8Array };
      const cookie = m.decodeCookieReply((m.parseFrame(reply.data) as m.Frame).payload)!;
      const setup = b.datagram(listener, m.encodePrepare(cookie, m.utf8Encode(`u${eps.length}`), 1, 1), ep, t).find((a) => a.type === 'setup') as Action & { type: 'setup' };
      run(t, b.setupResult(setup.setup.tunnelId, { ok: true }, t));
      created.set(setup.setup.tunnelId, t);
      eps.push(ep);
    }
    // the clients keep alive every 5 s (after the first 10 s, all at once)
    if (t >= T0 + 10_000 && (t - T0) % 5000 < 1) {
      eps.forEach((ep, i) => b.datagram({ kind: 'tunnel', tunnelId: 100 + i }, m.encodeClientKeepalive(1), ep, t));
    }
    run(t, b.tick(t));
    const nextArrival = eps.length < 100 ? T0 + eps.length * 100 : Infinity;
    const nextClient = T0 + 10_000 + Math.ceil((t + 1 - T0 - 10_000) / 5000) * 5000;
    t = Math.min(b.nextDeadline(), nextArrival, Math.max(nextClient, T0 + 10_000));
  }
  assert.is(perTunnel.size, 100);
  const W = TIMER_SLACK_MS;
  for (const [id, times] of perTunnel) {
    const first = times[0] - created.get(id)!;
    assert.ok(first >= 1000 - W && first <= 5000 + W, `tunnel ${id}: first keepalive ${first} ms after TUNNEL`);
    for (let k = 1; k < times.length; k++) {
      const gap = times[k] - times[k - 1];
      assert.ok(gap >= 5000 - W && gap <= 5000 + W, `tunnel ${id}: keepalive ${k} ${gap} ms after the one before`);
    }
    assert.ok(times.length >= 12, `tunnel ${id}: ${times.length} keepalives in 70 s`);
  }
  const sends = [...perTunnel.values()].flat().filter((x) => x >= T0 + 20_000 && x < T0 + 60_000).length;
  assert.ok(sends >= 100 * 8 - 100 && sends <= 100 * 8 + 100, `${sends} keepalives in 40 s`);
});

/** DatagramBatch.push records IPv4 sources only; this one keeps every source (IPv6 too). */
class SourcedBatch extends DatagramBatch {
  private readonly from: ({ ip: string; port: number } | undefined)[] = [];
  override push(fd: number, data: Uint8Array | number, from?: { ip: string; port: number }): boolean {
    this.from[this.count] = from;
    return super.push(fd, data, from);
  }
  private v6(i: number): boolean {
    return this.from[i]?.ip.includes(':') ?? false;
  }
  override family(i: number): number { return this.v6(i) ? 6 : super.family(i); }
  override port(i: number): number { return this.v6(i) ? this.from[i]!.port : super.port(i); }
  override ip(i: number): string { return this.v6(i) ? this.from[i]!.ip : super.ip(i); }
  override ipv4(i: number): number { return this.v6(i) ? NaN : super.ipv4(i); }
}

/** A reader that sends batches, with destinations too, recorded next to the native's sends. */
class BatchSender extends HandedDatagramReader {
  batches: { fd: number; n: number; to?: string[] }[] = [];
  /** Result of sendBatchTo (undefined: all sent). */
  failTo: number | undefined;
  /** As the addon's deferring reader: tunnel sockets read at most every deferMs. */
  deferMs = 0;
  constructor(private readonly record: (fd: number, d: Uint8Array, to?: string) => void) {
    super(new SourcedBatch(new Uint8Array(16 * 2048), new Int32Array(16 * 8), 2048));
  }
  sendBatch(fd: number, datagrams: readonly Uint8Array[]): number {
    this.batches.push({ fd, n: datagrams.length });
    for (const d of datagrams) this.record(fd, d);
    return datagrams.length;
  }
  sendBatchTo(fd: number, datagrams: readonly Uint8Array[], dests: readonly Uint8Array[]): number {
    const to = dests.slice(0, datagrams.length).map(unpack);
    this.batches.push({ fd, n: datagrams.length, to });
    if (this.failTo !== undefined) return this.failTo;
    datagrams.forEach((d, i) => this.record(fd, d, to[i]));
    return datagrams.length;
  }
}

/** A packed destination as "ip:port" / "[ip]:port", as FakeNative.sendTo records it. */
function unpack(d: Uint8Array): string {
  const port = (d[2] << 8) | d[3];
  return d[0] === 4 ? `${Array.from(d.subarray(4, 8)).join('.')}:${port}` : `[${formatIpv6(d.subarray(4, 20))}]:${port}`;
}

const LISTENER_FD = 10;

/** A driver with the batch sender, `n` tunnels up on listener fd 10 (port 8942). */
function batchRig(address: string, clients: Endpoint[], opts: { deferMs?: number; spacingMs?: number; pmtu?: number } = {}) {
  const box: { rec?: (fd: number, d: Uint8Array, to?: string) => void } = {};
  const reader = new BatchSender((fd, d, to) => box.rec!(fd, d, to));
  const r = rig({ ...CFG, address, pmtu: opts.pmtu ?? CFG.pmtu, hooks: { ...CFG.hooks, sessionUp: '', sessionPreDown: '', sessionDown: '' } }, { reader });
  box.rec = (fd, d, to) => r.native.sent.push(to === undefined ? { fd, hex: hex(d) } : { fd, hex: hex(d), to });
  reader.deferMs = opts.deferMs ?? 0;
  r.driver.openListeners();
  for (const [i, c] of clients.entries()) {
    if (i > 0 && opts.spacingMs) r.loop.advance(opts.spacingMs);
    reader.turn([[LISTENER_FD, m.encodeCookieRequest(), c]]);
    const cookie = Uint8Array.from(r.native.sent.at(-1)!.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
    reader.turn([[LISTENER_FD, m.encodePrepare(cookie, m.utf8Encode(`uuid-${i}`), 1, 1), c]]);
  }
  assert.is(r.core.tunnelCount, clients.length);
  return { ...r, reader };
}

const V4: Endpoint[] = [0, 1, 2].map((i) => ({ ip: `198.51.100.${7 + i}`, port: 40_000 + i }));

test('the keepalives of one tick go out in one batch on the listener, each to its client, the bytes the tunnel socket would send', () => {
  const r = batchRig('203.0.113.1', V4);
  const before = r.native.sent.length;
  r.loop.advance(6000);
  const kas = r.native.sent.slice(before).filter((s) => isKeepalive(s.hex));
  // random 0.5 (the rig): every tunnel's first keepalive is due 3 s after TUNNEL, one grid point
  const byTo = (a: { to?: string }, b: { to?: string }): number => (a.to! < b.to! ? -1 : 1);
  assert.equal(kas.sort(byTo), V4.map((c) => ({ fd: LISTENER_FD, hex: hex(m.encodeBrokerKeepalive(0)), to: `${c.ip}:${c.port}` })));
  const batches = r.reader.batches.filter((b) => b.to);
  assert.equal(batches.map((b) => ({ ...b, to: b.to!.sort() })), [{ fd: LISTENER_FD, n: 3, to: V4.map((c) => `${c.ip}:${c.port}`) }]);
  // the next one 5 s later, seq 1, again one batch
  r.loop.advance(5000);
  assert.equal(r.native.sent.slice(before).filter((s) => isKeepalive(s.hex)).length, 6);
  assert.equal(r.reader.batches.filter((b) => b.to).length, 2);
  assert.ok(r.native.sent.slice(before).filter((s) => isKeepalive(s.hex)).slice(3).every((s) => s.hex === hex(m.encodeBrokerKeepalive(1))));
  // the broker's own PMTU probes stay on the tunnel sockets (IP_PMTUDISC_PROBE is set there)
  const probes = r.native.sent.filter((s) => s.hex.startsWith('80 73 a7 01 06 00'));
  assert.ok(probes.length > 0 && probes.every((s) => s.fd >= 12 && s.to === undefined), JSON.stringify(probes.slice(0, 3)));
});

test('the answers of one read (probe ACKs, PMTU_NTFY, REL_ACK) of many tunnels go out in one batch on the listener, in order', () => {
  const r = batchRig('203.0.113.1', V4);
  const n0 = r.native.sent.length;
  const b0 = r.reader.batches.length;
  // a PMTU round of two clients (the six probe sizes of our client and the original's), all
  // read at once (the test batch holds 16), then a reliable message from the third
  const sizes = [1334, 1400, 1450, 1476, 1492, 1500];
  const items: [number, Uint8Array, Endpoint][] = [];
  V4.slice(0, 2).forEach((c, i) => { for (const size of sizes) items.push([12 + i, m.encodePmtuProbe(size), c]); });
  items.push([14, m.encodeLimitBandwidthDown(1, 1000), V4[2]]);
  r.reader.turn(items);
  const want = [
    ...V4.slice(0, 2).flatMap((c) => sizes.map((size) => ({ fd: LISTENER_FD, hex: hex(m.encodePmtuAck(size - 28)), to: `${c.ip}:${c.port}` }))),
  ];
  const sent = r.native.sent.slice(n0);
  assert.equal(sent.slice(0, 12), want, 'every ACK with the probe\'s length, to its own client, through the listener');
  const relAck = sent.find((s) => s.hex.startsWith('80 73 a7 01 08'));
  assert.ok(relAck && relAck.fd === LISTENER_FD && relAck.to === `${V4[2].ip}:${V4[2].port}`, JSON.stringify(sent.slice(12)));
  const batches = r.reader.batches.slice(b0);
  assert.is(batches[0].fd, LISTENER_FD);
  assert.ok(batches[0].n >= 13, `one sendmmsg for the 12 ACKs and the REL_ACK (${JSON.stringify(batches.map((b) => [b.fd, b.n]))})`);
});

test('a fixed MTU: the PMTU_NTFY that answers each probe goes through the listener as well', () => {
  const r = batchRig('203.0.113.1', V4.slice(0, 2), { pmtu: 1400 });
  const n0 = r.native.sent.length;
  r.reader.turn([[12, m.encodePmtuProbe(1400), V4[0]], [13, m.encodePmtuProbe(1400), V4[1]]]);
  assert.equal(r.native.sent.slice(n0), V4.slice(0, 2).map((c) => ({ fd: LISTENER_FD, hex: hex(m.encodePmtuNotify(1400)), to: `${c.ip}:${c.port}` })));
});

test('a deferring reader: the keepalives due before the next read go out in the read, in one batch, though their deadlines differ', () => {
  // tunnels 100 ms apart: deadlines 100 ms apart, all within the 500 ms before the next read
  // (a fixed MTU: no probes, the first deadline is each tunnel's first keepalive)
  const r = batchRig('203.0.113.1', V4, { deferMs: 500, spacingMs: 100, pmtu: 1400 });
  const first = r.core.nextDeadline();
  r.loop.advance(first - 50 - r.loop.t); // before any deadline: the timer has not fired
  assert.equal(r.reader.batches.filter((b) => b.to), []);
  const tunnelFd = 12;
  r.reader.turn([[tunnelFd, m.encodeClientKeepalive(1), V4[0]]]);
  const batches = r.reader.batches.filter((b) => b.to).map((b) => ({ ...b, to: b.to!.sort() }));
  assert.equal(batches, [{ fd: LISTENER_FD, n: 3, to: V4.map((c) => `${c.ip}:${c.port}`) }], 'one sendmmsg for the three');
  const before = r.native.sent.length;
  r.loop.advance(600);
  assert.not.ok(r.native.sent.slice(before).some((s) => isKeepalive(s.hex)), 'none sent twice at its deadline');
});

test('over IPv6: the same batch on the IPv6 listener, to the IPv6 clients', () => {
  const v6: Endpoint[] = [1, 2].map((i) => ({ ip: `2001:db8:${i}::7`, port: 41_000 + i, family: 6 as const }));
  const r = batchRig('2001:db8::1', v6);
  r.loop.advance(6000);
  const batches = r.reader.batches.filter((b) => b.to).map((b) => ({ ...b, to: b.to!.sort() }));
  assert.equal(batches, [{ fd: LISTENER_FD, n: 2, to: v6.map((c) => `[${c.ip}]:${c.port}`) }]);
});

test('a wildcard listener (0.0.0.0) keeps each keepalive on its tunnel socket: the source is fixed there at connect', () => {
  const r = batchRig('0.0.0.0', V4);
  const before = r.native.sent.length;
  r.loop.advance(6000);
  const kas = r.native.sent.slice(before).filter((s) => isKeepalive(s.hex));
  assert.is(kas.length, 3);
  assert.ok(kas.every((s) => s.fd !== LISTENER_FD && s.to === undefined), JSON.stringify(kas));
  assert.is(new Set(kas.map((s) => s.fd)).size, 3);
  assert.equal(r.reader.batches.filter((b) => b.to), []);
});

test('a failed batch: each keepalive is sent alone to its client, a failure counts as its tunnel\'s socket error', () => {
  const r = batchRig('203.0.113.1', V4);
  r.reader.failTo = -ERRNO.ENETUNREACH;
  const sendTo = r.native.sendTo.bind(r.native);
  r.native.sendTo = (fd, data, ip, port) => (port === V4[1].port ? -ERRNO.ENETUNREACH : sendTo(fd, data, ip, port));
  const before = r.native.sent.length;
  r.loop.advance(3500);
  const kas = r.native.sent.slice(before).filter((s) => isKeepalive(s.hex));
  assert.equal(kas.map((s) => [s.fd, s.to]).sort(), [[LISTENER_FD, `${V4[0].ip}:${V4[0].port}`], [LISTENER_FD, `${V4[2].ip}:${V4[2].port}`]]);
  assert.is(r.core.counters.get('tunnel-socket-errors'), 1, 'the second tunnel\'s error');
});

test.run();
