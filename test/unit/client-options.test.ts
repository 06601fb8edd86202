// Client command line (spec §6.3): getopt forms, defaults, and one-line errors for bad values.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HELP, bindFamily, isIpv4Literal, isPortNumber, parseArgs, type Options, type ParseResult } from '../../src/client/options.js';

const ok = (args: string[]): Options => {
  const r = parseArgs(args);
  if (!('options' in r)) throw new Error(`expected options, got: ${r.text}`);
  return r.options;
};
const bad = (args: string[]): Extract<ParseResult, { exit: number }> => {
  const r = parseArgs(args);
  if ('options' in r) throw new Error(`expected an error for ${args.join(' ')}`);
  return r;
};
const base = ['-u', 'foobar', '-i', 'l2tp0', '-b', '203.0.113.1:8942'];

test('defaults and the OpenWrt init command line', () => {
  const o = ok(['-f', '-u', 'abcd', '-i', 'l2tp0', '-t', '2', '-b', 'x.example:8942', '-b', '203.0.113.1:53', '-L', '1024', '-s', '/bin/hook', '-I', 'br-wan', '-a']);
  assert.equal(o, {
    uuid: 'abcd', bindIp: null, brokers: [{ host: 'x.example', port: '8942' }, { host: '203.0.113.1', port: '53' }],
    ifname: 'l2tp0', bindDevice: 'br-wan', hook: '/bin/hook', mtuHook: false, tunnelId: 2, limitKbps: 1024, selection: 'usage', foreground: true,
  });
  const d = ok(base);
  assert.is(d.tunnelId, 1);
  assert.is(d.limitKbps, 0);
  assert.is(d.selection, 'first');
  assert.is(d.foreground, false);
  assert.is(d.hook, null);
  assert.is(d.mtuHook, false, 'session.mtu-changed only on request, as the original never calls it');
  assert.is(ok([...base, '-s', '/bin/hook', '-m']).mtuHook, true);
  assert.is(ok([...base, '-fm']).mtuHook, true, 'grouped, and accepted without -s (nothing to run then)');
});

test('IPv4 literals (connected to without the resolver) and numeric ports', () => {
  for (const a of ['203.0.113.1', '0.0.0.0', '198.51.100.255', '192.0.2.10']) assert.ok(isIpv4Literal(a), a);
  for (const a of ['203.0.113.01', '010.0.0.1', '1.2.3', '256.1.1.1', 'broker.example', '2001:db8::1', '1.2.3.4.5', '']) {
    assert.not.ok(isIpv4Literal(a), a);
  }
  for (const p of ['1', '53', '8942', '65535']) assert.ok(isPortNumber(p), p);
  for (const p of ['0', '65536', 'domain', '', '123456']) assert.not.ok(isPortNumber(p), p);
});

test('getopt forms: attached values, grouped flags, --, last selection flag wins', () => {
  const o = ok(['-ufoo', '-il2tp9', '-b203.0.113.1:8942', '-fr', '-t0x1f', '-l', '198.51.100.7']);
  assert.is(o.uuid, 'foo');
  assert.is(o.ifname, 'l2tp9');
  assert.is(o.foreground, true);
  assert.is(o.selection, 'random');
  assert.is(o.tunnelId, 31);
  assert.is(o.bindIp, '198.51.100.7');
  // a grouped flag followed by an option taking the rest of the word
  const g = ok([...base, '-fat7']);
  assert.is(g.selection, 'usage');
  assert.is(g.tunnelId, 7);
  assert.is(ok([...base, '-a', '-g']).selection, 'first');
  assert.is(ok([...base, '--']).uuid, 'foobar');
  assert.match(bad([...base, '--', '-a']).text, "unexpected argument '-a'");
  // strtoul base 0: octal and decimal
  assert.is(ok([...base, '-t', '010']).tunnelId, 8);
  assert.is(ok([...base, '-t', '4294967295']).tunnelId, 4294967295);
  // the broker port may be a service name
  assert.equal(ok(['-u', 'x', '-i', 'l', '-b', 'broker.example:domain']).brokers, [{ host: 'broker.example', port: 'domain' }]);
});

test('-h prints help and exits 1; missing required options print usage and exit 1', () => {
  const h = bad(['-h']);
  assert.is(h.exit, 1);
  assert.is(h.error, false);
  assert.is(h.text, HELP);
  assert.ok(HELP.includes('-b host:port'));
  const m = bad(['-u', 'x']);
  assert.is(m.exit, 1);
  assert.is(m.error, true);
  assert.ok(m.text.startsWith('missing required option -b host:port, -i iface\n'));
  assert.ok(m.text.includes('Usage:'));
  assert.ok(bad([]).text.startsWith('missing required option -u uuid, -b host:port, -i iface'));
});

test('bad values: one line naming the option and the value', () => {
  const cases: [string[], string][] = [
    [['-t', 'abc'], "invalid value 'abc' for -t"],
    [['-t', '0'], "invalid value '0' for -t"],
    [['-t', '12x'], "invalid value '12x' for -t"],
    [['-t', '0x100000000'], "invalid value '0x100000000' for -t"],
    [['-L', '-5'], "invalid value '-5' for -L"],
    [['-L', '1k'], "invalid value '1k' for -L"],
    [['-b', 'host'], "invalid value 'host' for -b: expected host:port"],
    [['-b', 'host:'], "invalid value 'host:' for -b"],
    [['-b', ':8942'], "invalid value ':8942' for -b"],
    [['-b', 'host:70000'], "invalid value 'host:70000' for -b: port must be 1..65535"],
    [['-l', '1.2.3'], "invalid value '1.2.3' for -l"],
    [['-l', '256.1.1.1'], "invalid value '256.1.1.1' for -l"],
    [['-i', 'averyveryverylongname'], "invalid value 'averyveryverylongname' for -i"],
    [['-p', '1'], 'invalid option -p'],
    [['-x'], 'invalid option -x'],
    [['-s'], 'option -s requires an argument'],
    [['stray'], "unexpected argument 'stray'"],
    // IPv6: a clear error naming the value, never an IPv4 fallback to another host
    [['-b', '2001:db8::1:8942'], "invalid value '2001:db8::1:8942' for -b: an IPv6 address needs brackets when a port follows, e.g. [2001:db8::1]:8942"],
    [['-b', '[fe80::1%eth0]:8942'], "invalid value '[fe80::1%eth0]:8942' for -b: zone ids (%interface) are not supported"],
    [['-b', 'fe80::1%eth0:8942'], "invalid value 'fe80::1%eth0:8942' for -b: zone ids (%interface) are not supported"],
    [['-b', '[::ffff:198.51.100.1]:8942'], "invalid value '[::ffff:198.51.100.1]:8942' for -b: a v4-mapped IPv6 address: write the IPv4 address 198.51.100.1 instead"],
    [['-b', '[2001:db8::1]'], "invalid value '[2001:db8::1]' for -b: expected [2001:db8::1]:port"],
    [['-b', '[2001:db8::1]:'], "invalid value '[2001:db8::1]:' for -b: expected [2001:db8::1]:port"],
    [['-b', '[2001:db8::1:8942'], "invalid value '[2001:db8::1:8942' for -b: expected [IPv6 address]:port, the ']' is missing"],
    [['-b', '[2001:db8::1]:0'], "invalid value '[2001:db8::1]:0' for -b: port must be 1..65535"],
    [['-b', '[2001:db8::g]:8942'], "invalid value '[2001:db8::g]:8942' for -b: expected an IPv4 address"],
    [['-b', '[198.51.100.1]:8942'], "invalid value '[198.51.100.1]:8942' for -b: brackets are for IPv6 addresses: write 198.51.100.1:8942"],
    [['-b', '[::]:8942'], "invalid value '[::]:8942' for -b: the unspecified address"],
    [['-b', 'a:b:c'], "invalid value 'a:b:c' for -b: expected host:port"],
    [['-l', 'fe80::1%eth0'], "invalid value 'fe80::1%eth0' for -l: zone ids (%interface) are not supported"],
    [['-l', '::ffff:198.51.100.7'], "invalid value '::ffff:198.51.100.7' for -l: a v4-mapped IPv6 address: write the IPv4 address 198.51.100.7 instead"],
    [['-l', '[2001:db8::7]'], "invalid value '[2001:db8::7]' for -l: no brackets"],
    [['-l', '2001:db8::7::1'], "invalid value '2001:db8::7::1' for -l: expected an IPv4 address such as 198.51.100.7 or an IPv6 address"],
  ];
  for (const [args, expected] of cases) {
    const r = bad([...base, ...args]);
    assert.is(r.exit, 1, args.join(' '));
    assert.is(r.error, true);
    assert.ok(r.text.startsWith(expected), `${args.join(' ')} → ${r.text}`);
    assert.not.ok(r.text.includes('\n'), `one line: ${r.text}`);
  }
});

test('IPv6: -b [2001:db8::1]:8942, names (A/AAAA left to the resolver), -l with an IPv6 address', () => {
  const o = ok(['-u', 'x', '-i', 'l2tp0', '-b', '[2001:db8::1]:8942', '-b', 'broker.example:8942', '-b', '[2001:db8:0:0:0:0:0:2]:domain']);
  assert.equal(o.brokers, [{ host: '2001:db8::1', port: '8942' }, { host: 'broker.example', port: '8942' }, { host: '2001:db8:0:0:0:0:0:2', port: 'domain' }]);
  assert.is(o.bindIp, null, 'no -l: both families, each socket binds its wildcard');
  assert.is(bindFamily(o), null);
  const l6 = ok([...base.slice(0, 4), '-b', '[2001:db8::1]:8942', '-b', 'broker.example:8942', '-l', '2001:db8:1::7']);
  assert.is(l6.bindIp, '2001:db8:1::7');
  assert.is(bindFamily(l6), 6);
  assert.is(bindFamily(ok([...base, '-l', '198.51.100.7'])), 4);
  assert.ok(HELP.includes('[2001:db8::1]:8942'));
});

test('IPv6: a literal of the other family than -l can never be reached: refused up front', () => {
  assert.is(bad([...base, '-l', '2001:db8::7']).text, 'broker 203.0.113.1:8942 is an IPv4 address but -l 2001:db8::7 is IPv6: it could never be reached');
  assert.is(bad(['-u', 'x', '-i', 'l', '-b', '[2001:db8::1]:8942', '-l', '198.51.100.7']).text,
    'broker [2001:db8::1]:8942 is an IPv6 address but -l 198.51.100.7 is IPv4: it could never be reached');
});

test('at most 10 brokers: the 11th is refused', () => {
  const ten = Array.from({ length: 10 }, (_, i) => ['-b', `b${i}.example:8942`]).flat();
  assert.is(ok(['-u', 'x', '-i', 'l2tp0', ...ten]).brokers.length, 10);
  const r = bad(['-u', 'x', '-i', 'l2tp0', ...ten, '-b', 'b10.example:8942']);
  assert.is(r.text, "invalid value 'b10.example:8942' for -b: at most 10 brokers are supported");
});

test.run();
