// Codec tests; vectors are the byte rows of spec §3 (worked example).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import * as m from '../../src/protocol/messages.js';
import { CookieJar, pythonBytesRepr, COOKIE_TICK_MS } from '../../src/protocol/cookie.js';
import { MessageType, describeErrorReason } from '../../src/protocol/constants.js';
import * as mtu from '../../src/protocol/mtu.js';
import * as ipa from '../../src/protocol/ip-address.js';

const hex = (s: string): Uint8Array => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)));
const eq = (actual: Uint8Array, expected: string): void => assert.equal(Array.from(actual), Array.from(hex(expected)));
const frame = (bytes: Uint8Array): m.Frame => {
  const f = m.parseFrame(bytes);
  if (!m.isFrame(f)) throw new Error(`parse failed: ${f}`);
  return f;
};
const hmacSha1: (k: Uint8Array, msg: Uint8Array) => Uint8Array = (k, msg) => createHmac('sha1', k).update(msg).digest();

test('row 1: USAGE request with features (18 bytes)', () => {
  eq(m.encodeUsageRequest(1), '80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01');
  assert.equal(m.decodeFillerRequest(frame(hex('80 73 a7 01 0a 0c 55 55 55 55 55 55 55 55 00 00 00 01')).payload), { features: 1 });
  // old clients send no features word
  assert.equal(m.decodeFillerRequest(frame(hex('80 73 a7 01 0a 08 55 55 55 55 55 55 55 55')).payload), { features: 0 });
  // fewer than 8 filler bytes: refused (reply must not be larger than the request)
  assert.is(m.decodeFillerRequest(frame(hex('80 73 a7 01 0a 04 55 55 55 55 00 00')).payload), null);
});

test('row 2: USAGE reply 255, padded to 12 bytes', () => {
  eq(m.encodeUsageReply(255), '80 73 a7 01 0a 02 00 ff 00 00 00 00');
  assert.is(m.decodeU16(frame(hex('80 73 a7 01 0a 02 00 ff 00 00 00 00')).payload), 255);
});

test('row 3/4: COOKIE request and reply; HMAC matches the worked example', () => {
  eq(m.encodeCookieRequest(), '80 73 a7 01 01 08 58 58 58 58 58 58 58 58');
  const key = Uint8Array.from({ length: 32 }, (_, i) => i);
  const jar = new CookieJar(key, hmacSha1, 0);
  const now = 3 * COOKIE_TICK_MS + 5;
  const cookie = jar.issue('198.51.100.7', 40000, now);
  eq(m.encodeCookieReply(cookie), '80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b');
  assert.ok(jar.verify(cookie, '198.51.100.7', 40000, now));
  const reply = m.decodeCookieReply(frame(hex('80 73 a7 01 01 08 00 03 79 24 fb c7 02 4b')).payload);
  assert.ok(reply);
  eq(reply!, '00 03 79 24 fb c7 02 4b');
});

test('cookie: MAC input text is the documented one', () => {
  assert.is(pythonBytesRepr(Uint8Array.of(0, 3)), "b'\\x00\\x03'");
  assert.is(pythonBytesRepr(Uint8Array.of(0x27, 0x41)), 'b"\'A"');
  assert.is(pythonBytesRepr(Uint8Array.of(0x27, 0x22)), "b'\\'\"'");
  assert.is(pythonBytesRepr(Uint8Array.of(0x5c, 0x0a)), "b'\\\\\\n'");
  let seen: Uint8Array | undefined;
  const jar = new CookieJar(new Uint8Array(32), (_k, msg) => { seen = msg; return new Uint8Array(20); }, 0);
  jar.issue('198.51.100.7', 40000, 3 * COOKIE_TICK_MS);
  eq(seen!, '31 39 38 2e 35 31 2e 31 30 30 2e 37 34 30 30 30 30 62 27 5c 78 30 30 5c 78 30 33 27');
});

test('cookie: bound to IP and port, valid at least 2 minutes, expires, survives the tick wrap', () => {
  const jar = new CookieJar(Uint8Array.from({ length: 32 }, (_, i) => i * 7), hmacSha1, 1000);
  const t0 = 1000 + 10 * COOKIE_TICK_MS + 63_000; // end of a tick: worst case for age
  const c = jar.issue('198.51.100.7', 40000, t0);
  assert.ok(jar.verify(c, '198.51.100.7', 40000, t0 + 120_000), 'valid after 2 minutes');
  assert.not.ok(jar.verify(c, '198.51.100.8', 40000, t0), 'other IP');
  assert.not.ok(jar.verify(c, '198.51.100.7', 40001, t0), 'other port');
  assert.not.ok(jar.verify(c, '198.51.100.7', 40000, t0 + 4 * COOKIE_TICK_MS), 'expired');
  const forged = c.slice();
  forged[7] ^= 1;
  assert.not.ok(jar.verify(forged, '198.51.100.7', 40000, t0), 'forged signature');
  assert.not.ok(jar.verify(c.subarray(0, 7), '198.51.100.7', 40000, t0), 'short cookie');
  const wrapAt = 1000 + 0xffff * COOKIE_TICK_MS;
  const w = jar.issue('198.51.100.7', 40000, wrapAt);
  assert.ok(jar.verify(w, '198.51.100.7', 40000, wrapAt + COOKIE_TICK_MS), 'valid across the 16-bit wrap');
});

test('row 5: PREPARE with cookie, uuid "foobar", tunnel id 1, features 1 (29 bytes)', () => {
  const row5 = '80 73 a7 01 02 17 00 03 79 24 fb c7 02 4b 06 66 6f 6f 62 61 72 00 00 00 01 00 00 00 01';
  eq(m.encodePrepare(hex('00 03 79 24 fb c7 02 4b'), m.utf8Encode('foobar'), 1, 1), row5);
  const p = m.decodePrepare(frame(hex(row5)).payload)!;
  assert.equal(Array.from(p.cookie), Array.from(hex('00 03 79 24 fb c7 02 4b')));
  assert.is(m.utf8Decode(p.uuid), 'foobar');
  assert.is(p.tunnelId, 1);
  assert.is(p.features, 1);
});

test('PREPARE: optional trailing fields default like the original broker', () => {
  const base = [0, 3, 1, 2, 3, 4, 5, 6, 3, 0x61, 0x62, 0x63];
  const noTid = m.decodePrepare(Uint8Array.from(base))!;
  assert.is(noTid.tunnelId, 1);
  assert.is(noTid.features, 0);
  const tidOnly = m.decodePrepare(Uint8Array.from([...base, 0, 0, 0, 9]))!;
  assert.is(tidOnly.tunnelId, 9);
  assert.is(tidOnly.features, 0);
  const partial = m.decodePrepare(Uint8Array.from([...base, 0, 0, 0, 9, 0, 0]))!;
  assert.is(partial.tunnelId, 9);
  assert.is(partial.features, 0);
  assert.is(m.decodePrepare(Uint8Array.from([0, 3, 1, 2, 3, 4, 5, 6, 10, 0x61])), null, 'uuid longer than payload');
  assert.is(m.decodePrepare(Uint8Array.from([0, 3, 1, 2])), null, 'no uuid length');
});

test('PREPARE: long uuid is truncated so the length byte stays valid', () => {
  const out = m.encodePrepare(new Uint8Array(8), new Uint8Array(300).fill(0x41), 5, 1);
  const p = m.decodePrepare(frame(out).payload)!;
  assert.is(out[5], out.length - 6);
  assert.is(p.tunnelId, 5);
  assert.is(p.features, 1);
  assert.ok(p.uuid.length >= 200);
});

test('rows 6, 6\', 6\'\': TUNNEL with and without features; refusal', () => {
  eq(m.encodeTunnel(100, 1), '80 73 a7 01 04 08 00 00 00 64 00 00 00 01');
  eq(m.encodeTunnel(100, 0), '80 73 a7 01 04 04 00 00 00 64 00 00');
  eq(m.encodeError(), '80 73 a7 01 03 00 00 00 00 00 00 00');
  assert.equal(m.decodeTunnel(frame(hex('80 73 a7 01 04 08 00 00 00 64 00 00 00 01')).payload), { tunnelId: 100, features: 1 });
  assert.equal(m.decodeTunnel(frame(hex('80 73 a7 01 04 04 00 00 00 64 00 00')).payload), { tunnelId: 100, features: 0 });
  assert.is(m.decodeTunnel(Uint8Array.of(0, 0, 1)), null);
  assert.equal(m.decodeError(frame(hex('80 73 a7 01 03 00 00 00 00 00 00 00')).payload), { reason: undefined });
});

test('rows 7/8: LIMIT (reliable, unpadded, 14 bytes) and REL_ACK', () => {
  const row7 = '80 73 a7 01 80 08 00 00 01 04 00 00 04 00';
  eq(m.encodeLimitBandwidthDown(0, 1024), row7);
  const f = frame(hex(row7));
  assert.ok(m.isReliable(f.type));
  assert.is(m.decodeReliableSeq(f.payload), 0);
  const l = m.decodeLimit(f.payload)!;
  assert.is(l.bandwidthKbps, 1024);
  assert.is(l.limitType, 1);
  eq(m.encodeRelAck(0), '80 73 a7 01 08 02 00 00 00 00 00 00');
  const unknown = m.decodeLimit(Uint8Array.of(0, 7, 9, 2, 1, 2))!;
  assert.is(unknown.seq, 7);
  assert.is(unknown.bandwidthKbps, null);
  assert.is(m.decodeLimit(Uint8Array.of(0, 7, 1, 4, 1)), null, 'config longer than payload');
});

test('rows 9/10: KEEPALIVE client u32, broker u16', () => {
  eq(m.encodeClientKeepalive(0), '80 73 a7 01 05 04 00 00 00 00 00 00');
  eq(m.encodeBrokerKeepalive(0), '80 73 a7 01 05 02 00 00 00 00 00 00');
  eq(m.encodeBrokerKeepalive(0x10001), '80 73 a7 01 05 02 00 01 00 00 00 00');
});

test('rows 11-16: PMTU probe, ACK, NTFY', () => {
  const probe = m.encodePmtuProbe(1500);
  assert.is(probe.length, 1472);
  eq(probe.subarray(0, 6), '80 73 a7 01 06 00');
  assert.ok(probe.subarray(6).every((b) => b === 0));
  const f = frame(probe);
  assert.is(f.type, MessageType.PMTUD);
  assert.is(f.datagramLength, 1472);
  eq(m.encodePmtuAck(1472), '80 73 a7 01 07 02 05 c0 00 00 00 00');
  eq(m.encodePmtuNotify(1446), '80 73 a7 01 09 02 05 a6 00 00 00 00');
  eq(m.encodePmtuNotify(1400), '80 73 a7 01 09 02 05 78 00 00 00 00');
  const acks = [1334, 1400, 1450, 1476, 1492, 1500].map((s) => m.encodePmtuProbe(s).length);
  assert.equal(acks, [1306, 1372, 1422, 1448, 1464, 1472]);
  eq(m.encodePmtuAck(1306), '80 73 a7 01 07 02 05 1a 00 00 00 00');
});

test('rows 17-20: ERROR reason bytes', () => {
  eq(m.encodeError(0x11), '80 73 a7 01 03 01 11 00 00 00 00 00');
  eq(m.encodeError(0x01), '80 73 a7 01 03 01 01 00 00 00 00 00');
  eq(m.encodeError(0x03), '80 73 a7 01 03 01 03 00 00 00 00 00');
  eq(m.encodeError(0x10), '80 73 a7 01 03 01 10 00 00 00 00 00');
  assert.equal(m.decodeError(frame(hex('80 73 a7 01 03 01 11 00 00 00 00 00')).payload), { reason: 0x11 });
  assert.match(describeErrorReason(0x11), 'client shutdown');
  assert.match(describeErrorReason(0x02), 'broker shutdown');
});

test('parseFrame rejects malformed datagrams and ignores padding', () => {
  assert.is(m.parseFrame(hex('80 73 a7 01 05')), 'short');
  assert.is(m.parseFrame(hex('81 73 a7 01 05 00')), 'magic');
  assert.is(m.parseFrame(hex('80 73 a6 01 05 00')), 'magic');
  assert.is(m.parseFrame(hex('80 73 a7 02 05 00')), 'version');
  assert.is(m.parseFrame(hex('80 73 a7 01 05 09 00 00')), 'length');
  const padded = frame(hex('80 73 a7 01 05 02 00 07 de ad be ef'));
  assert.is(padded.payload.length, 2);
  assert.is(m.decodeU16(padded.payload), 7);
  // L2TPv3 data header (T bit clear) is not a control frame
  assert.is(m.parseFrame(hex('00 03 00 00 00 00 00 64 00 00 00 00')), 'magic');
});

test('parseFrame never throws on random input', () => {
  let seed = 12345;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
  let frames = 0;
  for (let i = 0; i < 20000; i++) {
    const len = rnd() % 40;
    const d = Uint8Array.from({ length: len }, () => rnd() & 0xff);
    if (i % 2 === 0 && len >= 6) d.set([0x80, 0x73, 0xa7, 0x01, rnd() & 0xff, rnd() % (len - 5)]);
    const f = m.parseFrame(d);
    if (m.isFrame(f)) {
      frames++;
      assert.ok(f.payload.length <= len - 6);
      m.decodePrepare(f.payload);
      m.decodeTunnel(f.payload);
      m.decodeLimit(f.payload);
      m.decodeU16(f.payload);
      m.utf8Decode(f.payload);
    }
  }
  assert.ok(frames > 1000);
});

test('utf8 round trip and lenient decoding', () => {
  const s = 'uuid-ž-€-😀';
  assert.is(m.utf8Decode(m.utf8Encode(s)), s);
  assert.equal(Array.from(m.utf8Encode('ž')), Array.from(Buffer.from('ž')));
  assert.is(m.utf8Decode(Uint8Array.of(0x61, 0xff, 0x62)), 'a\ufffdb');
  assert.is(m.utf8Decode(Uint8Array.of(0xe2, 0x82)), '\ufffd\ufffd');
});


test('mtu.ts: the underlay family sets the overhead; IPv4 figures unchanged', () => {
  assert.is(mtu.ipUdpOverhead(), 28);
  assert.is(mtu.ipUdpOverhead(4), 28);
  assert.is(mtu.ipUdpOverhead(6), 48);
  assert.is(mtu.pathToTunnelMtu(1500), 1446);
  assert.is(mtu.pathToTunnelMtu(1500, 4), 1446);
  assert.is(mtu.pathToTunnelMtu(1500, 6), 1426);
  assert.equal([...mtu.clientProbeSizesFor(4)], [1334, 1400, 1450, 1476, 1492, 1500]);
  assert.equal([...mtu.brokerProbeSizesFor()], [1500, 1492, 1476, 1450, 1400, 1334]);
  // over IPv6 the probes are the same IP sizes (UDP payload 20 bytes smaller) plus 1280
  assert.equal([...mtu.clientProbeSizesFor(6)], [1280, 1334, 1400, 1450, 1476, 1492, 1500]);
  assert.equal([...mtu.brokerProbeSizesFor(6)], [1500, 1492, 1476, 1450, 1400, 1334, 1280]);
  assert.is(m.encodePmtuProbe(1500, 6).length, 1452);
  assert.is(m.encodePmtuProbe(1500, 4).length, m.encodePmtuProbe(1500).length);
});

/** What one side ends at on a path of pathMtu bytes: the largest of its probes that fits is
 *  acknowledged with its UDP payload length, the prober adds the IP+UDP overhead back, and both
 *  sides notify each other (each measures the same path). */
function endsAt(pathMtu: number, family: 4 | 6, sizes: readonly number[]): number | null {
  const fits = sizes.filter((s) => s <= pathMtu);
  if (!fits.length) return mtu.tunnelMtu(null, null);
  const acked = m.encodePmtuProbe(Math.max(...fits), family).length; // PMTUD_ACK value
  const own = mtu.pathToTunnelMtu(acked + mtu.ipUdpOverhead(family), family);
  return mtu.tunnelMtu(own, own);
}

test('mtu.ts: a 1400-byte path gives 1346 over IPv4 and 1326 over IPv6 at both ends', () => {
  assert.is(endsAt(1400, 4, mtu.clientProbeSizesFor(4)), 1346);
  assert.is(endsAt(1400, 4, mtu.brokerProbeSizesFor(4)), 1346);
  assert.is(endsAt(1400, 6, mtu.clientProbeSizesFor(6)), 1326);
  assert.is(endsAt(1400, 6, mtu.brokerProbeSizesFor(6)), 1326);
  // ... and the client's notify of 1326 to a broker that measured nothing keeps 1326 (not 1446)
  assert.is(mtu.tunnelMtu(null, 1326), 1326);
  assert.is(endsAt(1500, 6, mtu.brokerProbeSizesFor(6)), 1426);
});

test('mtu.ts: an IPv6 path at the 1280 minimum still answers a probe; the tunnel MTU floor is 1280', () => {
  // the 1280 probe fits every IPv6 link: over IPv6 a measurement always exists
  assert.is(m.encodePmtuProbe(1280, 6).length, 1232);
  assert.ok(mtu.clientProbeSizesFor(6).every((s) => s >= 1280));
  assert.is(endsAt(1280, 6, mtu.clientProbeSizesFor(6)), 1280); // 1280 − 74 = 1206, raised to 1280
  assert.is(endsAt(1333, 6, mtu.brokerProbeSizesFor(6)), 1280);
  // without the 1280 size the same path would measure nothing and keep the 1446 default
  assert.is(endsAt(1280, 6, mtu.clientProbeSizesFor(4)), null);
  assert.is(mtu.tunnelMtu(1206, null), 1280);
});

test('ip-address.ts: IPv6 text parses as inet_pton does and prints as RFC 5952 (checked against WHATWG URL hosts)', () => {
  const canon = (t: string): string => new URL(`http://[${t}]/`).hostname.slice(1, -1);
  let seed = 7;
  const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
  for (let i = 0; i < 500; i++) {
    // random words with runs of zeros, written with leading zeros and mixed case
    const words = Array.from({ length: 8 }, () => (rnd(3) === 0 ? 0 : rnd(0x10000)));
    const text = words.map((w) => (rnd(2) ? w.toString(16).toUpperCase().padStart(4, '0') : w.toString(16))).join(':');
    const b = ipa.parseIpv6(text);
    assert.ok(b, text);
    // WHATWG never writes a dotted tail; inet_ntop does for ::ffff:0:0/96 and ::/96 (src/ip-text.ts)
    const dotted = words.slice(0, 5).every((w) => w === 0) && (words[5] === 0xffff || (words[5] === 0 && words[6] !== 0));
    if (!dotted) assert.is(ipa.formatIpv6(b!), canon(text), text);
    assert.equal(ipa.parseIpv6(ipa.formatIpv6(b!)), b, 'round trip');
  }
  for (const t of ['::', '::1', '1::', '2001:db8::', '::ffff:198.51.100.1', '64:ff9b::192.0.2.33', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8']) {
    assert.ok(ipa.parseIpv6(t), t);
  }
  assert.is(ipa.formatIpv6(ipa.parseIpv6('1:0:0:2:0:0:0:3')!), '1:0:0:2::3', 'the longest run');
  assert.is(ipa.formatIpv6(ipa.parseIpv6('1:0:0:2:0:0:3:4')!), '1::2:0:0:3:4', 'the first of equal runs');
  assert.is(ipa.formatIpv6(ipa.parseIpv6('1:0:2:3:4:5:6:7')!), '1:0:2:3:4:5:6:7', 'a single zero group stays');
  assert.is(ipa.formatIpv6(ipa.parseIpv6('::ffff:c633:6407')!), '::ffff:198.51.100.7', 'a mapped address as inet_ntop prints it');
  assert.is(ipa.parseIpv4('198.51.100.7')!.join('.'), '198.51.100.7');
  assert.is(ipa.parseIpv4('198.51.100'), null);
  for (const t of ['', ':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', '[::1]', 'fe80::1%eth0', '::1:', ':1::', 'g::1',
    '1:2:3:4:5:6:7:8::', '::1.2.3', '::1.2.3.256', '1.2.3.4', 'localhost', '1:2:3:4:5:6:7:1.2.3.4']) {
    assert.is(ipa.parseIpv6(t), null, t);
  }
  assert.is(ipa.ipFamily('198.51.100.1'), 4);
  assert.is(ipa.ipFamily('2001:db8::1'), 6);
  assert.is(ipa.ipFamily('[2001:db8::1]'), null);
  assert.is(ipa.formatHostPort('2001:db8::1', 8942), '[2001:db8::1]:8942');
  assert.is(ipa.formatHostPort('198.51.100.1', 8942), '198.51.100.1:8942');
  assert.is(ipa.ipv6Prefix('2001:db8:1:2:3:4:5:6', 64), '2001:db8:1:2::/64');
  assert.is(ipa.ipv6Prefix('2001:db8:1:2ff:3:4:5:6', 60), '2001:db8:1:2f0::/60');
  assert.is(ipa.ipv6Prefix('2001:db8::1', 128), '2001:db8::1/128');
  assert.is(ipa.ipv6Prefix('198.51.100.1', 64), '198.51.100.1');
  assert.ok(ipa.isIpv4Mapped(ipa.parseIpv6('::ffff:c633:6401')!));
  assert.not.ok(ipa.isIpv4Mapped(ipa.parseIpv6('64:ff9b::c633:6401')!));
  assert.ok(ipa.isIpv6LinkLocal(ipa.parseIpv6('febf::1')!));
  assert.not.ok(ipa.isIpv6LinkLocal(ipa.parseIpv6('fec0::1')!));
});

test.run();
