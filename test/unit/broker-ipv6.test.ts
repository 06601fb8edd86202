// The broker over IPv6 (issue 9 item 1): listeners per address and port, per-tunnel sockets of
// the listener's family, cookies bound to the full address and port, the per-/64 rate limit,
// hook arguments, usage shared across families, and the log lines (brackets, redaction).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Endpoint } from '../../src/native.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import * as m from '../../src/protocol/messages.js';
import { CFG, CLIENT, ERRNO, handshake, hexOf, refuseThenShutdown, rig, throwOnSendToPort } from './broker-fakes.js';

/** A dual-stack broker: fd 10 = 203.0.113.1:8942, fd 11 = [2001:db8::1]:8942. */
const DUAL: BrokerConfig = { ...CFG, address: '203.0.113.1,2001:db8::1', ports: [8942] };
const V6: Endpoint = { ip: '2001:db8:0:7::7', port: 40000, family: 6 };
const V4_FD = 10;
const V6_FD = 11;

test('dual stack: one listener per address and port, each of its own family, logged with brackets', () => {
  const r = rig({ ...DUAL, ports: [8942, 53] });
  assert.is(r.driver.openListeners(), 4);
  assert.equal(r.native.calls.filter((c) => /^(socket|bind )/.test(c)), [
    'socket=10', 'bind 10 203.0.113.1:8942', 'socket=11', 'bind 11 203.0.113.1:53',
    'socket6=12', 'bind 12 [2001:db8::1]:8942', 'socket6=13', 'bind 13 [2001:db8::1]:53',
  ]);
  assert.ok(r.loop.logs.includes('info: listening on [2001:db8::1]:53 (interface eth0), receive buffer 8388608 bytes'), r.loop.logs.join('\n'));
  assert.equal(r.native.calls.filter((c) => c.startsWith('bindtodevice')).length, 4, 'SO_BINDTODEVICE on every listener');
});

test('a PREPARE over IPv6: the tunnel socket is IPv6, bound to the v6 listener address, connected, probe mode', () => {
  const r = rig(DUAL);
  r.driver.openListeners();
  r.native.calls = [];
  handshake(r, V6, 'six', V6_FD);
  assert.equal(r.native.sent[0].to, '[2001:db8:0:7::7]:40000', 'the COOKIE went back through the v6 listener');
  assert.is(r.native.sent[0].fd, V6_FD);
  assert.equal(r.native.calls.slice(0, 6), [
    'socket6=12', 'reuseport 12', 'bindtodevice 12 eth0', 'bind 12 [2001:db8::1]:8942', 'connect 12 [2001:db8:0:7::7]:40000',
    'pmtuprobe 12',
  ]);
  assert.equal(r.kernel.calls.slice(0, 2), ['createTunnel 100 peer 1 fd 12', 'createSession 100/100 peer 1 l2tp100-100']);
  assert.equal(r.native.sent.at(-1), { fd: 12, hex: '80 73 a7 01 04 08 00 00 00 64 00 00 00 01' }, 'TUNNEL on the tunnel socket');
  // hook arguments: the IPv6 address where the original puts the IPv4 one (5th), ports after it
  assert.ok(r.native.calls.includes('spawn /up 100 100 l2tp100-100 1426 2001:db8:0:7::7 40000 8942 six 8942'), r.native.calls.join('\n'));
  assert.ok(r.loop.logs.some((l) => l.includes('tunnel 100 (uuid six, [2001:db8:0:7::7]:40000) up')), r.loop.logs.join('\n'));
  // a refusal goes back through the v6 listener (the one the PREPARE came in on)
  r.kernel.failSession = -ERRNO.EEXIST;
  handshake(r, { ...V6, port: 40001 }, 'again', V6_FD);
  assert.equal(r.native.sent.at(-1), { fd: V6_FD, hex: '80 73 a7 01 03 00 00 00 00 00 00 00', to: '[2001:db8:0:7::7]:40001' });
});

test('v4 and v6 clients at once: each on its own family, usage shared across families', () => {
  const r = rig({ ...DUAL, maxTunnels: 4 });
  r.driver.openListeners();
  handshake(r, CLIENT, 'four', V4_FD);
  handshake(r, V6, 'six', V6_FD);
  assert.ok(r.native.calls.includes('bind 12 203.0.113.1:8942'), r.native.calls.join('\n'));
  assert.ok(r.native.calls.includes('bind 14 [2001:db8::1]:8942'), r.native.calls.join('\n'));
  assert.is(r.driver.tunnelSocketCount, 2);
  // two of four tunnels: usage 0x7fff, the same over either family
  for (const [fd, from] of [[V4_FD, { ip: '198.51.100.9', port: 1 }], [V6_FD, { ip: '2001:db8:9::9', port: 1 }]] as const) {
    r.deliver(fd, m.encodeUsageRequest(1), from);
    assert.equal(r.native.sent.at(-1)!.hex, '80 73 a7 01 0a 02 7f ff 00 00 00 00');
  }
});

test('PMTU over IPv6: 1426 by default, probes 20 bytes smaller, a 1400-byte path ends at 1326 at both ends', () => {
  const r = rig(DUAL);
  r.driver.openListeners();
  handshake(r, V6, 'six', V6_FD);
  const TUN = 12;
  assert.ok(r.kernel.calls.includes('setLinkMtu l2tp100-100 1426'), r.kernel.calls.join('\n'));
  const sizes = (): number[] => r.native.sent.filter((x) => x.fd === TUN && x.hex.startsWith('80 73 a7 01 06')).map((x) => x.hex.split(' ').length);
  r.loop.advance(5_000);
  assert.equal([...new Set(sizes())], [1452], 'the 1500-byte probe carries 1452 bytes over IPv6');
  // the path carries 1400 bytes: the client acknowledges the 1400 probe (UDP payload 1352)
  r.kernel.calls = [];
  r.deliver(TUN, m.encodePmtuAck(1352), V6);
  assert.equal(r.native.sent.at(-1)!.hex, hexOf(m.encodePmtuNotify(1326)));
  assert.ok(r.kernel.calls.includes('setLinkMtu l2tp100-100 1326'), r.kernel.calls.join('\n'));
  r.kernel.calls = [];
  r.deliver(TUN, m.encodePmtuNotify(1326), V6); // the client measured the same path
  assert.not.ok(r.kernel.calls.some((c) => c.startsWith('setLinkMtu')), 'no change: both at 1326');
  // an ACK larger than any IPv6 probe (1472 + 48 > 1500) is a lying peer
  r.deliver(TUN, m.encodePmtuAck(1472), V6);
  assert.is(r.core.counters.get('drop-pmtud-ack-too-large'), 1);
  // the whole run over IPv6 ends with 1280 (fits every IPv6 link)
  const s = rig(DUAL);
  s.driver.openListeners();
  handshake(s, V6, 'six', V6_FD);
  s.loop.advance(40_000);
  const run = [...new Set(s.native.sent.filter((x) => x.fd === TUN && x.hex.startsWith('80 73 a7 01 06')).map((x) => x.hex.split(' ').length + 48))];
  assert.equal(run, [1500, 1492, 1476, 1450, 1400, 1334, 1280]);
  // ... and an IPv4 tunnel next to it is as before: 1446, 1500-byte probes of 1472 bytes
  const v4 = rig(DUAL);
  v4.driver.openListeners();
  handshake(v4, CLIENT, 'four', V4_FD);
  assert.ok(v4.kernel.calls.includes('setLinkMtu l2tp100-100 1446'));
  v4.loop.advance(5_000);
  assert.ok(v4.native.sent.some((x) => x.fd === TUN && x.hex.startsWith('80 73 a7 01 06') && x.hex.split(' ').length === 1472));
});

test('a cookie binds the full IPv6 address and port: another address in the same /64 or another port is refused', () => {
  const r = rig(DUAL);
  r.driver.openListeners();
  r.deliver(V6_FD, m.encodeCookieRequest(), V6);
  const cookie = Uint8Array.from(r.native.sent.at(-1)!.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  const prepare = m.encodePrepare(cookie, m.utf8Encode('thief'), 1, 1);
  r.deliver(V6_FD, prepare, { ...V6, ip: '2001:db8:0:7::8' });
  r.deliver(V6_FD, prepare, { ...V6, port: 40001 });
  r.deliver(V6_FD, prepare, { ...V6, ip: '2001:db8:1:7::7' }); // same interface id, other prefix
  assert.is(r.core.counters.get('drop-bad-cookie'), 3);
  assert.is(r.driver.tunnelSocketCount, 0);
  r.deliver(V6_FD, prepare, V6);
  assert.is(r.driver.tunnelSocketCount, 1, 'the address it was issued to gets its tunnel');
});

test('per-IP limit: IPv6 clients count per /64 (rotating addresses does not help), the prefix is configurable', () => {
  const limited = (prefix?: number) => rig({ ...DUAL, perIpCount: 1, perIpTime: 60, connectionRateLimit: 0, perIpIpv6Prefix: prefix,
    hooks: { ...CFG.hooks, connectionRateLimit: '/rl' } });
  const r = limited();
  r.native.behaviour.set('/rl', { ms: 10, code: 0 });
  r.driver.openListeners();
  handshake(r, { ip: '2001:db8:0:7::1', port: 1000 }, 'a', V6_FD);
  handshake(r, { ip: '2001:db8:0:7:ffff::2', port: 1000 }, 'b', V6_FD); // same /64
  handshake(r, { ip: '2001:db8:0:8::1', port: 1000 }, 'c', V6_FD); // next /64
  handshake(r, { ip: '198.51.100.1', port: 1000 }, 'd', V4_FD);
  handshake(r, { ip: '198.51.100.2', port: 1000 }, 'e', V4_FD); // IPv4: per address, as before
  assert.is(r.driver.tunnelSocketCount, 4);
  assert.is(r.core.counters.get('refused-rate-limit-ip'), 1);
  assert.ok(r.loop.logs.some((l) => l === 'info: refused a tunnel for uuid b ([2001:db8:0:7:ffff::2]:1000): ' +
    'more than 1 requests from its /64 (IPv6 prefix) within 60 s'), r.loop.logs.join('\n'));
  // the rate-limit hook gets the client's own address; its queue is the prefix
  assert.ok(r.native.calls.includes('spawn /rl 2001:db8:0:7:ffff::2 1000 b'), r.native.calls.join('\n'));
  const p128 = limited(128);
  p128.driver.openListeners();
  handshake(p128, { ip: '2001:db8:0:7::1', port: 1000 }, 'a', V6_FD);
  handshake(p128, { ip: '2001:db8:0:7::2', port: 1000 }, 'b', V6_FD);
  assert.is(p128.driver.tunnelSocketCount, 2, '/128: per address');
  const p48 = limited(48);
  p48.driver.openListeners();
  handshake(p48, { ip: '2001:db8:0:7::1', port: 1000 }, 'a', V6_FD);
  handshake(p48, { ip: '2001:db8:0:8::1', port: 1000 }, 'b', V6_FD);
  assert.is(p48.driver.tunnelSocketCount, 1, '/48: both in one prefix');
});

test('reload: a new IPv6 prefix length applies at once (a new limiter), a new address list needs a restart', () => {
  const r = rig({ ...DUAL, perIpCount: 1, perIpTime: 60 });
  r.driver.openListeners();
  handshake(r, { ip: '2001:db8:0:7::1', port: 1000 }, 'a', V6_FD);
  handshake(r, { ip: '2001:db8:0:7::2', port: 1000 }, 'b', V6_FD);
  assert.is(r.driver.tunnelSocketCount, 1, '/64: the second is refused');
  const res = r.core.reconfigure({ ...DUAL, perIpCount: 1, perIpTime: 60, perIpIpv6Prefix: 128, address: '2001:db8::1' });
  assert.ok(res.changed.includes('rate limits'), res.changed.join(', '));
  assert.equal(res.needRestart, ['broker.address']);
  assert.is(r.core.cfg.perIpIpv6Prefix, 128);
  r.loop.advance(20_000); // past the 15 s refusal hold of the refused endpoint
  handshake(r, { ip: '2001:db8:0:7::3', port: 1000 }, 'c', V6_FD);
  assert.is(r.driver.tunnelSocketCount, 2, '/128 now: another address of that /64 gets its tunnel');
});

test('an IPv6 listener on a host without IPv6: an error naming the address; the IPv4 listener still serves', () => {
  const r = rig(DUAL);
  r.native.noIpv6 = true;
  assert.is(r.driver.openListeners(), 1);
  assert.ok(r.loop.logs.includes('error: cannot listen on [2001:db8::1]:8942 (socket: Address family not supported by protocol); ' +
    'is IPv6 enabled on this host, and is 2001:db8::1 configured on an interface? Skipping this address'), r.loop.logs.join('\n'));
  const only6 = rig({ ...DUAL, address: '2001:db8::1' });
  only6.native.noIpv6 = true;
  assert.is(only6.driver.openListeners(), 0, 'nothing listens: broker-main exits with its error');
});

test('log_ip_addresses=false: no IPv6 client address in any log line; the broker\'s own v6 address stays', () => {
  const r = rig({ ...DUAL, logIpAddresses: false, perIpCount: 1, perIpTime: 100,
    hooks: { ...CFG.hooks, connectionRateLimit: '/rl', sessionMtuChanged: '/mtu' } });
  for (const p of ['/up', '/predown', '/down', '/mtu', '/rl']) {
    r.native.behaviour.set(p, { ms: 50, code: 1, output: `configured ${V6.ip} and [${V6.ip}]:${V6.port} via 2001:DB8:0:7:0:0:0:7.\n` });
  }
  r.native.behaviour.set('/usr/sbin/tc', { ms: 10, code: 2, output: `Error: no route to ${V6.ip}\n` });
  r.driver.openListeners();
  r.deliver(V6_FD, m.encodeUsageRequest(1), V6);
  handshake(r, V6, 'six', V6_FD);
  r.loop.advance(1000);
  const TUN = 12;
  r.deliver(TUN, m.encodeClientKeepalive(0), V6);
  r.deliver(TUN, m.encodeLimitBandwidthDown(0, 1024), V6);
  r.deliver(TUN, m.encodePmtuNotify(1300), V6);
  r.deliver(TUN, m.encodeClientKeepalive(1), { ...V6, ip: '2001:db8:0:7::99' }); // wrong source
  handshake(r, { ...V6, port: 2 }, 'limited', V6_FD); // per-/64 limit: hook
  r.deliver(V6_FD, m.encodePrepare(new Uint8Array(8), m.utf8Encode('forged'), 1, 1), { ...V6, port: 7 });
  r.deliver(V6_FD, Uint8Array.of(1, 2, 3), { ...V6, port: 8 });
  r.deliver(V6_FD, m.encodeClientKeepalive(0), { ...V6, port: 9 });
  throwOnSendToPort(r, 10);
  r.deliver(V6_FD, m.encodeCookieRequest(), { ...V6, port: 10 });
  const { text, done } = refuseThenShutdown(r);
  assert.ok(done);
  for (const needle of ['<ip hidden>', 'hook session.up', 'tc for tunnel 100', 'from its /64', 'hook broker.connection-rate-limit',
    'internal error while executing send', 'not the tunnel\'s endpoint', ' closed: ']) {
    assert.ok(text.includes(needle), `no line with "${needle}":\n${text}`);
  }
  assert.not.match(text, /2001:db8:0:7/i, text.split('\n').filter((l) => /2001:db8:0:7/i.test(l)).join('\n'));
  assert.ok(text.includes('[2001:db8::1]:8942'), 'the broker\'s own address stays visible');
  // hooks still got the real address
  assert.ok([...r.native.children.values()].some((c) => c.path === '/up' && c.args.includes(V6.ip)));
});

test.run();
