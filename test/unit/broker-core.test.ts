// Sans-IO broker core: spec §3 replay, admission (cookies, rate limits, ids, usage), tunnel
// timers, PMTU, LIMIT, failures, shutdown and robustness against random input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Endpoint } from '../../src/native.js';
import type { Action, Job, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { COOKIE_TICK_MS, FINE_MAX_AGE_MS, FINE_TICK_MS } from '../../src/protocol/cookie.js';
import { PREPARE_MAX_COOKIE_AGE_MS } from '../../src/broker/broker.js';
import * as m from '../../src/protocol/messages.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));
const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
/** The host's errno values (as the addon's table: qjs-native/td_core.c), no copy. */
const { EEXIST, EMSGSIZE, ECONNREFUSED } = osConstants.errno;
const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const TUN100: SocketRef = { kind: 'tunnel', tunnelId: 100 };
const C1: Endpoint = { ip: '198.51.100.7', port: 40000 };
const C2: Endpoint = { ip: '198.51.100.8', port: 40001 };
/** Broker protocol tick 3 (spec §3). */
const T0 = 3 * COOKIE_TICK_MS + 5;

function config(over: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels: 256, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'debug', logIpAddresses: true,
    hooks: {
      sessionUp: '/hooks/up', sessionPreDown: '/hooks/pre-down', sessionDown: '/hooks/down',
      sessionMtuChanged: '/hooks/mtu', connectionRateLimit: '/hooks/rl',
    },
    ...over,
  };
}

function broker(over: Partial<BrokerConfig> = {}, random = (): number => 0.5): BrokerCore {
  return new BrokerCore(config(over), {
    key: KEY, mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0, random,
    errno: { EEXIST, EMSGSIZE }, tcPath: '/usr/sbin/tc',
  });
}

const sends = (actions: Action[]): string[] =>
  actions.flatMap((a) => (a.type === 'send' ? [toHex(a.data)] : []));
const jobs = (actions: Action[]): Job[] => actions.flatMap((a) => (a.type === 'run' ? [a.job] : []));
const logs = (actions: Action[]): string[] => actions.flatMap((a) => (a.type === 'log' ? [`${a.level}: ${a.message}`] : []));
const types = (actions: Action[]): string[] =>
  actions.filter((a) => a.type !== 'log').map((a) => (a.type === 'run' ? `run ${a.job.path}` : a.type));

/** COOKIE + PREPARE from `client`; completes the setup with `result` (default ok). */
function connect(
  b: BrokerCore, client: Endpoint, now: number,
  opts: { uuid?: string; tid?: number; features?: number; legacy?: boolean } = {},
): Action[] {
  const cookieReply = b.datagram(LISTENER, m.encodeCookieRequest(), client, now);
  const frame = m.parseFrame((cookieReply.find((a) => a.type === 'send') as { data: Uint8Array }).data);
  assert.ok(m.isFrame(frame));
  const cookie = m.decodeCookieReply((frame as m.Frame).payload)!;
  const uuid = m.utf8Encode(opts.uuid ?? 'foobar');
  const prepare = opts.legacy
    ? m.encodeMessage(2, [...cookie, uuid.length, ...uuid])
    : m.encodePrepare(cookie, uuid, opts.tid ?? 1, opts.features ?? 1);
  const out = b.datagram(LISTENER, prepare, client, now);
  const setup = out.find((a) => a.type === 'setup');
  if (!setup || setup.type !== 'setup') return out;
  return [...out, ...b.setupResult(setup.setup.tunnelId, { ok: true }, now)];
}

/** COOKIE request from `client`; returns the 8 cookie bytes of the answer. */
function cookieFor(b: BrokerCore, client: Endpoint, now: number): Uint8Array {
  const out = sends(b.datagram(LISTENER, m.encodeCookieRequest(), client, now));
  assert.is(out.length, 1);
  return m.decodeCookieReply((m.parseFrame(hex(out[0])) as m.Frame).payload)!;
}

test('spec §3 rows 1-18 replayed against the core', () => {
  const b = broker();
  // rows 3/4: COOKIE -> 8 opaque bytes. The broker's cookie layout is its own (FineCookieJar,
  // 250 ms ticks); the original construction with the example key (00 03 79 24 fb c7 02 4b)
  // is checked in protocol.test.ts and FineCookieJar separately below.
  const cookie = b.datagram(LISTENER, hex('80 73 a7 01 01 08 58 58 58 58 58 58 58 58'), C1, T0);
  assert.is(sends(cookie).length, 1);
  assert.match(sends(cookie)[0], /^80 73 a7 01 01 08( [0-9a-f]{2}){8}$/);
  const c = sends(cookie)[0].slice(18);
  // rows 5/6: PREPARE -> setup -> TUNNEL with features; first client gets 100
  const prep = b.datagram(LISTENER, hex(`80 73 a7 01 02 17 ${c} 06 66 6f 6f 62 61 72 00 00 00 01 00 00 00 01`), C1, T0);
  assert.equal(prep, [{
    type: 'setup',
    setup: { tunnelId: 100, peerTunnelId: 1, sessionId: 100, peerSessionId: 1, ifname: 'l2tp100-100', port: 8942, client: C1 },
  }]);
  const up = b.setupResult(100, { ok: true }, T0);
  assert.equal(types(up), ['setMtu', 'send', 'run /hooks/up']);
  assert.equal(up[0], { type: 'setMtu', tunnelId: 100, sessionId: 100, ifname: 'l2tp100-100', mtu: 1446 });
  assert.equal(sends(up), ['80 73 a7 01 04 08 00 00 00 64 00 00 00 01']);
  assert.equal((up[1] as { socket: SocketRef }).socket, TUN100);
  assert.equal(jobs(up)[0].args, ['100', '100', 'l2tp100-100', '1446', '198.51.100.7', '40000', '8942', 'foobar', '8942']);
  // rows 1/2: another client asks for usage while one tunnel is up -> 255
  assert.equal(sends(b.datagram(LISTENER, hex('80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01'), C2, T0)),
    ['80 73 a7 01 0a 02 00 ff 00 00 00 00']);
  // rows 7/8: LIMIT -> REL_ACK, then tc
  const limit = b.datagram(TUN100, hex('80 73 a7 01 80 08 00 00 01 04 00 00 04 00'), C1, T0 + 100);
  assert.equal(sends(limit), ['80 73 a7 01 08 02 00 00 00 00 00 00']);
  assert.equal(jobs(limit).map((j) => [j.path, ...j.args].join(' ')), [
    '/usr/sbin/tc qdisc del dev l2tp100-100 root',
    '/usr/sbin/tc qdisc add dev l2tp100-100 root handle 1: htb default 1',
    '/usr/sbin/tc class add dev l2tp100-100 parent 1: classid 1:1 htb rate 1024kbit ceil 1024kbit',
    '/usr/sbin/tc qdisc add dev l2tp100-100 parent 1:1 handle 10: fq_codel',
  ]);
  assert.equal(jobs(limit).map((j) => j.ignoreFailure), [true, false, false, false]);
  assert.ok(jobs(limit).every((j) => j.queue === 'tunnel:100'));
  // row 9: client keepalive -> nothing sent
  assert.equal(sends(b.datagram(TUN100, hex('80 73 a7 01 05 04 00 00 00 00 00 00'), C1, T0 + 200)), []);
  // random 0.5: first probe after 2000 ms, first keepalive after 3000 ms
  assert.equal(b.tick(T0), []);
  assert.is(b.nextDeadline(), T0 + 2000);
  // row 11: probe 1500 = 1472-byte UDP payload
  const probe = b.tick(T0 + 2000);
  assert.equal(sends(probe), [toHex(Uint8Array.from([0x80, 0x73, 0xa7, 0x01, 0x06, 0x00, ...new Array(1466).fill(0)]))]);
  // row 10: broker keepalive seq 0 (u16)
  const second = b.tick(T0 + 3000);
  assert.equal(sends(second).filter((x) => !x.startsWith('80 73 a7 01 06')), ['80 73 a7 01 05 02 00 00 00 00 00 00']);
  assert.equal(sends(second).filter((x) => x.startsWith('80 73 a7 01 06')).length, 1, 'second 1500 probe, 1 s after the first');
  // rows 12/13: ACK 1472 -> NTFY 1446, MTU unchanged (no setMtu, no hook)
  const ack = b.datagram(TUN100, hex('80 73 a7 01 07 02 05 c0 00 00 00 00'), C1, T0 + 2100);
  assert.equal(sends(ack), ['80 73 a7 01 09 02 05 a6 00 00 00 00']);
  assert.equal(types(ack), ['send']);
  // rows 14/15: six client probes -> ACK with each UDP payload length
  const acks = [1306, 1372, 1422, 1448, 1464, 1472].flatMap((len) => {
    const p = new Uint8Array(len);
    p.set(hex('80 73 a7 01 06 00'));
    return sends(b.datagram(TUN100, p, C1, T0 + 4000));
  });
  assert.equal(acks, ['05 1a', '05 5c', '05 8e', '05 a8', '05 b8', '05 c0'].map((v) => `80 73 a7 01 07 02 ${v} 00 00 00 00`));
  // row 16: client NTFY 1446 -> nothing changes
  assert.equal(types(b.datagram(TUN100, hex('80 73 a7 01 09 02 05 a6 00 00 00 00'), C1, T0 + 5000)), []);
  // rows 17/18: client shutdown -> ERROR 01, hooks around the kernel teardown
  const bye = b.datagram(TUN100, hex('80 73 a7 01 03 01 11 00 00 00 00 00'), C1, T0 + 6000);
  assert.equal(sends(bye), ['80 73 a7 01 03 01 01 00 00 00 00 00']);
  assert.equal(types(bye), ['run /hooks/pre-down', 'send', 'teardown', 'run /hooks/down']);
  assert.equal(bye.find((a) => a.type === 'teardown'), { type: 'teardown', tunnelId: 100, sessionId: 100 });
  assert.ok(logs(bye).some((l) => /client shutdown \(0x11\)/.test(l)), logs(bye).join('\n'));
  assert.is(b.tunnelCount, 0);
  assert.is(b.usage(1), 0);
});

test('row 6\': featureless (pre-2016) client gets TUNNEL without features and session ids 1/1', () => {
  const b = broker();
  const out = connect(b, C1, T0, { legacy: true });
  const setup = out.find((a) => a.type === 'setup');
  assert.equal(setup && setup.type === 'setup' && [setup.setup.sessionId, setup.setup.peerSessionId, setup.setup.ifname], [1, 1, 'l2tp100-1']);
  assert.equal(sends(out).slice(-1), ['80 73 a7 01 04 04 00 00 00 64 00 00']);
});

test('retransmitted PREPARE gets TUNNEL again, with the features word; a different one gets ERROR', () => {
  const b = broker();
  const cookie = cookieFor(b, C1, T0);
  const first = b.datagram(LISTENER, m.encodePrepare(cookie, m.utf8Encode('foobar'), 1, 1), C1, T0);
  b.setupResult((first.find((a) => a.type === 'setup') as { setup: { tunnelId: number } }).setup.tunnelId, { ok: true }, T0);
  const again = m.encodePrepare(cookie, m.utf8Encode('foobar'), 1, 1);
  assert.equal(sends(b.datagram(TUN100, again, C1, T0 + 3000)), ['80 73 a7 01 04 08 00 00 00 64 00 00 00 01']);
  // on the listener: same answer and no warning (it may have been queued there before the
  // tunnel socket existed, seen with 20 clients in the VM)
  const viaListener = b.datagram(LISTENER, again, C1, T0 + 3000);
  assert.equal(sends(viaListener), ['80 73 a7 01 04 08 00 00 00 64 00 00 00 01']);
  assert.equal(logs(viaListener).filter((l) => l.startsWith('warning')), []);
  // a keepalive there means the kernel misdelivers (upstream #126): one warning per tunnel, counted
  const ka = m.encodeMessage(5, [0, 0, 0, 1]);
  assert.ok(logs(b.datagram(LISTENER, ka, C1, T0 + 3100)).some((l) => l.startsWith('warning') && l.includes('#126')));
  assert.equal(logs(b.datagram(LISTENER, ka, C1, T0 + 3200)).filter((l) => l.startsWith('warning')), []);
  assert.is(b.counters.get('listener-tunnel-message'), 2);
  // the client is there (its keepalive came through the tunnel): a different PREPARE is refused
  b.datagram(TUN100, ka, C1, T0 + 3300);
  const other = m.encodePrepare(cookie, m.utf8Encode('other'), 1, 1);
  assert.equal(sends(b.datagram(TUN100, other, C1, T0 + 3000)), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.is(b.tunnelCount, 1);
  assert.is(b.counters.get('prepare-retransmits'), 2);
});

test('bad or expired cookies are dropped silently and counted', () => {
  const b = broker();
  const cookie = cookieFor(b, C1, T0);
  const forgedCookie = cookie.slice();
  forgedCookie[7] ^= 1;
  const forged = m.encodePrepare(forgedCookie, m.utf8Encode('x'), 1, 1);
  assert.equal(types(b.datagram(LISTENER, forged, C1, T0)), []);
  // right signature but from another port
  const good = m.encodePrepare(cookie, m.utf8Encode('x'), 1, 1);
  assert.equal(types(b.datagram(LISTENER, good, { ip: C1.ip, port: 40001 }, T0)), []);
  // expired: after 192 s (the original's upper bound), and before it was issued
  assert.equal(types(b.datagram(LISTENER, good, C1, T0 + FINE_MAX_AGE_MS + FINE_TICK_MS)), []);
  assert.equal(types(b.datagram(LISTENER, good, C1, T0 - FINE_TICK_MS)), []);
  assert.is(b.counters.get('drop-bad-cookie'), 4);
  // still valid, and young enough to create a tunnel, 14 s later
  assert.equal(types(b.datagram(LISTENER, good, C1, T0 + PREPARE_MAX_COOKIE_AGE_MS)), ['setup']);
});

test('global connection rate limit counts successful creations only (burst 1: the original)', () => {
  const b = broker({ connectionRateLimit: 10, connectionRateLimitBurst: 1 });
  assert.equal(types(connect(b, C1, T0)), ['setup', 'setMtu', 'send', 'run /hooks/up']);
  const refused = connect(b, C2, T0 + 9_999);
  assert.equal(sends(refused).slice(-1), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.is(b.counters.get('refused-rate-limit'), 1);
  // the refused client's next attempt comes from a new socket (port)
  assert.ok(types(connect(b, { ...C2, port: C2.port + 1 }, T0 + 10_000)).includes('setup'));
});

test('a PREPARE retransmit queued behind a refusal does not create a tunnel for the abandoned socket', () => {
  const b = broker({ connectionRateLimit: 1, connectionRateLimitBurst: 1 });
  connect(b, C1, T0);
  const cookie = m.decodeCookieReply((m.parseFrame(hex(sends(b.datagram(LISTENER, m.encodeCookieRequest(), C2, T0))[0])) as m.Frame).payload)!;
  const prepare = m.encodePrepare(cookie, m.utf8Encode('late'), 1, 1);
  assert.equal(types(b.datagram(LISTENER, prepare, C2, T0 + 500)), ['send']); // refused: rate limit
  // the retransmit (sent 3 s after the first) is processed after the limit has passed: refused too
  const stale = b.datagram(LISTENER, prepare, C2, T0 + 3500);
  assert.equal(types(stale), ['send']);
  assert.equal(sends(stale), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.is(b.counters.get('refused-stale-prepare'), 1);
  assert.is(b.tunnelCount, 1);
  // another endpoint is admitted meanwhile; 15 s after the refusal the endpoint is forgotten
  assert.ok(types(connect(b, { ...C2, port: C2.port + 1 }, T0 + 3600)).includes('setup'));
  b.tick(T0 + 61_000);
  assert.ok(types(connect(b, C2, T0 + 61_000)).includes('setup'));
});

test('per-IP rate limit refuses, runs the hook with ip port uuid, and does not record refusals', () => {
  const b = broker({ perIpCount: 2, perIpTime: 60 });
  const ip = '198.51.100.9';
  assert.ok(types(connect(b, { ip, port: 1 }, T0, { uuid: 'a' })).includes('setup'));
  assert.ok(types(connect(b, { ip, port: 2 }, T0 + 1000, { uuid: 'b' })).includes('setup'));
  const third = connect(b, { ip, port: 3 }, T0 + 2000, { uuid: 'c' });
  assert.not.ok(types(third).includes('setup'));
  assert.equal(sends(third).slice(-1), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.equal(jobs(third).map((j) => [j.path, ...j.args]), [['/hooks/rl', ip, '3', 'c']]);
  // other IPs are not affected
  assert.ok(types(connect(b, C2, T0 + 2000)).includes('setup'));
  // 60 s after the oldest admitted attempt, one more is allowed
  assert.ok(types(connect(b, { ip, port: 4 }, T0 + 60_001, { uuid: 'd' })).includes('setup'));
  assert.is(b.counters.get('refused-rate-limit-ip'), 1);
});

test('an ERROR on the listener from a tunnel endpoint (client gave up before a slow setup) closes the tunnel', () => {
  const b = broker();
  connect(b, C1, T0);
  const out = b.datagram(LISTENER, m.encodeError(0x13), C1, T0 + 20_000);
  assert.equal(types(out), ['run /hooks/pre-down', 'send', 'teardown', 'run /hooks/down']);
  assert.equal(logs(out).filter((l) => l.startsWith('warning')), []);
  assert.is(b.tunnelCount, 0);
  assert.is(b.counters.get('listener-tunnel-error'), 1);
  // from an endpoint without a tunnel it is ignored
  assert.equal(types(b.datagram(LISTENER, m.encodeError(0x13), C2, T0 + 20_000)), []);
});

test('a keepalive on the listener from an endpoint without a tunnel (broker restarted) gets ERROR 04, paced', () => {
  const b = broker();
  const ka = m.encodeClientKeepalive(7);
  assert.equal(sends(b.datagram(LISTENER, ka, C2, T0)), ['80 73 a7 01 03 01 04 00 00 00 00 00']);
  // at most once per endpoint per 5 s: nothing is amplified, a flood is not answered
  assert.equal(sends(b.datagram(LISTENER, ka, C2, T0 + 4_999)), []);
  assert.equal(sends(b.datagram(LISTENER, ka, C2, T0 + 5_000)), ['80 73 a7 01 03 01 04 00 00 00 00 00']);
  assert.is(b.counters.get('told-unknown-tunnel'), 2);
  assert.is(b.counters.get('listener-unknown-keepalive'), 1);
  // other message types from unknown endpoints stay ignored; so is a keepalive of a live tunnel
  assert.equal(sends(b.datagram(LISTENER, m.encodePmtuNotify(1400), C2, T0 + 6_000)), []);
  connect(b, C1, T0);
  assert.equal(sends(b.datagram(LISTENER, ka, C1, T0 + 10_000)), []);
  assert.is(b.tunnelCount, 1);
});

test('tunnel ids: pool exhaustion refuses; freed ids are reused last', () => {
  const b = broker({ maxTunnels: 2, tunnelIdBase: 7 });
  const ids = (out: Action[]): number[] => out.flatMap((a) => (a.type === 'setup' ? [a.setup.tunnelId] : []));
  assert.equal(ids(connect(b, C1, T0)), [7]);
  assert.equal(ids(connect(b, C2, T0)), [8]);
  const third = connect(b, { ip: '198.51.100.10', port: 1 }, T0);
  assert.equal(ids(third), []);
  assert.ok(logs(third).some((l) => l.includes('no free tunnel id')));
  assert.is(b.usage(1), 0xffff);
  b.datagram({ kind: 'tunnel', tunnelId: 7 }, m.encodeError(0x11), C1, T0 + 10);
  assert.equal(ids(connect(b, { ip: '198.51.100.10', port: 2 }, T0 + 20)), [7]);
});

test('usage: floor(active/max*65535); 0xFFFF for featureless clients once unique ids are required', () => {
  const b = broker();
  assert.is(b.usage(1), 0);
  connect(b, C1, T0);
  assert.is(b.usage(0), 255);
  // a legacy client whose session create fails with EEXIST
  const out = b.datagram(LISTENER, m.encodeCookieRequest(), C2, T0);
  const cookie = m.decodeCookieReply((m.parseFrame(sends(out).map(hex)[0]) as m.Frame).payload)!;
  const setup = b.datagram(LISTENER, m.encodeMessage(2, [...cookie, 1, 0x41]), C2, T0);
  assert.equal(types(setup), ['setup']);
  const failed = b.setupResult(101, { ok: false, stage: 'session', errno: EEXIST, error: 'File exists' }, T0);
  assert.equal(sends(failed), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.equal((failed.find((a) => a.type === 'send') as { socket: SocketRef }).socket, LISTENER);
  assert.ok(logs(failed).some((l) => l.startsWith('error') && l.includes('kernel session create failed: File exists')));
  assert.equal(sends(b.datagram(LISTENER, m.encodeUsageRequest(0), C2, T0)), ['80 73 a7 01 0a 02 ff ff 00 00 00 00']);
  assert.equal(sends(b.datagram(LISTENER, m.encodeMessage(0x0a, new Array(8).fill(0x55)), C2, T0)), ['80 73 a7 01 0a 02 ff ff 00 00 00 00']);
  assert.equal(sends(b.datagram(LISTENER, m.encodeUsageRequest(1), C2, T0)), ['80 73 a7 01 0a 02 00 ff 00 00 00 00']);
  // id 101 went back to the pool (after 102..355)
  assert.is(b.tunnelCount, 1);
});

test('setup failures: tunnel EEXIST retires the id; other errors return it', () => {
  const b = broker({ maxTunnels: 2 });
  let out = connect(b, C1, T0);
  // connect() already reported ok; use fresh clients with manual results
  const prepare = (client: Endpoint): number => {
    const o = b.datagram(LISTENER, m.encodeCookieRequest(), client, T0);
    const cookie = m.decodeCookieReply((m.parseFrame(hex(sends(o)[0])) as m.Frame).payload)!;
    out = b.datagram(LISTENER, m.encodePrepare(cookie, m.utf8Encode('u'), 1, 1), client, T0);
    const s = out.find((a) => a.type === 'setup');
    return s && s.type === 'setup' ? s.setup.tunnelId : -1;
  };
  assert.is(prepare(C2), 101);
  b.setupResult(101, { ok: false, stage: 'tunnel', errno: EEXIST, error: 'File exists' }, T0);
  assert.is(prepare(C2), -1, 'id 101 retired, 100 in use: pool exhausted');
  b.datagram(TUN100, m.encodeError(0x11), C1, T0);
  // (the refused client comes back from a new socket)
  const C3 = { ...C2, port: C2.port + 1 };
  assert.is(prepare(C3), 100);
  b.setupResult(100, { ok: false, stage: 'socket', errno: 0, error: 'bind: Address in use' }, T0);
  assert.is(prepare(C3), 100, 'a socket failure returns the id');
});

test('fixed pmtu (row 16\'): NTFY after TUNNEL and for every client probe, no broker probes', () => {
  const b = broker({ pmtu: 1400 });
  const out = connect(b, C1, T0);
  assert.equal(out.find((a) => a.type === 'setMtu'), { type: 'setMtu', tunnelId: 100, sessionId: 100, ifname: 'l2tp100-100', mtu: 1400 });
  assert.equal(sends(out).slice(-2), ['80 73 a7 01 04 08 00 00 00 64 00 00 00 01', '80 73 a7 01 09 02 05 78 00 00 00 00']);
  const probe = new Uint8Array(1306);
  probe.set(hex('80 73 a7 01 06 00'));
  assert.equal(sends(b.datagram(TUN100, probe, C1, T0 + 1)), ['80 73 a7 01 09 02 05 78 00 00 00 00']);
  assert.equal(sends(b.datagram(TUN100, probe, C1, T0 + 2)), ['80 73 a7 01 09 02 05 78 00 00 00 00']);
  // ACKs and NTFYs are ignored in fixed mode
  assert.equal(types(b.datagram(TUN100, m.encodePmtuAck(1000), C1, T0 + 3)), []);
  assert.equal(types(b.datagram(TUN100, m.encodePmtuNotify(1300), C1, T0 + 3)), []);
  for (let t = T0; t < T0 + 60_000; t += 1000) {
    for (const s of sends(b.tick(t))) assert.not.ok(s.startsWith('80 73 a7 01 06'), 'no probe in fixed mode');
  }
});

test('keepalive every 5 s with u16 sequence; timeout after 120 s of silence sends ERROR 03', () => {
  const b = broker({}, () => 0);
  connect(b, C1, T0);
  const keepalives: string[] = [];
  let t = T0;
  let closed: Action[] = [];
  while (t < T0 + 200_000 && closed.length === 0) {
    const out = b.tick(t);
    keepalives.push(...sends(out).filter((s) => s.startsWith('80 73 a7 01 05')));
    if (out.some((a) => a.type === 'teardown')) closed = out;
    t = b.nextDeadline();
  }
  assert.equal(keepalives.slice(0, 3), [0, 1, 2].map((s) => `80 73 a7 01 05 02 00 0${s} 00 00 00 00`));
  // first keepalive after 1 s (random 0), then every 5 s; close at the first one after 120 s
  assert.is(t - T0 > 120_000, true);
  assert.equal(sends(closed), ['80 73 a7 01 03 01 03 00 00 00 00 00']);
  assert.equal(types(closed), ['run /hooks/pre-down', 'send', 'teardown', 'run /hooks/down']);
  assert.is(keepalives.length, 24);
  assert.is(b.counters.get('tunnels-timed-out'), 1);
});

test('another client\'s handshake caught by a tunnel socket (bind-connect window) is served via the listener', () => {
  const b = broker();
  connect(b, C1, T0);
  const out = b.datagram(TUN100, m.encodeCookieRequest(), C2, T0 + 10);
  const reply = out.find((a) => a.type === 'send');
  assert.ok(reply && reply.type === 'send');
  assert.equal(reply.socket, LISTENER);
  assert.equal(reply.to, C2);
  assert.ok(toHex(reply.data).startsWith('80 73 a7 01 01 08'));
  assert.is(b.counters.get('handshake-on-tunnel-socket'), 1);
  assert.is(b.counters.get('drop-wrong-source'), 0);
  // its PREPARE too: a new tunnel for C2
  const cookie = m.decodeCookieReply((m.parseFrame(reply.data) as m.Frame).payload)!;
  assert.ok(types(b.datagram(TUN100, m.encodePrepare(cookie, m.utf8Encode('c2'), 1, 1), C2, T0 + 20)).includes('setup'));
});

test('any message refreshes liveness; messages from another endpoint do not', () => {
  const b = broker({}, () => 0);
  connect(b, C1, T0);
  let t = T0;
  const stranger = { ip: C1.ip, port: 1 };
  for (; t < T0 + 300_000; t += 1000) {
    if (t % 30_000 < 1000) b.datagram(TUN100, m.encodeClientKeepalive(1), C1, t);
    const out = b.tick(t);
    assert.not.ok(out.some((a) => a.type === 'teardown'), `closed at ${t - T0}`);
  }
  const wrong = b.datagram(TUN100, m.encodeClientKeepalive(1), stranger, t);
  assert.ok(logs(wrong).some((l) => l.startsWith('warning') && l.includes('not the tunnel')));
  let closedAt = 0;
  for (let u = t; u < t + 130_000 && !closedAt; u += 1000) {
    if (u % 10_000 < 1000) b.datagram(TUN100, m.encodeClientKeepalive(2), stranger, u);
    if (b.tick(u).some((a) => a.type === 'teardown')) closedAt = u;
  }
  assert.ok(closedAt > 0, 'stranger messages do not keep the tunnel alive');
});

test('broker PMTU probing: 1500x4, 1492x4 ... one per second; stops at the acked size; reprobes after 500-699 s', () => {
  const b = broker({}, () => 0);
  connect(b, C1, T0);
  const probeSizes: number[] = [];
  const record = (out: Action[]): void => {
    for (const a of out) if (a.type === 'send' && a.data[4] === 6) probeSizes.push(a.data.length + 28);
  };
  // random 0: the initial delay is 0 and the probe still goes out (the original never probed)
  record(b.tick(T0));
  assert.equal(probeSizes, [1500]);
  for (let t = T0 + 1000; t <= T0 + 12_000; t += 1000) record(b.tick(t));
  assert.equal(probeSizes, [1500, 1500, 1500, 1500, 1492, 1492, 1492, 1492, 1476, 1476, 1476, 1476, 1450]);
  // the path passes 1450: ACK = 1422 bytes of UDP payload
  const ack = b.datagram(TUN100, m.encodePmtuAck(1422), C1, T0 + 12_100);
  assert.equal(sends(ack), [toHex(m.encodePmtuNotify(1396))]);
  assert.equal(ack.find((a) => a.type === 'setMtu'), { type: 'setMtu', tunnelId: 100, sessionId: 100, ifname: 'l2tp100-100', mtu: 1396 });
  assert.equal(jobs(ack).map((j) => [j.path, ...j.args]), [['/hooks/mtu', '100', '100', 'l2tp100-100', '1446', '1396', 'foobar']]);
  // a smaller ACK afterwards changes nothing
  assert.equal(types(b.datagram(TUN100, m.encodePmtuAck(1306), C1, T0 + 12_200)), []);
  const before = probeSizes.length;
  record(b.tick(T0 + 13_000));
  assert.is(probeSizes.length, before, 'stopped after the acknowledged size');
  for (let t = T0 + 14_000; t < T0 + 13_000 + 500_000; t += 5000) {
    b.datagram(TUN100, m.encodeClientKeepalive(t), C1, t);
    record(b.tick(t));
  }
  assert.is(probeSizes.length, before, 'sleeping 500 s');
  record(b.tick(T0 + 13_000 + 500_000));
  assert.equal(probeSizes.slice(before), [1500], 'next round starts again at 1500');
});

test('PMTU probing without any ACK sleeps after one full run instead of looping forever', () => {
  const b = broker({}, () => 0);
  connect(b, C1, T0);
  let probes = 0;
  for (let t = T0; t < T0 + 400_000; t += 1000) probes += b.tick(t).filter((a) => a.type === 'send' && a.data[4] === 6).length;
  assert.is(probes, 24);
});

test('peer NTFY lowers the MTU (min with our measurement, floor 1280)', () => {
  const b = broker();
  connect(b, C1, T0);
  const out = b.datagram(TUN100, m.encodePmtuNotify(1400), C1, T0 + 1);
  assert.equal(out.find((a) => a.type === 'setMtu'), { type: 'setMtu', tunnelId: 100, sessionId: 100, ifname: 'l2tp100-100', mtu: 1400 });
  assert.equal(jobs(out)[0].args, ['100', '100', 'l2tp100-100', '1446', '1400', 'foobar']);
  const low = b.datagram(TUN100, m.encodePmtuNotify(1000), C1, T0 + 2);
  assert.equal((low.find((a) => a.type === 'setMtu') as { mtu: number }).mtu, 1280);
  assert.equal(types(b.datagram(TUN100, m.encodePmtuNotify(900), C1, T0 + 3)), [], 'still 1280: no change');
});

test('reliable messages of unknown type are acked; LIMIT of another type is acked and ignored', () => {
  const b = broker();
  connect(b, C1, T0);
  // 8 bytes in (reliable messages are not padded): the REL_ACK's padding is cut to 8 bytes
  assert.equal(sends(b.datagram(TUN100, m.encodeMessage(0x90, [0x12, 0x34]), C1, T0)), ['80 73 a7 01 08 02 12 34']);
  assert.equal(sends(b.datagram(TUN100, m.encodeMessage(0x90, [0x12, 0x34, 0, 0, 0, 0]), C1, T0)), ['80 73 a7 01 08 02 12 34 00 00 00 00']);
  const other = b.datagram(TUN100, m.encodeMessage(0x80, [0, 9, 2, 4, 0, 0, 1, 0]), C1, T0);
  assert.equal(types(other), ['send']);
});

test('socket errors: EMSGSIZE ignored, 10 others close with ERROR 04, received messages forgive one each', () => {
  const b = broker();
  connect(b, C1, T0);
  for (let i = 0; i < 50; i++) assert.equal(types(b.socketError(TUN100, EMSGSIZE, 'Message too long', T0)), []);
  for (let i = 0; i < 9; i++) b.socketError(TUN100, ECONNREFUSED, 'Connection refused', T0);
  b.datagram(TUN100, m.encodeClientKeepalive(1), C1, T0);
  assert.equal(types(b.socketError(TUN100, ECONNREFUSED, 'Connection refused', T0)), []);
  const out = b.socketError(TUN100, ECONNREFUSED, 'Connection refused', T0);
  assert.equal(sends(out), ['80 73 a7 01 03 01 04 00 00 00 00 00']);
  assert.ok(types(out).includes('teardown'));
  assert.is(b.tunnelCount, 0);
});

test('shutdown closes every tunnel with ERROR 02 and ignores further input', () => {
  const b = broker();
  connect(b, C1, T0);
  connect(b, C2, T0);
  const out = b.shutdown(T0 + 1);
  // in phases over all tunnels: every client told first, then the pre-down hooks, the kernel
  // teardowns, and the down hooks (each waiting for its own tunnel's teardown)
  assert.equal(types(out), [
    'send', 'send', 'run /hooks/pre-down', 'run /hooks/pre-down', 'teardown', 'teardown', 'run /hooks/down', 'run /hooks/down',
  ]);
  assert.equal(sends(out), ['80 73 a7 01 03 01 02 00 00 00 00 00', '80 73 a7 01 03 01 02 00 00 00 00 00']);
  assert.equal(jobs(out).map((j) => `${j.path} ${j.args.slice(0, 3).join(' ')}`), [
    '/hooks/pre-down 100 100 l2tp100-100', '/hooks/pre-down 101 101 l2tp101-101',
    '/hooks/down 100 100 l2tp100-100', '/hooks/down 101 101 l2tp101-101',
  ]);
  assert.equal(out.flatMap((a) => (a.type === 'run' ? [a.afterKernel ?? '-'] : [])), ['-', '-', 100, 101]);
  assert.equal(out.flatMap((a) => (a.type === 'teardown' ? [a.tunnelId] : [])), [100, 101]);
  assert.equal(b.datagram(LISTENER, m.encodeCookieRequest(), C1, T0 + 2), []);
  assert.is(b.tunnelCount, 0);
  assert.is(b.nextDeadline(), 60_000, 'only the housekeeping deadline is left');
});

test('log_ip_addresses=false keeps client IPs out of logs and hook-argument logs', () => {
  const b = broker({ logIpAddresses: false, perIpCount: 1, perIpTime: 100 });
  const all: Action[] = [];
  all.push(...connect(b, C1, T0));
  all.push(...b.datagram(TUN100, m.encodeClientKeepalive(1), { ip: '198.51.100.99', port: 1 }, T0));
  all.push(...connect(b, { ip: C1.ip, port: 2 }, T0 + 1));
  all.push(...b.datagram(LISTENER, hex('00 01 02'), C1, T0));
  all.push(...b.shutdown(T0 + 2));
  assert.ok(logs(all).length > 3);
  for (const l of logs(all)) assert.not.ok(/198\.51\.100/.test(l), l);
  const js = jobs(all);
  assert.is(js.length, 4);
  for (const j of js) {
    assert.ok(j.args.includes('198.51.100.7'), 'hooks still get the real address');
    assert.not.ok(j.logArgs.join(' ').includes('198.51.100'), j.logArgs.join(' '));
  }
});

test('random datagrams never throw; drops are counted per reason', () => {
  const b = broker({ perIpCount: 3, perIpTime: 5 });
  let tunnel: SocketRef = TUN100;
  const reconnect = (now: number): void => {
    for (const a of connect(b, C1, now)) if (a.type === 'setup') tunnel = { kind: 'tunnel', tunnelId: a.setup.tunnelId };
  };
  reconnect(T0);
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const header = [0x80, 0x73, 0xa7, 0x01];
  for (let i = 0; i < 20_000; i++) {
    const len = rnd(40);
    const d = Uint8Array.from({ length: len }, () => rnd(256));
    if (i % 2 === 0 && len >= 6) {
      d.set(header.slice(0, Math.min(4, len)));
      d[4] = [1, 2, 3, 5, 6, 7, 8, 9, 10, 0x80, 0x81, 0x42][rnd(12)];
      d[5] = rnd(3) === 0 ? rnd(256) : rnd(Math.max(1, len - 5));
    }
    const sock = rnd(2) === 0 ? LISTENER : tunnel;
    const from = rnd(4) === 0 ? { ip: '198.51.100.77', port: rnd(65536) } : C1;
    const now = T0 + i * 10;
    b.datagram(sock, d, from, now);
    if (i % 100 === 0) b.tick(now);
    if (i % 1000 === 0) b.socketError(tunnel, ECONNREFUSED, 'Connection refused', now);
    if (b.tunnelCount === 0) reconnect(now);
  }
  const c = b.counters.snapshot();
  assert.ok(c['datagrams'] > 20_000);
  assert.ok((c['tunnels-created'] ?? 0) > 1, 'random ERRORs closed tunnels and new ones came up');
  assert.ok((c['drop-short'] ?? 0) > 0 && (c['drop-magic'] ?? 0) > 0 && (c['drop-length'] ?? 0) > 0, JSON.stringify(c));
  assert.ok((c['drop-short-payload'] ?? 0) > 0 && (c['cookies-issued'] ?? 0) > 0, JSON.stringify(c));
  assert.match(b.counters.line(), /^counters: .*datagrams=200\d\d /);
});

test('status summary: counts by state and port, a few lines whatever the number of tunnels', () => {
  const b = broker({ ports: [8942, 53] });
  connect(b, C1, T0);
  b.datagram(TUN100, m.encodeClientKeepalive(0), C1, T0 + 5_000);
  connect(b, C2, T0, { uuid: 'second' });
  b.tick(T0 + 65_000);
  const lines = b.statusSummary(T0 + 65_000);
  assert.equal(lines, [
    '2/256 tunnels, 254 ids free',
    'up 2 (heard from 1, counted in usage 1), being set up 0; by port 8942: 2, 53: 0; fd budget unlimited; ' +
      'longest silence of an up tunnel 65s',
    'per tunnel: tunneldigger-broker ctl tunnels [--json]',
  ]);
  for (let i = 0; i < 200; i++) connect(b, { ip: '198.51.100.9', port: 20000 + i }, T0 + 70_000, { uuid: `u${i}` });
  assert.is(b.statusSummary(T0 + 70_000).length, 3, 'no line per tunnel');
  assert.match(b.statusSummary(T0 + 70_000)[1], /^up 202 /);
});

test.run();
