// Admission under overload (issue 7, src/broker/overload.ts): COOKIE/USAGE requests that waited
// too long in the receive queue are dropped and counted, fresh ones served; while PREPAREs wait,
// cookies in flight are bounded by the recent creations (no cookie for new endpoints, usage
// 0xFFFF, one warning per episode); the driver serves a batch's PREPAREs before its COOKIE and
// USAGE requests and ages each listener datagram by its receive queue time plus the time since
// the batch was read. The receive timestamps themselves: test/native/td_core_test.c and
// datagram-batch.test.ts (addon on loopback).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import type { Endpoint } from '../../src/native.js';
import type { Action, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import {
  ATTEMPT_MS, BUSY_HOLD_MS, COOKIE_FLIGHT_MS, MIN_COOKIES_IN_FLIGHT, OverloadAdmission, REQUEST_MAX_AGE_MS, deferrableRequest,
} from '../../src/broker/overload.js';
import * as m from '../../src/protocol/messages.js';
import { DatagramBatch, DGRAM_META_WORDS, HandedDatagramReader } from '../../src/runtime/datagram-batch.js';
import { CFG, ERRNO, rig } from './broker-fakes.js';

const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const T0 = 1_000_000;

function broker(over: Partial<BrokerConfig> = {}): BrokerCore {
  return new BrokerCore({
    address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels: 1000, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'info', logIpAddresses: true,
    hooks: { sessionUp: '', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' },
    ...over,
  }, {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0, random: () => 0.5,
    errno: ERRNO, tcPath: '/usr/sbin/tc',
  });
}

const sends = (out: Action[]): (Action & { type: 'send' })[] => out.filter((a): a is Action & { type: 'send' } => a.type === 'send');
const logs = (out: Action[]): string[] => out.flatMap((a) => (a.type === 'log' ? [`${a.level}: ${a.message}`] : []));
const ep = (i: number): Endpoint => ({ ip: `198.51.100.${10 + (i % 200)}`, port: 40000 + i });
const payload = (a: Action & { type: 'send' }): Uint8Array => (m.parseFrame(a.data) as m.Frame).payload;

/** COOKIE request of `from` (waited ageMs); its cookie, or null when unanswered. */
function cookie(b: BrokerCore, from: Endpoint, now: number, ageMs = 0): Uint8Array | null {
  const out = sends(b.datagram(LISTENER, m.encodeCookieRequest(), from, now, ageMs));
  return out.length ? m.decodeCookieReply(payload(out[0]))! : null;
}

function prepare(b: BrokerCore, from: Endpoint, c: Uint8Array, now: number, ageMs = 0, uuid = `u-${from.port}`): Action[] {
  return b.datagram(LISTENER, m.encodePrepare(c, m.utf8Encode(uuid), 1, 1), from, now, ageMs);
}

/** The usage a USAGE request of `from` gets (null: unanswered). */
function usage(b: BrokerCore, from: Endpoint, now: number, ageMs = 0): number | null {
  const out = sends(b.datagram(LISTENER, m.encodeUsageRequest(0), from, now, ageMs));
  return out.length ? new DataView(payload(out[0]).buffer, payload(out[0]).byteOffset).getUint16(0) : null;
}

test('COOKIE and USAGE requests older than REQUEST_MAX_AGE_MS are dropped and counted; fresh and unaged ones served (IPv4 and IPv6)', () => {
  const b = broker();
  const v6: Endpoint = { ip: '2001:db8::7', port: 40000, family: 6 };
  for (const from of [ep(1), v6]) {
    assert.is(cookie(b, from, T0, REQUEST_MAX_AGE_MS + 1), null);
    assert.is(usage(b, from, T0, REQUEST_MAX_AGE_MS + 500), null);
    assert.ok(cookie(b, from, T0, REQUEST_MAX_AGE_MS), 'exactly the limit: answered');
    assert.ok(cookie(b, from, T0, -1), 'unknown age: answered');
    assert.is(usage(b, from, T0, 100), 0);
  }
  const c = b.counters;
  assert.is(c.get('drop-stale-cookie-request'), 2);
  assert.is(c.get('drop-stale-usage-request'), 2);
  assert.is(c.get('cookies-issued'), 4);
  assert.is(c.get('usage-requests'), 2);
});

test("a cookie is dated when its request arrived: the request's queue time counts toward PREPARE_MAX_COOKIE_AGE_MS", () => {
  const b = broker();
  // the COOKIE request waited 3 s (receive timestamps: 2 s of it are in the 12 s limit's
  // margin); its PREPARE comes 11.5 s after the cookie went out
  const late = cookie(b, ep(1), T0, 3_000)!;
  const out = prepare(b, ep(1), late, T0 + 11_500);
  assert.not.ok(out.some((a) => a.type === 'setup'), '14.5 s since the request: no tunnel');
  assert.is(b.counters.get('refused-stale-cookie'), 1);
  const c2 = cookie(b, ep(2), T0, 3_000)!;
  assert.ok(prepare(b, ep(2), c2, T0 + 10_500).some((a) => a.type === 'setup'), '13.5 s: created');
  const unaged = cookie(b, ep(3), T0, -1)!;
  assert.not.ok(prepare(b, ep(3), unaged, T0 + 12_500).some((a) => a.type === 'setup'), 'no timestamp: 12 s from the read');
});

test("a cookie is dated at the endpoint's first COOKIE request of the attempt, also when that one was dropped", () => {
  const b = broker();
  // the first request waited 3.5 s (dropped as stale); the client's repeat 3 s later is answered
  assert.is(cookie(b, ep(1), T0, 3_500), null);
  const c = cookie(b, ep(1), T0 + 3_000, 500)!;
  // 6.5 s after the first request; the cookie is dated 4.5 s back (2 s of margin)
  assert.ok(prepare(b, ep(1), c, T0 + 10_000).some((a) => a.type === 'setup'), '13.5 s since the first request: created');
  assert.is(cookie(b, ep(2), T0, 3_500), null);
  const c2 = cookie(b, ep(2), T0 + 3_000, 500)!;
  assert.not.ok(prepare(b, ep(2), c2, T0 + 11_000).some((a) => a.type === 'setup'), '14.5 s since the first request: refused');
  // a request ATTEMPT_MS after the first one begins a new attempt: dated afresh
  assert.ok(cookie(b, ep(3), T0, 1_000));
  const c3 = cookie(b, ep(3), T0 + ATTEMPT_MS + 1_000, 0)!;
  assert.ok(prepare(b, ep(3), c3, T0 + ATTEMPT_MS + 11_000).some((a) => a.type === 'setup'), '10 s since the new attempt: created');
});

test('a PREPARE is never dropped for its queue age alone: its cookie age decides', () => {
  const b = broker();
  const c = cookie(b, ep(1), T0)!;
  const out = prepare(b, ep(1), c, T0 + 500, 10_000);
  assert.ok(out.some((a) => a.type === 'setup'), 'created');
});

test('without late PREPAREs there is no bound: a flood of COOKIE requests from strangers gets cookies', () => {
  const b = broker();
  let answered = 0;
  for (let i = 0; i < 500; i++) if (cookie(b, ep(i), T0 + i)) answered++;
  assert.is(answered, 500);
  assert.is(b.counters.get('drop-busy-cookie-request'), 0);
});

test('PREPAREs that waited: cookies in flight bounded, new endpoints get no cookie and usage 0xFFFF, repeats are served; one warning, one closing line', () => {
  const b = broker();
  const cookies = new Map<number, Uint8Array>();
  for (let i = 0; i < 40; i++) cookies.set(i, cookie(b, ep(i), T0)!);
  // PREPARE of client 0 waited 1.5 s in the queue: the broker is behind
  let t = T0 + 2_000;
  const created = prepare(b, ep(0), cookies.get(0)!, t, 1_500);
  assert.ok(created.some((a) => a.type === 'setup'));
  b.setupResult(100, { ok: true }, t);
  // 39 cookies still out >= max(8, 1 created): the bound holds
  const out = b.datagram(LISTENER, m.encodeCookieRequest(), ep(100), t, 0);
  assert.is(sends(out).length, 0);
  assert.equal(logs(out).filter((l) => l.startsWith('warning')).length, 1);
  assert.match(logs(out)[0], /overload: 39 cookies are out without a PREPARE yet \(bound 8/);
  assert.is(cookie(b, ep(101), t + 10), null);
  assert.is(b.counters.get('drop-busy-cookie-request'), 2);
  assert.is(usage(b, ep(102), t + 20), 0xffff);
  assert.is(b.counters.get('usage-busy'), 1);
  assert.ok(cookie(b, ep(5), t + 30), 'an endpoint holding a cookie is answered again (a repeat)');
  // the clients with cookies come: each PREPARE settles its cookie; 8 left out is below the bound
  // of the tunnels created meanwhile
  let id = 101;
  for (let i = 1; i < 32; i++) {
    t += 10;
    assert.ok(prepare(b, ep(i), cookies.get(i)!, t, 1_200).some((a) => a.type === 'setup'));
    b.setupResult(id++, { ok: true }, t);
  }
  assert.ok(cookie(b, ep(103), t), 'in flight 8 < created 32: new endpoints get cookies again');
  assert.is(usage(b, ep(104), t), Math.floor(32 / 1000 * 65535));
  // no further hold-back for 10 s: the closing line
  t += 10_001;
  const back = b.datagram(LISTENER, m.encodeCookieRequest(), ep(105), t, 0);
  assert.is(sends(back).length, 1);
  assert.match(logs(back).join('\n'), /info: overload over after 10\.\d s: 31 tunnels created, 2 cookie requests held back/);
});

test('the bound frees when the cookies in flight expire, and the busy state ends BUSY_HOLD_MS after the last late PREPARE', () => {
  const b = broker();
  const cs = Array.from({ length: 20 }, (_, i) => cookie(b, ep(i), T0)!);
  prepare(b, ep(0), cs[0], T0 + 1_000, 2_000);
  assert.is(cookie(b, ep(50), T0 + 1_000), null, 'busy, 19 in flight');
  assert.ok(cookie(b, ep(51), T0 + 1_000 + BUSY_HOLD_MS), 'no late PREPARE for BUSY_HOLD_MS: no bound');
  prepare(b, ep(1), cs[1], T0 + 7_000, 2_000);
  assert.is(cookie(b, ep(52), T0 + 7_000), null, 'busy again');
  assert.ok(cookie(b, ep(53), T0 + COOKIE_FLIGHT_MS + 10), 'the first 18 cookies are no longer in flight');
});

test('OverloadAdmission: the bound is the tunnels created in the last 5 s, at least MIN_COOKIES_IN_FLIGHT', () => {
  const o = new OverloadAdmission();
  assert.is(o.limit(T0), MIN_COOKIES_IN_FLIGHT);
  for (let i = 0; i < 30; i++) o.created(T0 + i * 100);
  assert.is(o.limit(T0 + 4_500), 30);
  assert.is(o.limit(T0 + 5_000), 30 - 10, 'the first second of creations has left the window');
  assert.is(o.limit(T0 + 60_000), MIN_COOKIES_IN_FLIGHT);
  assert.not.ok(o.stale(-1));
  assert.ok(o.stale(REQUEST_MAX_AGE_MS + 1));
  assert.is(deferrableRequest(m.encodeCookieRequest()), 0x01);
  assert.is(deferrableRequest(m.encodeUsageRequest(0)), 0x0a);
  assert.is(deferrableRequest(m.encodePrepare(new Uint8Array(8), m.utf8Encode('x'), 1, 1)), 0);
  assert.is(deferrableRequest(Uint8Array.of(1, 2, 3, 4, 1, 0)), 0, 'not a Tunneldigger header');
});

/** A driver with a handed reader; items carry their queue time. */
function batchedRig() {
  const reader = new HandedDatagramReader(new DatagramBatch(new Uint8Array(16 * 2048), new Int32Array(16 * DGRAM_META_WORDS), 2048));
  const r = rig(CFG, { reader });
  r.driver.openListeners();
  return { ...r, reader };
}

const A: Endpoint = { ip: '198.51.100.7', port: 40000 };
const B: Endpoint = { ip: '198.51.100.8', port: 40001 };

test('driver: PREPAREs of a batch before its COOKIE and USAGE requests; a listener datagram is aged by its queue time plus the batch so far', () => {
  const r = batchedRig();
  r.reader.turn([[10, m.encodeCookieRequest(), B, 0]]);
  const c = Uint8Array.from(r.native.sent.at(-1)!.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  // creating B's tunnel takes 1.2 s (a slow kernel); A's COOKIE request had waited 2 s already
  const create = r.kernel.createTunnel.bind(r.kernel);
  r.kernel.createTunnel = (t) => ((r.loop.t += 1_200), create(t));
  const ages: number[] = [];
  const datagram = r.core.datagram.bind(r.core);
  r.core.datagram = (s, d, from, now, age) => (ages.push(age ?? -1), datagram(s, d, from, now, age));
  const before = r.native.sent.length;
  r.reader.turn([
    [10, m.encodeCookieRequest(), A, 2_000],
    [10, m.encodeUsageRequest(0), A, 100],
    [10, m.encodePrepare(c, m.utf8Encode('uuid-b'), 1, 1), B, 500],
  ]);
  assert.is(r.core.tunnelCount, 1, "B's tunnel");
  assert.equal(ages, [500, 3_200, 1_300], 'PREPARE first; then the COOKIE request (2 s + 1.2 s) and the USAGE (0.1 + 1.2 s)');
  const sent = r.native.sent.slice(before);
  assert.is(sent.filter((s) => s.to === '198.51.100.7:40000').length, 1, 'A: only its USAGE is answered');
  assert.ok(sent.findIndex((s) => s.to === '198.51.100.7:40000') > sent.findIndex((s) => s.fd !== 10 || s.to === '198.51.100.8:40001'),
    "B's answer went out first");
  assert.is(r.core.counters.get('drop-stale-cookie-request'), 1);
});

test('driver: without receive timestamps (-1) nothing is aged', () => {
  const r = batchedRig();
  r.reader.turn([[10, m.encodeCookieRequest(), A]]);
  assert.is(r.native.sent.length, 1);
  assert.is(r.core.counters.get('drop-stale-cookie-request'), 0);
});

test.run();
