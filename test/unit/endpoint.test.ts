// IP address text (src/protocol/ip-address.ts, shared with the broker) and host:port with the
// client's refusals (src/protocol/endpoint.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { addressFamily, checkAddress, parseHostPort } from '../../src/protocol/endpoint.js';
import { formatHostPort, parseIpv4, parseIpv6 } from '../../src/protocol/ip-address.js';
import { native } from '../../src/runtime/node/native.js';
import { isIP } from 'node:net';

const hexOf = (b: Uint8Array | null): string | null => (b ? Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('') : null);

test('IPv6 text forms: groups, "::" anywhere, dotted tail; the bytes', () => {
  assert.is(hexOf(parseIpv6('2001:db8::1')), '20010db8000000000000000000000001');
  assert.is(hexOf(parseIpv6('::')), '0'.repeat(32));
  assert.is(hexOf(parseIpv6('::1')), '0'.repeat(31) + '1');
  assert.is(hexOf(parseIpv6('2001:db8::')), '20010db8' + '0'.repeat(24));
  assert.is(hexOf(parseIpv6('2001:DB8:0:0:1:0:0:1')), '20010db8000000000001000000000001');
  assert.is(hexOf(parseIpv6('64:ff9b::192.0.2.33')), '0064ff9b0000000000000000c0000221');
  assert.is(hexOf(parseIpv6('1:2:3:4:5:6:7::')), '00010002000300040005000600070000');
  for (const bad of ['', ':', ':::', '1::2::3', '12345::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', 'g::', '::1.2.3', '1.2.3.4::', '::1.2.3.4:5', '1:2:3:4:5:6:7::8:9', '[::1]', '::1%lo']) {
    assert.is(parseIpv6(bad), null, bad);
  }
});

test('the parser agrees with the platform (node:net isIP) on a corpus', () => {
  const corpus = [
    '2001:db8::1', '::', '::1', '1::', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', '1:2:3:4:5:6::8',
    '::ffff:1.2.3.4', '64:ff9b::1.2.3.4', '1:2:3:4:5:6:1.2.3.4', 'fe80::1', 'ff02::1', '2001:0db8:0000::0001',
    '1:2:3:4:5:6:7:8:9', '1::2::3', ':1::', '1:::', '12345::', '::1.2.3', '1.2.3.4::', '::256.1.1.1', 'x::', '1:2:3:4:5:6:7',
    '::1.2.3.04', '1:2:3:4:5:6:7:1.2.3.4', '', '1.2.3.4', '0.0.0.0', '255.255.255.255', '256.0.0.1',
  ];
  for (const s of corpus) {
    const ours = parseIpv6(s) ? 6 : parseIpv4(s) ? 4 : 0;
    // node accepts leading-zero quads nowhere; ours takes them in IPv4 as the original did
    const theirs = isIP(s);
    if (!(ours === 4 && theirs === 0 && s.split('.').some((x) => x.length > 1 && x[0] === '0'))) assert.is(ours, theirs, s);
  }
});

test('checkAddress: zone ids, v4-mapped and brackets refused with a reason; wildcards only for bind', () => {
  assert.equal(checkAddress('198.51.100.7'), { family: 4 });
  assert.equal(checkAddress('2001:db8::7'), { family: 6 });
  assert.equal(checkAddress('::'), { family: 6 });
  assert.ok('error' in checkAddress('::', false));
  assert.match((checkAddress('fe80::1%eth0') as { error: string }).error, 'zone ids');
  assert.match((checkAddress('::ffff:198.51.100.1') as { error: string }).error, 'write the IPv4 address 198.51.100.1');
  assert.match((checkAddress('[2001:db8::7]') as { error: string }).error, 'no brackets');
  assert.match((checkAddress('broker.example') as { error: string }).error, 'expected an IPv4 address');
  assert.is(addressFamily('broker.example'), null);
  assert.is(addressFamily('2001:db8::7'), 6);
  assert.is(addressFamily('203.0.113.1'), 4);
});

test('parseHostPort and formatHostPort round-trip', () => {
  for (const [text, host, port, family] of [
    ['[2001:db8::1]:8942', '2001:db8::1', '8942', 6], ['203.0.113.1:53', '203.0.113.1', '53', 4],
    ['broker.example:domain', 'broker.example', 'domain', null], ['[::1]:1', '::1', '1', 6],
  ] as const) {
    assert.equal(parseHostPort(text), { host, port, family }, text);
    assert.is(formatHostPort(host, port), text);
  }
});

test('a native call refuses an address of the other family or an unparsable one', () => {
  // the contract of udpSocket/bind (src/native.ts): which family the string parses as picks
  // the sockaddr; the host's addon checks it the same way the parser does
  const fd = native.udpSocket();
  assert.ok(fd >= 0);
  assert.is(native.bind(fd, '2001:db8::1', 0), -native.errno.EAFNOSUPPORT, 'IPv6 text on an IPv4 socket');
  assert.is(native.bind(fd, '2001:db8::1%eth0', 0), -native.errno.EINVAL, 'what the parser refuses, the native side cannot parse either');
  native.close(fd);
});

test.run();
