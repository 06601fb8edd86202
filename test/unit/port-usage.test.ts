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
import { PortUsage } from '../../src/broker/port-usage.js';
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

test('broker: USAGE on each listener reflects the tunnels on that port; one port behaves as before', () => {
  const b = broker();
  for (const p of PORTS) assert.is(usageOn(b, listener(p), asker), 0);
  for (let i = 0; i < 3; i++) tunnelOn(b, 8942, client(i));
  const on42 = usageOn(b, listener(8942), asker);
  const on43 = usageOn(b, listener(8943), asker);
  assert.is(on42, Math.floor((9 / 30) * 0xffff), '3 tunnels on a 10-tunnel share');
  assert.is(on43, Math.floor((3 / 30) * 0xffff), 'the broker-wide 3/30');
  assert.is(usageOn(b, listener(8944), asker), on43);
  // the same USAGE arriving on a tunnel socket is answered for that tunnel's port
  assert.is(usageOn(b, { kind: 'tunnel', tunnelId: 100 }, client(0)), on42);
  // metrics and the broker-wide view stay broker-wide
  assert.is(b.usage(1), Math.floor((3 / 30) * 0xffff));

  const one = broker({ ports: [8942] });
  for (let i = 0; i < 3; i++) tunnelOn(one, 8942, client(i));
  assert.is(usageOn(one, listener(8942), asker), Math.floor((3 / 30) * 0xffff));
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

test.run();
