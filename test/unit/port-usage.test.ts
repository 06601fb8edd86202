// Per-port USAGE (src/broker/port-usage.ts, docs/scaling.md "The kernel's cost per port"): a
// listener port reports its own tunnels scaled to its share of max_tunnels, never below the
// broker-wide figure; our client's selection then spreads over the ports of one broker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import type { Endpoint } from '../../src/native.js';
import type { Action, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore } from '../../src/broker/broker.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { PortUsage, tieBreak } from '../../src/broker/port-usage.js';
import { chooseBroker } from '../../src/client/selection.js';
import { MessageType } from '../../src/protocol/constants.js';
import { COOKIE_TICK_MS } from '../../src/protocol/cookie.js';
import * as m from '../../src/protocol/messages.js';

const KEY = Uint8Array.from({ length: 32 }, (_, i) => i);
const { EEXIST, EMSGSIZE } = osConstants.errno;
const T0 = 3 * COOKIE_TICK_MS + 5;
const PORTS = [8942, 8943, 8944];

function broker(over: Partial<BrokerConfig> = {}): BrokerCore {
  const cfg: BrokerConfig = {
    address: '203.0.113.1', ports: PORTS, interface: 'eth0', maxTunnels: 30, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'error', logIpAddresses: true,
    hooks: { sessionUp: '', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' },
    ...over,
  };
  return new BrokerCore(cfg, {
    key: KEY, mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0, random: () => 0.5,
    errno: { EEXIST, EMSGSIZE }, tcPath: '/usr/sbin/tc',
  });
}

const listener = (port: number): SocketRef => ({ kind: 'listener', port });
const sent = (out: Action[]): Uint8Array[] => out.flatMap((a) => (a.type === 'send' ? [a.data] : []));

/** The USAGE answer `from` gets on `socket`. */
function usageOn(b: BrokerCore, socket: SocketRef, from: Endpoint): number {
  const out = sent(b.datagram(socket, m.encodeUsageRequest(1), from, T0));
  assert.is(out.length, 1);
  const f = m.parseFrame(out[0]!) as m.Frame;
  assert.is(f.type, MessageType.USAGE);
  assert.is(out[0]!.length, 12, 'reply layout unchanged: 6-byte header, u16 usage, padding');
  return (f.payload[0]! << 8) | f.payload[1]!;
}

/** COOKIE + PREPARE on `port`, setup ok: one live tunnel there. Returns its tunnel id. */
function tunnelOn(b: BrokerCore, port: number, client: Endpoint): number {
  const c = sent(b.datagram(listener(port), m.encodeCookieRequest(), client, T0));
  const cookie = m.decodeCookieReply((m.parseFrame(c[0]!) as m.Frame).payload)!;
  const out = b.datagram(listener(port), m.encodePrepare(cookie, m.utf8Encode(`u-${client.port}`), 1, 1), client, T0);
  const setup = out.find((a) => a.type === 'setup');
  assert.ok(setup && setup.type === 'setup', 'tunnel admitted');
  assert.is(setup.setup.port, port);
  b.setupResult(setup.setup.tunnelId, { ok: true }, T0);
  return setup.setup.tunnelId;
}

const client = (i: number): Endpoint => ({ ip: '198.51.100.9', port: 40000 + i });
const asker: Endpoint = { ip: '192.0.2.50', port: 5000 };

test('PortUsage: a port above its share reports more; never below the broker-wide figure', () => {
  const u = new PortUsage();
  for (let i = 0; i < 6; i++) u.change(1, 8942);
  u.change(1, 8943);
  assert.is(u.live(), 7);
  assert.is(u.live(8942), 6);
  assert.is(u.live(8944), 0);
  // max 30, 3 ports: 8942 holds 6 of its 10 -> 18/30; the others report the broker's 7/30
  assert.is(u.figure(30, 3, 8942), Math.floor((18 / 30) * 0xffff));
  assert.is(u.figure(30, 3, 8943), Math.floor((7 / 30) * 0xffff));
  assert.is(u.figure(30, 3, 8944), Math.floor((7 / 30) * 0xffff));
  assert.is(u.figure(30, 3), Math.floor((7 / 30) * 0xffff), 'no port: broker-wide');
  // one port: exactly the broker-wide figure
  assert.is(u.figure(30, 1, 8942), Math.floor((7 / 30) * 0xffff));
  // a port over its share is capped at full; so is a full broker on every port
  for (let i = 0; i < 6; i++) u.change(1, 8942);
  assert.is(u.figure(30, 3, 8942), 0xffff);
  for (let i = 0; i < 17; i++) u.change(1, 8944);
  assert.is(u.live(), 30);
  assert.is(u.figure(30, 3, 8943), 0xffff);
  // going down
  for (let i = 0; i < 12; i++) u.change(-1, 8942);
  assert.is(u.live(8942), 0);
  assert.is(u.figure(30, 3, 8942), Math.floor((18 / 30) * 0xffff));
  assert.is(u.figure(30, 3, 8944), 0xffff, '17 of a 10-tunnel share');
});

/** value is figure plus a tie-break below one tunnel's worth (0xffff / max_tunnels). */
function near(value: number, figure: number, maxTunnels: number, what: string): void {
  assert.ok(value >= figure && value < figure + Math.floor(0xffff / maxTunnels), `${what}: ${value} vs ${figure}`);
}

test('broker: USAGE on each listener reflects the tunnels on that port; one port behaves as before', () => {
  const b = broker();
  for (const p of PORTS) near(usageOn(b, listener(p), asker), 0, 30, `idle ${p}`);
  for (let i = 0; i < 3; i++) tunnelOn(b, 8942, client(i));
  near(usageOn(b, listener(8942), asker), Math.floor((9 / 30) * 0xffff), 30, '3 tunnels on a 10-tunnel share');
  near(usageOn(b, listener(8943), asker), Math.floor((3 / 30) * 0xffff), 30, 'the broker-wide 3/30');
  near(usageOn(b, listener(8944), asker), Math.floor((3 / 30) * 0xffff), 30, 'the broker-wide 3/30');
  // the same USAGE arriving on a tunnel socket is answered for that tunnel's port
  near(usageOn(b, { kind: 'tunnel', tunnelId: 100 }, client(0)), Math.floor((9 / 30) * 0xffff), 30, 'tunnel socket');
  // the same endpoint asking again gets the same answer
  assert.is(usageOn(b, listener(8943), asker), usageOn(b, listener(8943), asker));
  // metrics and the broker-wide view stay broker-wide
  assert.is(b.usage(1), Math.floor((3 / 30) * 0xffff));

  const one = broker({ ports: [8942] });
  for (let i = 0; i < 3; i++) tunnelOn(one, 8942, client(i));
  assert.is(usageOn(one, listener(8942), asker), Math.floor((3 / 30) * 0xffff), 'one port: exact, no tie-break');
});

test('broker: draining and the unique-session-id rule still answer 0xFFFF on every port', () => {
  const b = broker();
  tunnelOn(b, 8942, client(1));
  b.draining = true;
  for (const p of PORTS) assert.is(usageOn(b, listener(p), asker), 0xffff);
});

test('clients listing the ports of one broker spread over them (lowest usage, ties to the earlier: ours and the original -a)', () => {
  const b = broker({ maxTunnels: 300 });
  const held = new Map<number, number>(PORTS.map((p) => [p, 0]));
  for (let i = 0; i < 60; i++) {
    // a client with "-b broker:8942 -b broker:8943 -b broker:8944" asks each port, picks the lowest
    const ready = PORTS.map((port, index) => ({ index, port, usage: usageOn(b, listener(port), client(1000 + i)) }));
    const pick = chooseBroker(ready, 'usage', () => 0);
    tunnelOn(b, pick.port, client(i));
    held.set(pick.port, held.get(pick.port)! + 1);
  }
  assert.equal([...held.values()], [20, 20, 20]);
});

test('a restarted broker: clients that all see every port idle still spread (tie-break per endpoint)', () => {
  const b = broker({ maxTunnels: 3000 });
  // 300 returning routers ask all three ports before any of them has a tunnel again
  const picks = Array.from({ length: 300 }, (_, i) => {
    const ready = PORTS.map((port, index) => ({ index, port, usage: usageOn(b, listener(port), client(i)) }));
    return chooseBroker(ready, 'usage', () => 0).port;
  });
  picks.forEach((port, i) => tunnelOn(b, port, client(i)));
  for (const p of PORTS) {
    const n = picks.filter((x) => x === p).length;
    assert.ok(n >= 70 && n <= 130, `port ${p}: ${n} of 300`);
  }
});

test('tieBreak: below one tunnel\'s worth, never full, off when a tunnel is worth less than 2', () => {
  for (let i = 0; i < 200; i++) {
    const v = tieBreak(1000, 256, '198.51.100.7', 40000 + i, 8942, 12345);
    assert.ok(v >= 1000 && v < 1000 + 255, String(v));
  }
  const spread = new Set(Array.from({ length: 200 }, (_, i) => tieBreak(0, 256, '198.51.100.7', 40000 + i, 8942, 1)));
  assert.ok(spread.size > 100, `${spread.size} distinct values`);
  assert.is(tieBreak(0xffff, 256, '198.51.100.7', 40000, 8942, 1), 0xffff);
  assert.ok(tieBreak(0xfffe, 256, '198.51.100.7', 40000, 8942, 1) <= 0xfffe);
  assert.is(tieBreak(500, 40000, '198.51.100.7', 40000, 8942, 1), 500);
  // salt and listener port change the answer for the same endpoint
  const a = Array.from({ length: 20 }, (_, i) => tieBreak(0, 256, '198.51.100.7', 40000 + i, 8942, 1));
  const c = Array.from({ length: 20 }, (_, i) => tieBreak(0, 256, '198.51.100.7', 40000 + i, 8943, 1));
  assert.not.equal(a, c);
});

test.run();
