// Broker config: the original l2tp_broker.cfg format (spec §6.1) and one-line errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ConfigError, listenAddresses, parseConfig } from '../../src/broker/config.js';
import { parseIni, isIniError } from '../../src/broker/ini.js';

// The original example file's content (keys and values as upstream ships them).
const ORIGINAL = `[broker]
; IP address the broker will listen and accept tunnels on
address=127.0.0.1
; Ports where the broker will listen on
port=53,123,8942
; Interface with that IP address
interface=lo
; Maximum number of tunnels that will be allowed by the broker
max_tunnels=1024
; Tunnel id base
tunnel_id_base=100
; Reject connections if there are less than N seconds since the last connection.
; Can be less than a second (e.g., 0.1).
connection_rate_limit=10
; Set PMTU to a fixed value.  Use 0 for automatic PMTU discovery.  A non-0 value also disables
; PMTU discovery on the client side, by having the server not respond to client-side PMTU
; discovery probes.
pmtu=0

[log]
; Verbosity
verbosity=DEBUG
; Should IP addresses be logged or not
log_ip_addresses=false

[hooks]
; Arguments to the session.{up,pre-down,down} hooks are as follows:
;
;    <tunnel_id> <session_id> <interface> <mtu> <endpoint_ip> <endpoint_port> <local_port>
;
; Arguments to the session.mtu-changed hook are as follows:
;
;    <tunnel_id> <session_id> <interface> <old_mtu> <new_mtu>
;

; Called after the tunnel interface goes up
session.up=
; Called just before the tunnel interface goes down
; (However, due to some races in the implementation, sometimes the interface is already gone.)
session.pre-down=
; Called after the tunnel interface goes down
session.down=
; Called after the tunnel MTU gets changed because of PMTU discovery
session.mtu-changed=
; Called when the tunnel connection is rejected because of rate limiting
broker.connection-rate-limit=
`;

const errorOf = (text: string): string => {
  try {
    parseConfig(text);
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

test('the original example config parses with its values', () => {
  const c = parseConfig(ORIGINAL);
  assert.equal(c.address, '127.0.0.1');
  assert.equal(c.ports, [53, 123, 8942]);
  assert.is(c.interface, 'lo');
  assert.is(c.maxTunnels, 1024);
  assert.is(c.tunnelIdBase, 100);
  assert.is(c.connectionRateLimit, 10);
  assert.is(c.perIpCount, 0);
  assert.is(c.perIpTime, 0);
  assert.is(c.pmtu, 0);
  assert.is(c.verbosity, 'debug');
  assert.is(c.logIpAddresses, false);
  assert.equal(c.hooks, { sessionUp: '', sessionPreDown: '', sessionDown: '', sessionMtuChanged: '', connectionRateLimit: '' });
});

test('our example file parses', () => {
  const c = parseConfig(readFileSync(new URL('../../../../examples/l2tp_broker.cfg', import.meta.url), 'utf8'));
  assert.equal(c.ports, [53, 123, 8942]);
  assert.is(c.connectionRateLimit, 0.2);
  assert.is(c.verbosity, 'info');
});

test('ConfigParser syntax: colon delimiter, # comments, case-folded keys, spaces, per-IP keys, hooks', () => {
  const c = parseConfig(`
# comment
[broker]
Address : 203.0.113.1
port = 8942 , 53
interface: eth0
max_tunnels: 10
tunnel_id_base: 5
connection_rate_limit: .5
connection_rate_limit_per_ip_count = 3
connection_rate_limit_per_ip_time = 60.5
pmtu: 1400
obsolete_port_base = 20000
[log]
verbosity = warning
log_ip_addresses = Yes
[hooks]
session.up = /etc/td/up.sh
session.pre-down =
session.down = /etc/td/down.sh
session.mtu-changed=
broker.connection-rate-limit = /etc/td/rl.sh
`);
  assert.is(c.address, '203.0.113.1');
  assert.equal(c.ports, [8942, 53]);
  assert.is(c.interface, 'eth0');
  assert.is(c.connectionRateLimit, 0.5);
  assert.is(c.perIpCount, 3);
  assert.is(c.perIpTime, 60.5);
  assert.is(c.pmtu, 1400);
  assert.is(c.verbosity, 'warning');
  assert.is(c.logIpAddresses, true);
  assert.is(c.hooks.sessionUp, '/etc/td/up.sh');
  assert.is(c.hooks.sessionPreDown, '');
  assert.is(c.hooks.connectionRateLimit, '/etc/td/rl.sh');
});

test('Python level names map to our levels', () => {
  const level = (v: string): string => parseConfig(ORIGINAL.replace('verbosity=DEBUG', `verbosity=${v}`)).verbosity;
  assert.is(level('CRITICAL'), 'error');
  assert.is(level('ERROR'), 'error');
  assert.is(level('WARNING'), 'warning');
  assert.is(level('INFO'), 'info');
  assert.is(level('debug'), 'debug');
});

test('errors name section.key and the value, one line', () => {
  const cases: [string, string, RegExp][] = [
    ['max_tunnels=1024', 'max_tunnels=lots', /^config broker\.max_tunnels = "lots": not an integer$/],
    ['address=127.0.0.1', 'address=localhost',
      /^config broker\.address = "localhost": "localhost" is not an IPv4 or IPv6 address \(host names are not accepted\)$/],
    ['port=53,123,8942', 'port=53,x', /^config broker\.port = "53,x": not an integer$/],
    ['port=53,123,8942', 'port=70000', /^config broker\.port = "70000": must be between 1 and 65535$/],
    ['connection_rate_limit=10', 'connection_rate_limit=-1', /^config broker\.connection_rate_limit = "-1": not a non-negative number$/],
    ['verbosity=DEBUG', 'verbosity=LOUD', /^config log\.verbosity = "LOUD": not a log level/],
    ['log_ip_addresses=false', 'log_ip_addresses=maybe', /^config log\.log_ip_addresses = "maybe": not a boolean/],
    ['session.up=', 'session.up=relative/up.sh', /^config hooks\.session\.up = "relative\/up\.sh": hook path must be absolute/],
    ['tunnel_id_base=100', 'tunnel_id_base=99990', /tunnel_id_base = "99990" with broker\.max_tunnels = "1024"/],
  ];
  for (const [from, to, re] of cases) {
    const msg = errorOf(ORIGINAL.replace(from, to));
    assert.match(msg, re, msg);
    assert.not.match(msg, /\n/);
  }
});

test('missing mandatory keys are named; per-IP limits are optional', () => {
  assert.is(errorOf(ORIGINAL.replace('pmtu=0\n', '')), 'config broker.pmtu is missing (required key)');
  assert.is(errorOf(ORIGINAL.replace('session.down=\n', '')), 'config hooks.session.down is missing (required key)');
  assert.is(errorOf(ORIGINAL.replace('[log]', '[logging]')), 'config log.verbosity is missing (required key)');
});

test('ini syntax errors carry the line number', () => {
  const r = parseIni('[a]\nx=1\nnot a pair\n');
  assert.ok(isIniError(r));
  if (isIniError(r)) assert.is(r.line, 3);
  assert.match(errorOf('key=1\n'), /^config line 1: /);
  assert.match(errorOf('[broker]\nport=1\nport=2\n'), /appears twice/);
  // continuation lines append to the previous value, as in ConfigParser
  assert.equal(parseConfig(ORIGINAL.replace('port=53,123,8942', 'port=53,\n  123')).ports, [53, 123]);
});

test('hooks.max_concurrent: optional (default 32), 1-10000, a bad value names key and value', () => {
  assert.is(parseConfig(ORIGINAL).maxConcurrentJobs, 32);
  const withCap = (v: string): string => ORIGINAL.replace('[hooks]', `[hooks]\nmax_concurrent=${v}`);
  assert.is(parseConfig(withCap('200')).maxConcurrentJobs, 200);
  assert.throws(() => parseConfig(withCap('0')), (e: unknown) => e instanceof ConfigError &&
    e.message === 'config hooks.max_concurrent = "0": must be between 1 and 10000');
  assert.throws(() => parseConfig(withCap('many')), /^config hooks\.max_concurrent = "many": not an integer$/);
});

test('hooks.nice: optional (default 10), 0-19, a bad value names key and value', () => {
  assert.is(parseConfig(ORIGINAL).jobNice, 10);
  const withNice = (v: string): string => ORIGINAL.replace('[hooks]', `[hooks]\nnice=${v}`);
  assert.is(parseConfig(withNice('0')).jobNice, 0);
  assert.is(parseConfig(withNice('19')).jobNice, 19);
  assert.throws(() => parseConfig(withNice('20')), (e: unknown) => e instanceof ConfigError &&
    e.message === 'config hooks.nice = "20": must be between 0 and 19');
  assert.throws(() => parseConfig(withNice('-5')), /^config hooks\.nice = "-5": must be between 0 and 19$/);
});


test('broker.address: one IPv4 address as in the original, or a list with IPv6 (canonical form)', () => {
  const addr = (v: string) => parseConfig(ORIGINAL.replace('address=127.0.0.1', `address=${v}`));
  assert.is(addr('198.51.100.1').address, '198.51.100.1');
  assert.equal(listenAddresses(addr('198.51.100.1')), ['198.51.100.1']);
  assert.equal(listenAddresses(addr('2001:DB8:0:0:0:0:0:1')), ['2001:db8::1']);
  assert.equal(listenAddresses(addr('[2001:db8::1]')), ['2001:db8::1']);
  assert.equal(listenAddresses(addr('198.51.100.1, 2001:db8::a:0:0:1 ,203.0.113.5')), ['198.51.100.1', '2001:db8::a:0:0:1', '203.0.113.5']);
  assert.equal(listenAddresses(addr('0.0.0.0,::')), ['0.0.0.0', '::']);
  assert.equal(listenAddresses(addr('2001:db8:0:1:0:0:0:0')), ['2001:db8:0:1::']);
  assert.is(addr('198.51.100.1').perIpIpv6Prefix, 64);
  const prefix = (v: string) => parseConfig(ORIGINAL.replace('[log]', `connection_rate_limit_per_ip_ipv6_prefix=${v}\n[log]`));
  assert.is(prefix('56').perIpIpv6Prefix, 56);
  assert.is(prefix('128').perIpIpv6Prefix, 128);
  assert.is(errorOf(ORIGINAL.replace('[log]', 'connection_rate_limit_per_ip_ipv6_prefix=129\n[log]')),
    'config broker.connection_rate_limit_per_ip_ipv6_prefix = "129": must be between 1 and 128');
});

test('broker.address: bad IPv6 forms are refused naming key and value, never read as IPv4', () => {
  const err = (v: string) => errorOf(ORIGINAL.replace('address=127.0.0.1', `address=${v}`));
  const key = (v: string) => `config broker.address = "${v}": `;
  assert.is(err('[2001:db8::1]:8942'), `${key('[2001:db8::1]:8942')}"[2001:db8::1]:8942": no port here, ports go in broker.port`);
  assert.is(err('fe80::1%eth0'), `${key('fe80::1%eth0')}"fe80::1%eth0": zone ids (%interface) are not supported; use a global IPv6 address`);
  assert.is(err('fe80::1'), `${key('fe80::1')}"fe80::1" is link-local, which needs a zone id; use a global IPv6 address`);
  assert.is(err('::ffff:198.51.100.1'), `${key('::ffff:198.51.100.1')}"::ffff:198.51.100.1" is an IPv4-mapped IPv6 address; ` +
    'write the IPv4 address 198.51.100.1 itself (IPv6 listeners take no IPv4 traffic)');
  assert.match(err('::ffff:c633:6401'), /IPv4-mapped IPv6 address; write the IPv4 address 198\.51\.100\.1 itself/);
  assert.is(err('2001:db8::1::2'), `${key('2001:db8::1::2')}"2001:db8::1::2" is not an IPv6 address`);
  assert.is(err('2001:db8:1:2:3:4:5:6:7'), `${key('2001:db8:1:2:3:4:5:6:7')}"2001:db8:1:2:3:4:5:6:7" is not an IPv6 address`);
  assert.is(err('[2001:db8::1'), `${key('[2001:db8::1')}"[2001:db8::1" is not an IPv6 address`);
  assert.is(err('198.51.100.1,'), `${key('198.51.100.1,')}an empty address in the list`);
  assert.is(err('2001:db8::1,2001:DB8::1'), `${key('2001:db8::1,2001:DB8::1')}an address is listed twice`);
  assert.is(err('198.51.100.256'), `${key('198.51.100.256')}"198.51.100.256" is not an IPv4 or IPv6 address (host names are not accepted)`);
});

test.run();
