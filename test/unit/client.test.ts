// Client core (context state machine + main loop) driven with the byte rows of spec §3.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Action } from '../../src/client/actions.js';
import { Client, STABLE_UP_MS } from '../../src/client/client.js';
import type { Options } from '../../src/client/options.js';
import { backoffDelay, chooseBroker } from '../../src/client/selection.js';
import { timers } from '../../src/protocol/constants.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const R = {
  usageReq: '80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01',
  usage255: '80 73 a7 01 0a 02 00 ff 00 00 00 00',
  cookieReq: '80 73 a7 01 01 08 58 58 58 58 58 58 58 58',
  cookie: '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b',
  prepare: '80 73 a7 01 02 17 00 03 79 24 fb c7 02 4b 06 66 6f 6f 62 61 72 00 00 00 01 00 00 00 01',
  tunnel: '80 73 a7 01 04 08 00 00 00 64 00 00 00 01',
  tunnelLegacy: '80 73 a7 01 04 04 00 00 00 64 00 00',
  refused: '80 73 a7 01 03 00 00 00 00 00 00 00',
  limit: '80 73 a7 01 80 08 00 00 01 04 00 00 04 00',
  relAck0: '80 73 a7 01 08 02 00 00 00 00 00 00',
  keepalive0: '80 73 a7 01 05 04 00 00 00 00 00 00',
  brokerKeepalive: '80 73 a7 01 05 02 00 00 00 00 00 00',
  ack1472: '80 73 a7 01 07 02 05 c0 00 00 00 00',
  ntfy1446: '80 73 a7 01 09 02 05 a6 00 00 00 00',
  ntfy1400: '80 73 a7 01 09 02 05 78 00 00 00 00',
  errShutdown: '80 73 a7 01 03 01 11 00 00 00 00 00',
  errBrokerTimeout: '80 73 a7 01 03 01 03 00 00 00 00 00',
  errReplyOther: '80 73 a7 01 03 01 10 00 00 00 00 00',
};
const probe = (ipSize: number): Uint8Array => {
  const p = new Uint8Array(ipSize - 28);
  p.set(hex('80 73 a7 01 06 00'));
  return p;
};
const ackFor = (udpLen: number): Uint8Array => Uint8Array.of(0x80, 0x73, 0xa7, 1, 7, 2, udpLen >> 8, udpLen & 0xff, 0, 0, 0, 0);
const ntfy = (mtu: number): Uint8Array => Uint8Array.of(0x80, 0x73, 0xa7, 1, 9, 2, mtu >> 8, mtu & 0xff, 0, 0, 0, 0);

function options(o: Partial<Options> = {}): Options {
  return {
    uuid: 'foobar', bindIp: null, brokers: [{ host: '203.0.113.1', port: '8942' }], ifname: 'l2tp0',
    bindDevice: null, hook: '/etc/td-hook', mtuHook: true, tunnelId: 1, limitKbps: 1024, selection: 'first', foreground: false, ...o,
  };
}

/** Client + clock + record of actions. */
class H {
  c: Client;
  now = 0;
  all: Action[] = [];
  constructor(o: Partial<Options> = {}, random: () => number = () => 0.5) {
    this.c = new Client(options(o), random);
  }
  /** connects fail with this error (null: they succeed) */
  connectError: string | null = null;
  /** Records actions; 'connect' completes at once as the driver does (connectError). */
  rec(a: Action[]): Action[] {
    const all = [...a];
    for (let i = 0; i < all.length; i++) {
      const x = all[i];
      if (x.a === 'connect') all.push(...this.c.connected(x.b, x.gen, x.fam, this.connectError, this.now));
    }
    this.all.push(...all);
    return all;
  }
  start(): Action[] {
    return this.rec(this.c.start(this.now));
  }
  at(t: number): Action[] {
    this.now = t;
    return this.rec(this.c.tick(t));
  }
  /** Runs the core up to t as the driver does: one tick at each nextDeadline(), returning all
   *  actions. Every tick must move the deadline past now (else the driver would spin). */
  until(t: number): Action[] {
    const out: Action[] = [];
    for (let d = this.c.nextDeadline(); d <= t; d = this.c.nextDeadline()) {
      assert.ok(d >= this.now, `deadline ${d} in the past (now ${this.now})`);
      out.push(...this.at(d));
      assert.ok(this.c.nextDeadline() > d, `deadline did not move past ${d}`);
    }
    this.now = t;
    return out;
  }
  feed(b: number, row: string | Uint8Array): Action[] {
    return this.rec(this.c.feed(b, typeof row === 'string' ? hex(row) : row, this.now));
  }
  opened(b: number, ok = true): Action[] {
    const gen = this.c.ctxs[b].gen;
    return this.rec(this.c.opened(b, gen, ok ? [{ ip: `203.0.113.${b + 1}`, port: 8942 }] : 'cannot resolve x: Name does not resolve', this.now));
  }
  /** Start → selected broker b up (features per the TUNNEL row). */
  up(tunnelRow = R.tunnel, b = 0): Action[] {
    if (this.c.phase === 'idle') this.start();
    for (let i = 0; i < this.c.ctxs.length; i++) this.opened(i);
    this.feed(b, R.usage255);
    this.feed(b, R.cookie);
    const setup = this.feed(b, tunnelRow);
    assert.is(setup.filter((x) => x.a === 'setup').length, 1);
    return this.rec(this.c.setupDone(b, null, this.now));
  }
}

const sends = (a: Action[], b?: number): string[] =>
  a.flatMap((x) => (x.a === 'send' && (b === undefined || x.b === b) ? [toHex(x.data)] : []));
const of = <K extends Action['a']>(a: Action[], k: K): Extract<Action, { a: K }>[] =>
  a.filter((x): x is Extract<Action, { a: K }> => x.a === k);
const logs = (a: Action[]): string[] => of(a, 'log').map((x) => `${x.level}: ${x.msg}`);

test('handshake sends spec rows 1, 3, 5 and sets up the kernel with unique session ids', () => {
  const h = new H();
  const start = h.start();
  assert.equal(of(start, 'teardown'), [{ a: 'teardown', tunnelId: 1, sessionIds: [1], ifname: 'l2tp0' }]);
  assert.equal(of(start, 'open'), [{ a: 'open', b: 0, gen: 1, host: '203.0.113.1', port: '8942' }]);
  assert.equal(sends(h.opened(0)), [R.usageReq]);
  // 'first' selection: the broker is chosen as soon as it answers
  const sel = h.feed(0, R.usage255);
  assert.is(h.c.phase, 'selected');
  assert.equal(sends(sel), [R.cookieReq]);
  assert.ok(logs(sel).some((l) => l.includes('broker 203.0.113.1:8942: selected (usage 255/65535')));
  assert.equal(sends(h.feed(0, R.cookie)), [R.prepare]);
  const setup = h.feed(0, R.tunnel);
  assert.equal(of(setup, 'setup'), [{ a: 'setup', b: 0, fam: 4, tunnelId: 1, peerTunnelId: 100, sessionId: 1, peerSessionId: 100, ifname: 'l2tp0' }]);
  const up = h.rec(h.c.setupDone(0, null, h.now));
  assert.equal(of(up, 'hook'), [{ a: 'hook', path: '/etc/td-hook', args: ['session.up', 'l2tp0'] }]);
  assert.equal(sends(up), [R.limit]);
  assert.is(h.c.ctxs[0].state, 'up');
  h.at(1);
  assert.is(h.c.phase, 'up');
});

test('session ids: -t 5 with features → 5/100; without features word → 1/1', () => {
  const a = new H({ tunnelId: 5 });
  a.start();
  a.opened(0);
  a.feed(0, R.usage255);
  a.feed(0, R.cookie);
  const s = of(a.feed(0, R.tunnel), 'setup')[0];
  assert.equal([s.tunnelId, s.peerTunnelId, s.sessionId, s.peerSessionId], [5, 100, 5, 100]);
  const b = new H({ tunnelId: 5 });
  b.start();
  b.opened(0);
  b.feed(0, R.usage255);
  b.feed(0, R.cookie);
  const l = of(b.feed(0, R.tunnelLegacy), 'setup')[0];
  assert.equal([l.tunnelId, l.peerTunnelId, l.sessionId, l.peerSessionId], [5, 100, 1, 1]);
  // initial cleanup tries both session id forms of a leftover tunnel
  assert.equal(of(b.all, 'teardown')[0].sessionIds, [5, 1]);
  // close uses the negotiated session id (upstream always used 1)
  b.rec(b.c.setupDone(0, null, b.now));
  const down = b.rec(b.c.shutdown());
  assert.equal(of(down, 'teardown'), [{ a: 'teardown', tunnelId: 5, sessionIds: [1], ifname: 'l2tp0' }]);
  a.rec(a.c.setupDone(0, null, a.now));
  assert.equal(of(a.rec(a.c.shutdown()), 'teardown')[0].sessionIds, [5]);
});

test('handshake retransmits every 3 s: USAGE+COOKIE, then COOKIE, then PREPARE', () => {
  const h = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }], selection: 'usage' });
  h.start();
  h.opened(0);
  h.opened(1);
  assert.equal(sends(h.until(2750)), []);
  assert.equal(sends(h.until(3000)), [R.usageReq, R.cookieReq, R.usageReq, R.cookieReq]);
  h.feed(1, R.usage255);
  assert.equal(sends(h.until(6000)), [R.usageReq, R.cookieReq]); // only broker 0 still asked
  h.feed(0, hex('80 73 a7 01 0a 02 ff ff 00 00 00 00')); // 0xffff: full
  assert.is(h.c.selected?.index, 1, 'usage mode picks the lower usage');
  assert.equal(of(h.all, 'close').map((x) => x.b), [0]);
  assert.equal(sends(h.until(9000)), [R.cookieReq]);
  h.feed(1, R.cookie);
  assert.equal(sends(h.until(11750)), []);
  assert.equal(sends(h.until(12000)), [R.prepare]);
});

test('establish timeout: no TUNNEL within 15 s → broker given up, backoff, new round', () => {
  const h = new H();
  h.start();
  h.opened(0);
  h.feed(0, R.usage255);
  h.feed(0, R.cookie);
  const a = h.until(15000);
  assert.is(sends(a).filter((s) => s === R.prepare).length, 5); // at 3, 6, 9, 12, 15 s
  assert.is(h.c.phase, 'pause');
  assert.is(h.c.failedAt[0], 15000);
  assert.ok(logs(a).some((l) => l.includes('no tunnel within 15 s')));
  // backoff with random 0.5 → exactly 1 s for the first failure
  h.until(15750);
  assert.is(h.c.phase, 'pause');
  const r = h.until(16000);
  assert.is(h.c.phase, 'round');
  assert.is(of(r, 'open').length, 1);
});

test('ERROR while waiting for TUNNEL (row 6\'\') → failure; ERROR while up (row 19) → reply row 20 and teardown', () => {
  const h = new H();
  h.start();
  h.opened(0);
  h.feed(0, R.usage255);
  h.feed(0, R.cookie);
  const refused = h.feed(0, R.refused);
  assert.is(h.c.phase, 'pause');
  assert.ok(logs(refused).some((l) => l.includes('refused the tunnel: refused (no reason)')));
  assert.equal(sends(refused), []);

  const u = new H();
  u.up();
  const closed = u.feed(0, R.errBrokerTimeout);
  assert.equal(sends(closed), [R.errReplyOther]);
  assert.equal(of(closed, 'hook')[0].args, ['session.down', 'l2tp0']);
  assert.equal(of(closed, 'teardown'), [{ a: 'teardown', tunnelId: 1, sessionIds: [1], ifname: 'l2tp0' }]);
  assert.ok(logs(closed).some((l) => l.includes('broker timeout (0x03)')));
  assert.is(u.c.phase, 'pause');
});

test('keepalive (row 9) due every 5 s, by its own timer 1 s late when nothing else wakes the client; liveness: >60 s without control packets → ERROR 0x12', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  assert.equal(sends(h.until(t0 + 5999)), []);
  const first = h.until(t0 + 6000);
  assert.equal(sends(first), [R.keepalive0]);
  assert.equal(sends(h.until(t0 + 11999)), []);
  assert.equal(sends(h.until(t0 + 12000)), ['80 73 a7 01 05 04 00 00 00 01 00 00']);
  h.now = t0 + 12000;
  h.feed(0, R.brokerKeepalive); // at 12 s: alive
  h.until(t0 + 71999);
  assert.is(h.c.ctxs[0].state, 'up');
  const closing = h.until(t0 + 72000);
  assert.ok(sends(closing).includes('80 73 a7 01 03 01 12 00 00 00 00 00'));
  assert.is(of(closing, 'teardown').length, 1);
  assert.is(h.c.phase, 'pause');
});

test('answers broker PMTU probes with PMTUD_ACK of the received length (rows 11/12)', () => {
  const h = new H();
  h.up();
  assert.equal(sends(h.feed(0, probe(1500))), [R.ack1472]);
  // not answered before the tunnel is up
  const n = new H();
  n.start();
  n.opened(0);
  assert.equal(sends(n.feed(0, probe(1500))), []);
});

test('PMTU round: 6 probes at +0..+4 s, evaluation at +5 s; a lower path MTU needs a confirming round; intervals double', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  const sizes = (a: Action[]): number[] => of(a, 'send').filter((x) => x.data[4] === 6).map((x) => x.data.length + 28);
  const ntfys = (a: Action[]): string[] => sends(a).filter((s) => s.startsWith('80 73 a7 01 09'));
  assert.equal(sizes(h.until(t0 + 14999)), []);
  const round = h.until(t0 + 15000);
  assert.equal(sizes(round), [1334, 1400, 1450, 1476, 1492, 1500]);
  assert.ok(of(round, 'send').filter((x) => x.data[4] === 6).every((x) => x.quiet === true));
  // the broker acknowledges up to 1476 (row 15 values 0x051a, 0x055c, 0x058e, 0x05a8)
  for (const len of [0x051a, 0x055c, 0x058e, 0x05a8]) h.feed(0, ackFor(len));
  assert.equal(sizes(h.until(t0 + 19999)), [1492, 1500, 1492, 1500, 1492, 1500, 1492, 1500], 'resent at +1..+4 s: only those above the best ACK');
  // one round without the larger probes is no proof (they may have been lost): nothing set yet
  const ev = h.until(t0 + 20000);
  assert.equal(of(ev, 'mtu'), []);
  assert.equal(ntfys(ev), []);
  // the confirming round 5 s later sees the same: path MTU 1476, tunnel MTU 1422, NTFY 1422
  assert.equal(sizes(h.until(t0 + 24999)), []);
  assert.is(sizes(h.until(t0 + 25000)).length, 6, 'confirmation round at +25 s');
  for (const len of [0x051a, 0x055c, 0x058e, 0x05a8]) h.feed(0, ackFor(len));
  const ev2 = h.until(t0 + 30000);
  assert.equal(of(ev2, 'mtu'), [{ a: 'mtu', b: 0, tunnelId: 1, sessionId: 1, ifname: 'l2tp0', mtu: 1476 - 54 }]);
  assert.equal(ntfys(ev2), [toHex(ntfy(1422))]);
  const done = h.rec(h.c.mtuDone(0, 1422, 1446, null, h.now));
  assert.equal(of(done, 'hook'), [{ a: 'hook', path: '/etc/td-hook', args: ['session.mtu-changed', 'l2tp0', '1446', '1422'] }]);
  // the confirmation round was extra: the regular schedule stays (+30 s, right after it; then
  // +60 s, +120 s, +240 s; unanswered here, MTU kept)
  assert.is(sizes(ev2).length, 8 + 6, 'resent at +26..+29 s (1492, 1500), then the regular round at +30 s');
  const roundStarts: number[] = [t0 + 30000];
  while (h.now < t0 + 250_000) {
    const a = h.at(h.now + 250);
    if (sizes(a).length && h.c.ctxs[0].state === 'up') roundStarts.push(h.now);
    h.feed(0, R.brokerKeepalive);
    for (const x of of(a, 'mtu')) h.rec(h.c.mtuDone(0, x.mtu, 0, null, h.now));
  }
  const firsts = roundStarts.filter((t, i) => i === 0 || t - roundStarts[i - 1] > 1000).map((t) => t - t0);
  assert.equal(firsts, [30000, 60000, 120000, 240000]);
  assert.equal(of(h.all, 'mtu').map((x) => x.mtu), [1422], 'unanswered rounds never lowered it');
});

test('PMTU: without -m the hook never sees session.mtu-changed (as with the original client)', () => {
  const h = new H({ limitKbps: 0, mtuHook: false });
  h.up();
  assert.is(of(h.feed(0, R.ntfy1400), 'mtu')[0].mtu, 1400);
  const done = h.rec(h.c.mtuDone(0, 1400, 1446, null, h.now));
  assert.equal(of(done, 'hook'), []);
  assert.ok(logs(done).some((l) => l.includes('MTU of l2tp0 changed from 1446 to 1400')));
  assert.equal(of(h.all, 'hook').map((x) => x.args[0]), ['session.up']);
});

test('PMTU: all probes acked → 1446 and NTFY row 16; broker NTFY lowers it; 1280 clamp; no hook when unchanged', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  h.until(t0 + 15000);
  for (const len of [0x051a, 0x055c, 0x058e, 0x05a8, 0x05b8, 0x05c0]) h.feed(0, ackFor(len));
  const ev = h.until(t0 + 20000);
  assert.is(of(ev, 'mtu')[0].mtu, 1446);
  assert.ok(sends(ev).includes(R.ntfy1446));
  // old MTU 1446 (kernel default) → unchanged, no hook
  assert.equal(of(h.rec(h.c.mtuDone(0, 1446, 1446, null, h.now)), 'hook'), []);
  // broker in fixed mode says 1400 (row 16')
  const low = h.feed(0, R.ntfy1400);
  assert.is(of(low, 'mtu')[0].mtu, 1400);
  assert.equal(of(h.rec(h.c.mtuDone(0, 1400, 1446, null, h.now)), 'hook')[0].args, ['session.mtu-changed', 'l2tp0', '1446', '1400']);
  // same NTFY again: nothing to do
  assert.equal(of(h.feed(0, R.ntfy1400), 'mtu'), []);
  // absurdly small peer value: clamped to 1280
  assert.is(of(h.feed(0, ntfy(576)), 'mtu')[0].mtu, 1280);
  // a failed MTU change is logged and retried at the next change, no hook
  const f = h.rec(h.c.mtuDone(0, 1280, 1400, 'Operation not permitted', h.now));
  assert.equal(of(f, 'hook'), []);
  assert.ok(logs(f)[0].includes('could not set MTU 1280 on l2tp0: Operation not permitted'));
  // a wrong-length NTFY is a malformed datagram
  const before = h.c.ctxs[0].dropped;
  h.feed(0, hex('80 73 a7 01 09 01 05 00 00 00 00 00'));
  assert.is(h.c.ctxs[0].dropped, before + 1);
});

test('PMTU: peer NTFY only (no own measurement) sets the MTU; own small path is clamped at 1280', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  assert.is(of(h.feed(0, R.ntfy1446), 'mtu')[0].mtu, 1446);
  const k = new H({ limitKbps: 0 });
  k.up();
  const t0 = k.now;
  k.until(t0 + 15000);
  k.feed(0, ackFor(1306)); // only the 1334-byte probe got through: 1334 − 54 = 1280
  assert.equal(of(k.until(t0 + 25000), 'mtu'), [], 'not before a second round confirms it');
  k.feed(0, ackFor(1306));
  assert.is(of(k.until(t0 + 30000), 'mtu')[0].mtu, 1280);
});

test('PMTU: an ACK larger than the largest probe (1500) is dropped and never sets the MTU', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  h.until(t0 + 15000);
  const before = h.c.ctxs[0].dropped;
  h.feed(0, ackFor(63434)); // claims a 63462-byte probe got through (seen from a fuzzer in the VM)
  h.feed(0, ackFor(1473)); // one byte above the 1500-byte probe
  assert.is(h.c.ctxs[0].dropped, before + 2);
  h.feed(0, ackFor(0x05a8)); // a real one: 1476
  h.until(t0 + 25000);
  h.feed(0, ackFor(63434));
  h.feed(0, ackFor(0x05a8));
  assert.equal(of(h.until(t0 + 30000), 'mtu').map((x) => x.mtu), [1476 - 54]);
  assert.is(h.c.ctxs[0].dropped, before + 3);
});

test('reliable LIMIT (row 7): retransmitted every 2 s, REL_ACK (row 8) stops it; 10 attempts then given up', () => {
  const h = new H();
  h.up();
  const t0 = h.now;
  const lim = (a: Action[]): number => sends(a).filter((s) => s === R.limit).length;
  assert.is(lim(h.until(t0 + 1750)), 0);
  assert.is(lim(h.until(t0 + 2000)), 1);
  h.feed(0, R.relAck0);
  assert.is(lim(h.until(t0 + 30000)), 0);

  const g = new H();
  g.up();
  const t1 = g.now;
  let count = 1; // the first transmission happened in up()
  const logsSeen: string[] = [];
  while (g.now < t1 + 40000) {
    const a = g.at(g.now + 250);
    count += lim(a);
    logsSeen.push(...logs(a));
    g.feed(0, R.brokerKeepalive);
  }
  assert.is(count, timers.reliableAttempts);
  assert.ok(logsSeen.some((l) => l.includes('did not acknowledge message 0 after 10 attempts')));
});

test('selection: -g picks the first answering broker even if later in -b order', () => {
  const h = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }, { host: 'c', port: '3' }] });
  h.start();
  [0, 1, 2].forEach((b) => h.opened(b));
  h.feed(2, R.usage255);
  assert.is(h.c.selected?.index, 2);
  assert.equal(of(h.all, 'close').map((x) => x.b).sort(), [0, 1]);
});

test('selection: -a waits for all (or the 10 s window), lowest usage, ties → earlier -b', () => {
  const h = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }, { host: 'c', port: '3' }], selection: 'usage' });
  h.start();
  [0, 1, 2].forEach((b) => h.opened(b));
  h.feed(2, hex('80 73 a7 01 0a 02 00 10 00 00 00 00'));
  h.feed(1, hex('80 73 a7 01 0a 02 00 10 00 00 00 00'));
  assert.is(h.c.phase, 'round');
  h.until(9750);
  assert.is(h.c.phase, 'round');
  h.until(10000);
  assert.is(h.c.selected?.index, 1);
  // a broker that only answered COOKIE has usage 0xffff
  const k = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }], selection: 'usage' });
  k.start();
  k.opened(0);
  k.opened(1);
  k.feed(0, R.cookie);
  k.feed(1, hex('80 73 a7 01 0a 02 ff fe 00 00 00 00'));
  assert.is(k.c.selected?.index, 1);
});

test('selection: -r uniform among ready; zero ready brokers does not crash in any mode', () => {
  const ready = [{ index: 0, usage: 5 }, { index: 3, usage: 1 }, { index: 7, usage: 9 }];
  assert.is(chooseBroker(ready, 'random', () => 0).index, 0);
  assert.is(chooseBroker(ready, 'random', () => 0.5).index, 3);
  assert.is(chooseBroker(ready, 'random', () => 0.99999).index, 7);
  assert.is(chooseBroker(ready, 'random', () => 1).index, 7);
  assert.is(chooseBroker(ready, 'usage', () => 0).index, 3);
  assert.is(chooseBroker(ready, 'first', () => 0).index, 0);
  for (const selection of ['random', 'usage', 'first'] as const) {
    const h = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }], selection });
    h.start();
    h.opened(0, false);
    const a = h.until(10000);
    assert.is(h.c.phase, 'pause', selection);
    assert.ok(logs(a).some((l) => l.includes('no broker answered within 10 s; new attempt (#1) in 1.0 s')));
    // resolution failures are retried (and logged once)
    assert.is(logs(h.all).filter((l) => l.includes('Name does not resolve')).length, 1);
    h.until(12000);
    assert.is(h.c.phase, 'round', 'retried after the backoff');
  }
  const r = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }], selection: 'random' }, () => 0.7);
  r.start();
  r.opened(0);
  r.opened(1);
  r.feed(0, R.usage255);
  r.feed(1, R.usage255);
  assert.is(r.c.selected?.index, 1);
});

test('backoff: 1 s doubling to 30 s, jitter within ±25 %, reset after a stable tunnel', () => {
  const expected = [1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000];
  expected.forEach((v, i) => {
    assert.is(backoffDelay(i + 1, () => 0.5), v);
    assert.is(backoffDelay(i + 1, () => 0), v * 0.75);
    assert.is(backoffDelay(i + 1, () => 0.999999), Math.round(v * 1.25 - 0.0000005 * v));
  });
  for (let i = 0; i < 200; i++) {
    const d = backoffDelay(4, Math.random);
    assert.ok(d >= 6000 && d <= 10000, `${d}`);
  }
  assert.is(backoffDelay(1000, () => 0.5), 30000, 'huge counts are capped');
  assert.is(backoffDelay(1000, () => 0.999999), 37500, 'longest pause: 37.5 s');
  // consecutive refusals grow the pause; a tunnel that stays up resets it
  const h = new H();
  const pauses: number[] = [];
  for (let i = 0; i < 4; i++) {
    if (h.c.phase === 'idle') h.start();
    h.opened(0);
    h.feed(0, R.usage255);
    h.feed(0, R.cookie);
    h.feed(0, R.refused);
    const t = h.now;
    while (h.c.phase === 'pause') h.at(h.now + 250);
    pauses.push(h.now - t);
  }
  assert.equal(pauses, [1000, 2000, 4000, 8000]);
  assert.is(h.c.failures, 4);
  h.up();
  const upAt = h.now;
  while (h.now < upAt + STABLE_UP_MS + 1000) {
    h.at(h.now + 250);
    h.feed(0, R.brokerKeepalive);
  }
  assert.is(h.c.phase, 'up');
  h.feed(0, R.errBrokerTimeout);
  assert.is(h.c.failures, 1, 'counter reset after a stable tunnel');
});

test('backoff: silent rounds grow the pause, an answer resets it; refusals after an answer keep growing it', () => {
  const h = new H();
  h.start();
  // the broker is down: rounds without any answer, pauses 1, 2, 4, 8, 16, 30, 30 s
  const pauses: number[] = [];
  for (let i = 0; i < 7; i++) {
    h.opened(0);
    h.until(h.now + 10_000);
    assert.is(h.c.phase, 'pause');
    const t = h.now;
    while (h.c.phase === 'pause') h.until(h.c.nextDeadline());
    pauses.push(h.now - t);
  }
  assert.equal(pauses, [1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.is(h.c.failures, 7);
  // it is back and answers: counter reset; a refusal now (say its rate limit) pauses 1 s, not 30
  h.opened(0);
  const back = h.feed(0, R.usage255);
  assert.ok(logs(back).some((l) => l.includes('a broker answers again after 7 failed attempts: backoff reset')));
  h.feed(0, R.cookie);
  assert.ok(logs(h.feed(0, R.refused)).some((l) => l.includes('new attempt (#1) in 1.0 s')));
  // answering but refusing again and again: the pause keeps growing (a struggling broker)
  const grow: string[] = [];
  for (let i = 0; i < 3; i++) {
    while (h.c.phase === 'pause') h.until(h.c.nextDeadline());
    h.opened(0);
    h.feed(0, R.usage255);
    h.feed(0, R.cookie);
    grow.push(...logs(h.feed(0, R.refused)).filter((l) => l.includes('new attempt')).map((l) => l.slice(l.indexOf('(#'))));
  }
  assert.equal(grow, ['(#2) in 2.0 s', '(#3) in 4.0 s', '(#4) in 8.0 s']);
});

test('backoff: a lone broker that was down for 10 minutes has its clients back within a minute', () => {
  // 100 clients with their own jitter; the broker is silent for 600 s, then answers everything
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  let worst = 0;
  for (let n = 0; n < 100; n++) {
    const h = new H({ limitKbps: 0 }, rnd);
    h.up();
    h.feed(0, '80 73 a7 01 03 01 02 00 00 00 00 00'); // ERROR: broker shutdown (0x02)
    const downAt = h.now;
    for (;;) {
      const d = h.c.nextDeadline();
      if (d >= downAt + 600_000) break;
      const a = h.at(d);
      for (const x of of(a, 'open')) h.rec(h.c.opened(x.b, x.gen, [{ ip: '203.0.113.1', port: 8942 }], h.now));
    }
    // back at +600 s: the client answers as soon as its next USAGE goes out
    h.until(downAt + 600_000);
    while (h.c.phase !== 'selected') {
      if (h.c.ctxs[0].state === 'usage') h.feed(0, R.usage255);
      else {
        const a = h.at(h.c.nextDeadline());
        for (const x of of(a, 'open')) h.rec(h.c.opened(x.b, x.gen, [{ ip: '203.0.113.1', port: 8942 }], h.now));
      }
    }
    worst = Math.max(worst, h.now - (downAt + 600_000));
  }
  assert.ok(worst <= 40_000, `slowest client back after ${worst} ms`);
  assert.ok(worst >= 20_000, `${worst} ms: the cap (22.5..37.5 s) is what bounds it`);
});

test('failed brokers are avoided for an hour while others answer, used when alone', () => {
  const brokers = [{ host: 'a', port: '1' }, { host: 'b', port: '2' }];
  const h = new H({ brokers });
  h.start();
  h.opened(0);
  h.opened(1);
  h.feed(0, R.usage255);
  assert.is(h.c.selected?.index, 0);
  h.feed(0, R.cookie);
  h.feed(0, R.refused);
  assert.is(h.c.failedAt[0], h.now);
  while (h.c.phase === 'pause') h.at(h.now + 250);
  h.opened(0);
  h.opened(1);
  // broker 0 answers first but failed recently: wait for the other one
  h.feed(0, R.usage255);
  assert.is(h.c.phase, 'round');
  h.feed(1, R.usage255);
  assert.is(h.c.selected?.index, 1);
  // broker 1 fails too; next round only broker 0 answers → used after the window
  h.feed(1, R.cookie);
  h.feed(1, R.refused);
  while ((h.c.phase as string) === 'pause') h.at(h.now + 250);
  const roundStart = h.now;
  h.opened(0);
  h.opened(1, false);
  h.feed(0, R.usage255);
  assert.is(h.c.phase, 'round');
  const a = h.until(roundStart + 10000);
  assert.is(h.c.selected?.index, 0);
  assert.ok(logs(a).some((l) => l.includes('although it failed recently')));
  // after an hour (full-width timestamps, far beyond 255 s) the mark expires: a refuses at
  // 5000 s, b carries the tunnel for an hour, then fails; in the next round a is preferred again
  const big = new H({ brokers, limitKbps: 0 });
  big.now = 5_000_000;
  big.start();
  big.opened(0);
  big.opened(1);
  big.feed(0, R.usage255);
  big.feed(0, R.cookie);
  big.feed(0, R.refused);
  assert.is(big.c.failedAt[0], 5_000_000);
  big.until(big.c.nextDeadline());
  assert.is(big.c.phase, 'round');
  assert.is(big.c.failedAt[0], 5_000_000, 'still avoided in the next round');
  big.opened(0);
  big.opened(1);
  big.feed(0, R.usage255);
  assert.is(big.c.phase, 'round', 'a answered first but is avoided');
  big.up(R.tunnel, 1);
  assert.is(big.c.selected?.index, 1);
  while (big.now < 5_000_000 + timers.brokenBrokerHold) {
    big.until(big.now + 5000);
    big.feed(1, R.brokerKeepalive);
  }
  big.feed(1, R.errBrokerTimeout);
  assert.is(big.c.failedAt[1], big.now);
  big.until(big.c.nextDeadline());
  assert.is(big.c.failedAt[0], -1, 'expired after an hour');
  big.opened(0);
  big.opened(1);
  big.feed(0, R.usage255);
  assert.is(big.c.selected?.index, 0, '-g takes a again as soon as it answers');
});

test('nextDeadline: ticking before it does nothing, after a tick it lies ahead, in every phase', () => {
  let seed = 99;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const h = new H({ brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }], selection: 'usage' }, rnd);
  h.start();
  const phases = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const d = h.c.nextDeadline();
    assert.ok(d > h.now, `step ${i}: deadline ${d} not after now ${h.now} (phase ${h.c.phase})`);
    phases.add(h.c.phase);
    // somewhere before the deadline: no action at all, but a keepalive within its slack
    // (it may share the wake-up of an earlier timer)
    const early = h.now + Math.floor(rnd() * Math.min(d - h.now, 20_000));
    if (early < d) {
      const a = h.at(early).filter((x) => !(x.a === 'send' && x.data[4] === 5 && x.data.length === 12 && early >= d - 2 * timers.clientKeepaliveSlack));
      assert.equal(a, [], `tick at ${early} before deadline ${d}`);
    }
    if (d === Infinity) break;
    const a = h.at(d);
    for (const x of of(a, 'open')) h.rec(h.c.opened(x.b, x.gen, rnd() < 0.1 ? 'down' : [{ ip: '203.0.113.1', port: 1 }], h.now));
    // the brokers answer now and then, the tunnel gets set up, probes get acked, errors arrive
    const r = rnd();
    const b = rnd() < 0.5 ? 0 : 1;
    if (r < 0.3) h.feed(b, R.usage255);
    else if (r < 0.4) h.feed(b, R.cookie);
    else if (r < 0.45) for (const x of of(h.feed(b, R.tunnel), 'setup')) h.rec(h.c.setupDone(x.b, null, h.now));
    else if (r < 0.6) h.feed(b, R.brokerKeepalive);
    else if (r < 0.65) h.feed(b, ackFor(1472));
    else if (r < 0.67) h.feed(b, R.errBrokerTimeout);
    else if (r < 0.68) h.feed(b, R.relAck0);
  }
  for (const p of ['round', 'selected', 'up', 'pause']) assert.ok(phases.has(p), `phase ${p} not reached: ${[...phases]}`);
});

test('SIGTERM: selected broker gets ERROR 0x11 (row 17), down hook, kernel cleanup, exit; idle → just exit', () => {
  const h = new H();
  h.up();
  const a = h.rec(h.c.shutdown());
  assert.equal(sends(a), [R.errShutdown]);
  assert.equal(of(a, 'hook')[0].args, ['session.down', 'l2tp0']);
  assert.is(of(a, 'teardown').length, 1);
  assert.equal(a[a.length - 1], { a: 'exit', code: 0 });
  // during the handshake: ERROR but no hook and no kernel cleanup (nothing was set up)
  const s = new H();
  s.start();
  s.opened(0);
  s.feed(0, R.usage255);
  const b = s.rec(s.c.shutdown());
  assert.equal(sends(b), [R.errShutdown]);
  assert.equal(of(b, 'hook'), []);
  assert.equal(of(b, 'teardown'), []);
  // during a round: nothing sent
  const r = new H({ selection: 'usage', brokers: [{ host: 'a', port: '1' }, { host: 'b', port: '2' }] });
  r.start();
  assert.equal(r.c.shutdown().map((x) => x.a), ['log', 'exit']);
});

test('kernel setup failure and fatal send errors end the attempt without a crash', () => {
  const h = new H();
  h.start();
  h.opened(0);
  h.feed(0, R.usage255);
  h.feed(0, R.cookie);
  h.feed(0, R.tunnel);
  const f = h.rec(h.c.setupDone(0, 'creating kernel session 1 (interface l2tp0) failed: File exists', h.now));
  assert.ok(logs(f).some((l) => l.startsWith('error: broker 203.0.113.1:8942: creating kernel session')));
  assert.equal(of(f, 'hook'), []);
  assert.is(h.c.phase, 'pause');
  const u = new H();
  u.up();
  const e = u.rec(u.c.sendFailed(0, 'Invalid argument', u.now));
  assert.is(of(e, 'teardown').length, 1);
  assert.is(u.c.phase, 'pause');
  // stale open completions (older generation) are ignored
  const s = new H();
  s.start();
  assert.equal(s.c.opened(0, 0, [{ ip: '203.0.113.1', port: 1 }], 0), []);
});

test('fuzz: random datagrams in every state never throw and malformed ones are counted', () => {
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const types = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0x0a, 0x80, 0xff];
  const h = new H({ limitKbps: 1 }, rnd);
  let total = 0;
  for (let round = 0; round < 6; round++) {
    if (round === 2 || round === 4) {
      while (h.c.phase === 'pause') h.at(h.now + 250);
      if (h.c.phase !== 'up') h.up();
    }
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rnd() * 40);
      const d = new Uint8Array(len);
      for (let k = 0; k < len; k++) d[k] = Math.floor(rnd() * 256);
      if (rnd() < 0.7 && len >= 6) d.set([0x80, 0x73, 0xa7, 1, types[Math.floor(rnd() * types.length)]]);
      h.feed(0, d);
      if (i % 100 === 0) h.at(h.now + 250);
    }
    total += 3000;
  }
  assert.ok(h.c.ctxs[0].dropped > 1000, `dropped ${h.c.ctxs[0].dropped} of ${total}`);
});

// --- IPv6 underlay and happy eyeballs (issue 9) ---

const V6 = { ip: '2001:db8::1', port: 8942, family: 6 as const };
const V4 = { ip: '203.0.113.1', port: 8942, family: 4 as const };

/** A broker name (-b broker.example:8942) that resolves to `addrs`; returns the harness after
 *  the resolver answered at t = 0. */
function named(addrs: { ip: string; port: number; family: 4 | 6 }[], o: Partial<Options> = {}): { h: H; out: Action[] } {
  const h = new H({ brokers: [{ host: 'broker.example', port: '8942' }], limitKbps: 0, ...o });
  h.start();
  const out = h.rec(h.c.opened(0, h.c.ctxs[0].gen, addrs, h.now));
  return { h, out };
}
const connects = (a: Action[]): string[] => of(a, 'connect').map((x) => `${x.fam} ${x.ip}`);
const usageOn = (a: Action[]): number[] => of(a, 'send').filter((x) => x.data[4] === 0x0a).map((x) => x.fam);

test('A and AAAA: IPv6 asked first, IPv4 250 ms later; IPv6 dropped → up over IPv4 within the setup time', () => {
  const { h, out } = named([V6, V4]);
  assert.equal(connects(out), ['6 2001:db8::1'], 'the resolver\'s first family first, alone');
  assert.equal(usageOn(out), [6]);
  assert.is(h.c.nextDeadline(), 250);
  assert.equal(connects(h.until(249)), []);
  const second = h.until(250);
  assert.equal(connects(second), ['4 203.0.113.1']);
  assert.equal(usageOn(second), [4]);
  // the IPv6 path drops everything: the IPv4 answer selects the broker over IPv4
  h.now = 300;
  const sel = h.feed(0, R.usage255);
  assert.equal(of(sel, 'close'), [{ a: 'close', b: 0, fam: 6 }], 'the unanswered IPv6 socket is closed');
  assert.is(h.c.phase, 'selected');
  assert.equal(of(sel, 'send').map((x) => [x.fam, x.data[4]]), [[4, 0x01]], 'COOKIE over IPv4 only');
  assert.ok(logs(sel).some((l) => l.includes('selected (usage 255/65535, 1 of 1 answered, over IPv4 203.0.113.1:8942)')), logs(sel).join('\n'));
  h.feed(0, R.cookie);
  const setup = of(h.feed(0, R.tunnel), 'setup');
  assert.is(setup[0].fam, 4);
  h.rec(h.c.setupDone(0, null, h.now));
  assert.is(h.c.ctxs[0].state, 'up');
  assert.ok(h.now < timers.handshakeRetry, `up at ${h.now} ms: before even the first retransmit`);
  // the retransmits that follow go over IPv4 only
  const ka = h.until(h.now + timers.clientKeepalive + timers.clientKeepaliveSlack);
  assert.ok(of(ka, 'send').length > 0 && of(ka, 'send').every((x) => x.fam === 4));
  // a late datagram on the closed IPv6 path changes nothing
  assert.equal(h.c.feed(0, hex(R.errShutdown), h.now, 6), []);
  assert.is(h.c.ctxs[0].state, 'up');
});

test('both families answer: the first answer wins, whichever family it is', () => {
  // IPv6 answers within 250 ms: IPv4 is never asked
  const a = named([V6, V4]).h;
  a.now = 40;
  const selA = a.rec(a.c.feed(0, hex(R.usage255), a.now, 6));
  assert.equal(connects(a.all), ['6 2001:db8::1']);
  assert.is(a.c.ctxs[0].family, 6);
  assert.equal(of(selA, 'send').map((x) => x.fam), [6]);
  assert.equal(connects(a.until(10_000)), [], 'no IPv4 socket after the IPv6 answer');
  // IPv4 answers first although IPv6 was asked first: IPv4 carries the tunnel
  const b = named([V6, V4]).h;
  b.until(250);
  b.now = 260;
  b.rec(b.c.feed(0, hex(R.usage255), b.now, 4));
  b.now = 270;
  assert.equal(b.rec(b.c.feed(0, hex(R.usage255), b.now, 6)), [], 'the later IPv6 answer is ignored');
  assert.is(b.c.ctxs[0].family, 4);
  // retransmits before any answer go over both
  const c = named([V6, V4]).h;
  const re = c.until(timers.handshakeRetry);
  assert.equal(of(re, 'send').filter((x) => x.data[4] === 0x0a).map((x) => x.fam), [4, 6, 4], 'IPv4 at 250 ms, then both at 3 s');
});

test('the resolver\'s order decides the first family (RFC 6724: IPv4 first on a host without IPv6 routes)', () => {
  const { out } = named([V4, V6, { ip: '2001:db8::2', port: 8942, family: 6 }, { ip: '203.0.113.9', port: 8942, family: 4 }]);
  assert.equal(connects(out), ['4 203.0.113.1']);
});

test('an IPv6 socket that cannot be made or connected: IPv4 at once, not after 250 ms', () => {
  const h = new H({ brokers: [{ host: 'broker.example', port: '8942' }], limitKbps: 0 });
  h.start();
  h.connectError = 'cannot connect to [2001:db8::1]:8942: Network is unreachable';
  const out = h.rec(h.c.opened(0, h.c.ctxs[0].gen, [V6, V4], h.now));
  assert.equal(connects(out), ['6 2001:db8::1', '4 203.0.113.1'], 'both at t = 0');
  assert.equal(of(out, 'close'), [{ a: 'close', b: 0, fam: 6 }, { a: 'close', b: 0, fam: 4 }]);
  // both failed: one retry line with the reason, as before for a single address
  assert.ok(logs(out).some((l) => l.includes('Network is unreachable; retrying every 3 s')), logs(out).join('\n'));
  h.connectError = null;
  const ok = h.until(timers.handshakeRetry);
  assert.ok(of(ok, 'open').length === 1, 'asked the resolver again');
});

test('IPv6-only name, and -l restricting the family', () => {
  const { h, out } = named([V6]);
  assert.equal(connects(out), ['6 2001:db8::1']);
  assert.is(h.c.nextDeadline(), timers.handshakeRetry, 'no second family to wait for');
  h.rec(h.c.feed(0, hex(R.usage255), h.now, 6));
  h.rec(h.c.feed(0, hex(R.cookie), h.now, 6));
  const setup = of(h.rec(h.c.feed(0, hex(R.tunnel), h.now, 6)), 'setup');
  assert.is(setup[0].fam, 6);
  const up = h.rec(h.c.setupDone(0, null, h.now));
  assert.ok(logs(up).some((l) => l.includes('tunnel 1 up on l2tp0 over IPv6')));
  // -l 2001:db8::7: the A record is not used
  assert.equal(connects(named([V4, V6], { bindIp: '2001:db8::7' }).out), ['6 2001:db8::1']);
  const only4 = named([V6], { bindIp: '198.51.100.7' });
  assert.equal(connects(only4.out), []);
  assert.ok(logs(only4.out).some((l) => l.includes('broker.example has no IPv4 address (the family of -l); retrying every 3 s')), logs(only4.out).join('\n'));
});

test('PMTU over an IPv6 underlay of 1400 bytes: probes 1280, 1334..1500 (IP), path MTU 1400, tunnel MTU 1326', () => {
  const { h } = named([V6]);
  h.rec(h.c.feed(0, hex(R.usage255), h.now, 6));
  h.rec(h.c.feed(0, hex(R.cookie), h.now, 6));
  h.rec(h.c.feed(0, hex(R.tunnel), h.now, 6));
  h.rec(h.c.setupDone(0, null, h.now));
  const t0 = h.now;
  // a broker probe over IPv6 is answered with its UDP payload length, as over IPv4
  const bp = new Uint8Array(1400 - 48);
  bp.set(hex('80 73 a7 01 06 00'));
  assert.equal(of(h.rec(h.c.feed(0, bp, h.now, 6)), 'send').map((x) => toHex(x.data)), [toHex(ackFor(1352))]);
  const round = h.until(t0 + 15000);
  const probes = of(round, 'send').filter((x) => x.data[4] === 6);
  // UDP payload = IP size − 40 − 8
  assert.equal(probes.map((x) => x.data.length + 48), [1280, 1334, 1400, 1450, 1476, 1492, 1500]);
  assert.ok(probes.every((x) => x.fam === 6 && x.quiet));
  // a 1400-byte path: the 1280, 1334 and 1400 probes get through (payloads 1232, 1286, 1352)
  for (const len of [1232, 1286, 1352]) h.rec(h.c.feed(0, ackFor(len), h.now, 6));
  // an ACK above the largest IPv6 probe (1500 − 48 = 1452) is dropped
  const before = h.c.ctxs[0].dropped;
  h.rec(h.c.feed(0, ackFor(1453), h.now, 6));
  assert.is(h.c.ctxs[0].dropped, before + 1);
  // below the 1500 reference: the confirmation round 5 s later must agree (loss rule)
  assert.equal(of(h.until(t0 + 20000), 'mtu'), []);
  h.until(t0 + 25000);
  h.rec(h.c.feed(0, ackFor(1232), h.now, 6));
  h.rec(h.c.feed(0, ackFor(1352), h.now, 6));
  const ev = h.until(t0 + 30000);
  assert.equal(of(ev, 'mtu').map((x) => x.mtu), [1326], '1400 − 40 − 8 − 12 − 14');
  assert.equal(sends(ev).filter((x) => x.startsWith('80 73 a7 01 09')), [toHex(ntfy(1326))]);
  // the broker measured the same (its NTFY 1326): nothing changes
  h.rec(h.c.mtuDone(0, 1326, 1446, null, h.now));
  assert.equal(of(h.rec(h.c.feed(0, ntfy(1326), h.now, 6)), 'mtu'), []);
});

test('IPv6 at the minimum link MTU 1280: the 1280 probe answers, the tunnel MTU is the 1280 floor', () => {
  const { h } = named([V6]);
  for (const r of [R.usage255, R.cookie, R.tunnel]) h.rec(h.c.feed(0, hex(r), h.now, 6));
  h.rec(h.c.setupDone(0, null, h.now));
  const t0 = h.now;
  h.until(t0 + 15000);
  h.rec(h.c.feed(0, ackFor(1232), h.now, 6));
  h.until(t0 + 25000);
  h.rec(h.c.feed(0, ackFor(1232), h.now, 6));
  const ev = h.until(t0 + 30000);
  // 1280 − 74 = 1206 < 1280: clamped (spec §4.1), and the broker is told what was measured
  assert.equal(of(ev, 'mtu').map((x) => x.mtu), [1280]);
  assert.equal(sends(ev).filter((x) => x.startsWith('80 73 a7 01 09')), [toHex(ntfy(1206))]);
});


/** A broker that sends its keepalive every 5 s (our broker: up to 250 ms early, the original:
 *  a little late) and acknowledges every probe, and a client in another phase: returns, per
 *  client keepalive, when it was sent and whether a broker keepalive's wake-up carried it, the
 *  times of the client's timer wake-ups and of those that sent nothing but a keepalive. */
function withBroker(phase: number, jitter: () => number, ms: number): { at: number[]; shared: boolean[]; ticks: number[]; kaOnlyTimers: number[]; closed: boolean } {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  const at: number[] = [];
  const shared: boolean[] = [];
  const kaOnlyTimers: number[] = [];
  const ticks: number[] = [];
  const isKa = (x: Action): boolean => x.a === 'send' && x.data[4] === 5;
  let next = t0 + phase;
  let k = 0;
  while (next < t0 + ms) {
    // the client's own timers up to the broker's next keepalive, one wake-up each
    for (let d = h.c.nextDeadline(); d <= next; d = h.c.nextDeadline()) {
      const a = h.at(d);
      ticks.push(d - t0);
      // a clean path: the broker acknowledges every probe at once (no resends)
      for (const x of of(a, 'send')) if (x.data[4] === 6) h.feed(0, ackFor(x.data.length));
      if (a.some(isKa)) {
        at.push(d - t0);
        shared.push(false);
        if (a.every(isKa)) kaOnlyTimers.push(d - t0);
      }
    }
    h.now = next;
    if (h.feed(0, R.brokerKeepalive).some(isKa)) {
      at.push(next - t0);
      shared.push(true);
    }
    k++;
    next = t0 + phase + k * 5000 + jitter();
  }
  return { at, shared, ticks, kaOnlyTimers, closed: h.c.ctxs[0].state !== 'up' };
}

test('keepalives share the broker keepalive\'s wake-up after at most a few rounds, from any phase; never more than 6 s apart', () => {
  let seed = 7;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const jitters: [string, () => number][] = [['ours (0-250 ms early)', () => -Math.floor(rnd() * 250)], ['late 0-100 ms', () => Math.floor(rnd() * 100)], ['exact', () => 0]];
  for (const [name, jitter] of jitters) {
    for (let phase = 0; phase < 5000; phase += 250) {
      const r = withBroker(phase, jitter, 600_000);
      const what = `${name}, broker phase ${phase} ms`;
      assert.not.ok(r.closed, what);
      for (let i = 1; i < r.at.length; i++) {
        const gap = r.at[i] - r.at[i - 1];
        // 4-6 s, or earlier (once, to get in step) with a broker keepalive
        const ok = gap <= 6000 && (gap >= 4000 || (r.shared[i] && gap > timers.clientKeepaliveSlack));
        assert.ok(ok, `${what}: keepalives ${r.at[i - 1]} and ${r.at[i]} ms after setup`);
      }
      // the PMTU rounds at 15, 30, 60, 120, 240 and 480 s wake the client 3 times each (start,
      // resend time, evaluation: 18); everything else is the broker's keepalives, but for at
      // most one timer-only keepalive (main: 120 of them, one every 5 s)
      assert.ok(r.ticks.length <= 18 + 1, `${what}: ${r.ticks.length} timer wake-ups: ${r.ticks}`);
      assert.ok(r.at.length >= 118 && r.at.length <= 121, `${what}: ${r.at.length} keepalives in 10 min, not one per 5 s`);
    }
  }
});

test('broker keepalives more often than every 4 s do not make the client send more often', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  const at: number[] = [];
  for (let t = 1000; t <= 60_000; t += 1000) {
    for (const x of h.until(t0 + t)) if (x.a === 'send' && x.data[4] === 5) at.push(h.now);
    for (const x of h.feed(0, R.brokerKeepalive)) if (x.a === 'send' && x.data[4] === 5) at.push(t0 + t);
  }
  assert.is(at.length, 15, `keepalives at ${at.map((x) => x - t0)}`);
  for (let i = 1; i < at.length; i++) assert.is(at[i] - at[i - 1], 4000);
});

test('a PMTU probe timer carries a keepalive that is nearly due (one wake-up instead of two)', () => {
  const h = new H({ limitKbps: 0 });
  h.up();
  const t0 = h.now;
  // keepalives by the timer at +6, +12 s; the first PMTU round at +15 s (keepalive due at 17 s,
  // within the slack from 16 s), resends at +16, +17 s
  h.until(t0 + 14_999);
  const round = h.until(t0 + 15_000);
  assert.ok(of(round, 'send').some((x) => x.data[4] === 6), 'probes sent');
  assert.ok(!of(round, 'send').some((x) => x.data[4] === 5), 'keepalive not due before 16 s');
  const resend = h.until(t0 + 16_000);
  assert.ok(of(resend, 'send').some((x) => x.data[4] === 6) && of(resend, 'send').some((x) => x.data[4] === 5), 'probes and keepalive in one wake-up');
  assert.is(h.c.nextDeadline(), t0 + 17_000, 'next: the probe resend, the keepalive only at 16 + 6 s');
});

test.run();
