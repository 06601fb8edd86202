// Broker hardening (issue 10 items 1-5, 7; issue 6 item 5, issue 7 item 3): reply sizes and the
// answer budget, LIMIT de-duplication and rate, orphans (stale cookies, replacement, usage),
// the rate-limit burst, fixed PMTU above 1446, log_ip_addresses=false through the core + driver,
// SIGHUP, and the id-range lock.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../../src/native.js';
import type { Action, Job, SocketRef } from '../../src/broker/actions.js';
import { ANSWER_BUDGET_BURST, BrokerCore, PREPARE_MAX_COOKIE_AGE_MS } from '../../src/broker/broker.js';
import { ConfigError, DEFAULT_RATE_LIMIT_BURST, configWarnings, parseConfig, type BrokerConfig } from '../../src/broker/config.js';
import { lockIdRange, type LockFs } from '../../src/broker/id-range-lock.js';
import { brokerLogLoop, redactAddresses } from '../../src/broker/redact.js';
import { LIMIT_INTERVAL_MS, UNHEARD_MS } from '../../src/broker/tunnel.js';
import { FINE_TICK_MS, FineCookieJar } from '../../src/protocol/cookie.js';
import * as m from '../../src/protocol/messages.js';
import type { LogLevel } from '../../src/runtime/loop.js';
import { nodeLockFs } from '../../src/main/broker/broker-main.js';
import { CFG, CLIENT, ERRNO, handshake, rig } from './broker-fakes.js';
import { FakeLoop } from './fake-loop.js';

const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join(' ');
const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const TUN100: SocketRef = { kind: 'tunnel', tunnelId: 100 };
const C1: Endpoint = { ip: '198.51.100.7', port: 40000 };
const C2: Endpoint = { ip: '198.51.100.8', port: 40001 };
const T0 = 1_000_000;

function config(over: Partial<BrokerConfig> = {}): BrokerConfig {
  return {
    address: '203.0.113.1', ports: [8942], interface: 'eth0', maxTunnels: 256, tunnelIdBase: 100,
    connectionRateLimit: 0, perIpCount: 0, perIpTime: 0, pmtu: 0, verbosity: 'debug', logIpAddresses: true,
    hooks: { sessionUp: '/hooks/up', sessionPreDown: '/hooks/pre-down', sessionDown: '/hooks/down', sessionMtuChanged: '', connectionRateLimit: '/hooks/rl' },
    ...over,
  };
}

function broker(over: Partial<BrokerConfig> = {}): BrokerCore {
  return new BrokerCore(config(over), {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0, random: () => 0.5,
    errno: ERRNO, tcPath: '/usr/sbin/tc',
  });
}

const sendActs = (out: Action[]): (Action & { type: 'send' })[] => out.filter((a): a is Action & { type: 'send' } => a.type === 'send');
const jobs = (out: Action[]): Job[] => out.flatMap((a) => (a.type === 'run' ? [a.job] : []));
const logs = (out: Action[]): string[] => out.flatMap((a) => (a.type === 'log' ? [`${a.level}: ${a.message}`] : []));

function cookieFor(b: BrokerCore, client: Endpoint, now: number): Uint8Array {
  const out = sendActs(b.datagram(LISTENER, m.encodeCookieRequest(), client, now));
  return m.decodeCookieReply((m.parseFrame(out[0].data) as m.Frame).payload)!;
}

/** COOKIE + PREPARE + setup ok; returns all actions. */
function connect(b: BrokerCore, client: Endpoint, now: number, uuid = 'foobar', socket: SocketRef = LISTENER): Action[] {
  const cookie = cookieFor(b, client, now);
  const out = b.datagram(socket, m.encodePrepare(cookie, m.utf8Encode(uuid), 1, 1), client, now);
  const setup = out.find((a) => a.type === 'setup');
  if (!setup || setup.type !== 'setup') return out;
  return [...out, ...b.setupResult(setup.setup.tunnelId, { ok: true }, now)];
}

// ---------------------------------------------------------------------------------------------
// Issue 10 item 1: reflection

test('a 6-byte KEEPALIVE from an unknown endpoint gets no answer; a 12-byte one gets 12 bytes, 7-11 are cut', () => {
  const b = broker();
  const header = Uint8Array.from([0x80, 0x73, 0xa7, 0x01, 0x05, 0x00]);
  assert.equal(sendActs(b.datagram(LISTENER, header, C1, T0)), [], 'no 7-byte ERROR to a 6-byte request');
  assert.is(b.counters.get('drop-short-keepalive'), 1);
  // what real clients send: 10 bytes padded to 12 (spec §2.4.5)
  const real = sendActs(b.datagram(LISTENER, m.encodeClientKeepalive(1), C2, T0));
  assert.equal(real.map((a) => toHex(a.data)), ['80 73 a7 01 03 01 04 00 00 00 00 00']);
  for (let len = 7; len < 12; len++) {
    const d = new Uint8Array(len);
    d.set(header);
    const out = sendActs(b.datagram(LISTENER, d, { ip: '198.51.100.20', port: len }, T0));
    assert.is(out.length, 1);
    assert.is(out[0].data.length, len);
    assert.equal(toHex(out[0].data.subarray(0, 7)), '80 73 a7 01 03 01 04');
  }
});

test('every message type on a listener, any length, from a stranger or a client: never more bytes out than in', () => {
  const b = broker({ maxTunnels: 1 });
  connect(b, C1, T0);
  const types = [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x7f, 0x80, 0x81, 0xff];
  let seen = 0;
  let answered = 0;
  let port = 1;
  for (const type of types) {
    for (let len = 0; len <= 40; len++) {
      for (const fill of [0x00, 0x58]) {
        const d = new Uint8Array(len).fill(fill);
        d.set([0x80, 0x73, 0xa7, 0x01, type, Math.max(0, len - 6)].slice(0, len));
        for (const from of [{ ip: '198.51.100.99', port: port++ }, C1]) {
          for (const socket of [LISTENER, TUN100]) {
            if (b.tunnelCount === 0) connect(b, C1, T0 + 1); // an ERROR closed it: a new one (id 100 again: pool of 1)
            const out = sendActs(b.datagram(socket, d, from, T0 + 1));
            seen++;
            const bytes = out.reduce((n, a) => n + a.data.length, 0);
            if (bytes) answered++;
            assert.ok(bytes <= len, `type 0x${type.toString(16)} len ${len} from ${from.ip}:${from.port} on ${socket.kind}: ${bytes} bytes out`);
          }
        }
      }
    }
  }
  assert.ok(answered > 50, `some were answered (${answered} of ${seen})`);
  assert.is(b.tunnelCount, 1, 'no fake PREPARE created anything');
});

test('answers to unauthenticated datagrams share a global budget', () => {
  const b = broker();
  let answered = 0;
  for (let i = 0; i < ANSWER_BUDGET_BURST + 500; i++) {
    const from = { ip: `198.51.100.${i % 250}`, port: 1000 + i };
    answered += sendActs(b.datagram(LISTENER, m.encodeCookieRequest(), from, T0)).length;
  }
  assert.is(answered, ANSWER_BUDGET_BURST);
  assert.is(b.counters.get('drop-answer-budget'), 500);
  // refills over time (2,000 per second)
  assert.is(sendActs(b.datagram(LISTENER, m.encodeCookieRequest(), C2, T0 + 1)).length, 1);
});

test('PMTUD probes and reliable messages on a tunnel socket: answers cut to the request, tiny probes not answered', () => {
  const b = broker();
  connect(b, C1, T0);
  const probe = (len: number): Uint8Array => {
    const p = new Uint8Array(len);
    p.set([0x80, 0x73, 0xa7, 0x01, 0x06, 0x00]);
    return p;
  };
  assert.equal(sendActs(b.datagram(TUN100, probe(6), C1, T0)), []);
  assert.equal(sendActs(b.datagram(TUN100, probe(1306), C1, T0)).map((a) => toHex(a.data)), ['80 73 a7 01 07 02 05 1a 00 00 00 00']);
  assert.equal(sendActs(b.datagram(TUN100, probe(10), C1, T0)).map((a) => toHex(a.data)), ['80 73 a7 01 07 02 00 0a 00 00']);
  assert.is(b.counters.get('drop-short-probe'), 1);
});

// ---------------------------------------------------------------------------------------------
// Issue 10 item 3: LIMIT

test('LIMIT: applied only when the value changes, at most 2 changes per 60 s per tunnel, every one acknowledged', () => {
  const b = broker();
  connect(b, C1, T0);
  const limit = (seq: number, kbps: number, now: number): Action[] => b.datagram(TUN100, m.encodeLimitBandwidthDown(seq, kbps), C1, now);
  const tc = (out: Action[]): number => jobs(out).filter((j) => j.path === '/usr/sbin/tc').length;
  const acked = (out: Action[], seq: number): boolean => sendActs(out).some((a) => a.data[4] === 0x08 && ((a.data[6] << 8) | a.data[7]) === seq);
  let out = limit(0, 1024, T0);
  assert.is(tc(out), 4);
  assert.ok(acked(out, 0));
  // retransmits of the same LIMIT (lost REL_ACK): acknowledged, tc not run again
  for (let i = 0; i < 50; i++) {
    out = limit(0, 1024, T0 + i);
    assert.is(tc(out), 0);
    assert.ok(acked(out, 0));
  }
  assert.is(b.counters.get('limits-unchanged'), 50);
  assert.is(tc(limit(1, 2048, T0 + 100)), 4, 'a change is applied');
  out = limit(2, 512, T0 + 200);
  assert.is(tc(out), 0, 'a third change within 60 s is refused');
  assert.ok(acked(out, 2));
  assert.ok(logs(out).some((l) => l.startsWith('warning') && l.includes('ignoring LIMIT 512 kbit/s') && l.includes('2048 kbit/s stays')), logs(out).join('\n'));
  out = limit(3, 256, T0 + 300);
  assert.equal(logs(out).filter((l) => l.startsWith('warning')), [], 'warned once per tunnel');
  assert.is(b.counters.get('refused-limit-rate'), 2);
  // a flood of alternating values runs tc at most once per minute after the burst
  let runs = 0;
  for (let t = 0; t < 10 * 60_000; t += 100) runs += tc(limit(t & 0xffff, 1000 + (t % 2000 === 0 ? 1 : 2), T0 + 1000 + t));
  assert.ok(runs <= 4 * Math.ceil((10 * 60_000) / LIMIT_INTERVAL_MS) + 4, `${runs / 4} applications in 10 min`);
});

// ---------------------------------------------------------------------------------------------
// Issue 6 item 5: orphans

test('FineCookieJar: age in 250 ms steps, bound to ip and port, expires after 192 s', () => {
  const jar = new FineCookieJar(new Uint8Array(32), (k, msg) => createHmac('sha1', k).update(msg).digest(), 5);
  const c = jar.issue('198.51.100.7', 40000, 10_000);
  assert.is(c.length, 8);
  assert.is(jar.age(c, '198.51.100.7', 40000, 10_000), 0);
  assert.is(jar.age(c, '198.51.100.7', 40000, 24_000), 14_000);
  assert.is(jar.age(c, '198.51.100.7', 40000, 24_100), 14_250);
  assert.is(jar.age(c, '198.51.100.7', 40001, 10_000), null);
  assert.is(jar.age(c, '198.51.100.8', 40000, 10_000), null);
  assert.is(jar.age(c, '198.51.100.7', 40000, 10_000 + 192_000), 192_000);
  assert.is(jar.age(c, '198.51.100.7', 40000, 10_000 + 192_250), null);
  // across the u16 wrap (4.5 h)
  const late = 65_535 * FINE_TICK_MS;
  const w = jar.issue('198.51.100.7', 40000, late);
  assert.is(jar.age(w, '198.51.100.7', 40000, late + 1000), 1000);
});

test('a PREPARE whose client has given up (cookie older than 12 s) creates no tunnel and gets ERROR', () => {
  const b = broker();
  const cookie = cookieFor(b, C1, T0);
  const prepare = m.encodePrepare(cookie, m.utf8Encode('late'), 1, 1);
  const out = b.datagram(LISTENER, prepare, C1, T0 + PREPARE_MAX_COOKIE_AGE_MS + FINE_TICK_MS);
  assert.not.ok(out.some((a) => a.type === 'setup'));
  assert.equal(sendActs(out).map((a) => toHex(a.data)), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
  assert.ok(logs(out).some((l) => l.includes(`its cookie is ${(PREPARE_MAX_COOKIE_AGE_MS + FINE_TICK_MS) / 1000} s old`)), logs(out).join('\n'));
  assert.is(b.counters.get('refused-stale-cookie'), 1);
  assert.is(b.tunnelCount, 0);
  // the same PREPARE in time creates the tunnel; its retransmits later still get TUNNEL
  assert.ok(b.datagram(LISTENER, prepare, { ...C1 }, T0 + 3000).some((a) => a.type === 'setup'));
  b.setupResult(100, { ok: true }, T0 + 3000);
  assert.equal(sendActs(b.datagram(TUN100, prepare, C1, T0 + 60_000)).map((a) => a.data[4]), [0x04]);
});

test('a new uuid from an endpoint whose tunnel never heard from its client replaces that orphan', () => {
  const b = broker();
  connect(b, C1, T0, 'first');
  // the new client's PREPARE reaches the orphan's connected tunnel socket (same 4-tuple)
  const out = connect(b, C1, T0 + 20_000, 'second', TUN100);
  const kinds = out.filter((a) => a.type !== 'log').map((a) => (a.type === 'run' ? `run ${a.job.path}` : a.type));
  assert.equal(kinds.slice(0, 5), ['run /hooks/pre-down', 'teardown', 'run /hooks/down', 'setup', 'setMtu']);
  assert.not.ok(sendActs(out).some((a) => a.data[4] === 0x03), 'the endpoint (now the new client) is not sent an ERROR');
  const setup = out.find((a) => a.type === 'setup') as Action & { type: 'setup' };
  assert.is(setup.setup.port, 8942);
  assert.equal(setup.setup.client, C1);
  assert.is(b.tunnelCount, 1);
  assert.is(b.counters.get('tunnels-replaced'), 1);
  assert.equal(b.status(T0).constructor, Object);
  // once the tunnel has heard from its client, a different PREPARE is refused as before
  const tid = setup.setup.tunnelId;
  b.datagram({ kind: 'tunnel', tunnelId: tid }, m.encodeClientKeepalive(0), C1, T0 + 21_000);
  const again = connect(b, C1, T0 + 22_000, 'third', { kind: 'tunnel', tunnelId: tid });
  assert.not.ok(again.some((a) => a.type === 'setup' || a.type === 'teardown'));
  assert.equal(sendActs(again).map((a) => toHex(a.data)).slice(-1), ['80 73 a7 01 03 00 00 00 00 00 00 00']);
});

test('usage counts live tunnels: one that never heard from its client stops counting after 30 s', () => {
  const b = broker({ maxTunnels: 4 });
  connect(b, C1, T0);
  connect(b, C2, T0);
  assert.is(b.usage(1), Math.floor((2 / 4) * 0xffff));
  b.datagram({ kind: 'tunnel', tunnelId: 100 }, m.encodeClientKeepalive(0), C1, T0 + 1000);
  for (let t = T0; t <= T0 + UNHEARD_MS + 1000; t = Math.max(t + 1, b.nextDeadline())) b.tick(t);
  assert.is(b.usage(1), Math.floor((1 / 4) * 0xffff));
  assert.is(b.counters.get('tunnels-unheard'), 1);
  // heard late after all: counts again; closed: not at all
  b.datagram({ kind: 'tunnel', tunnelId: 101 }, m.encodeClientKeepalive(0), C2, T0 + 40_000);
  assert.is(b.usage(1), Math.floor((2 / 4) * 0xffff));
  b.datagram({ kind: 'tunnel', tunnelId: 101 }, m.encodeError(0x11), C2, T0 + 41_000);
  assert.is(b.usage(1), Math.floor((1 / 4) * 0xffff));
  b.shutdown(T0 + 42_000);
  assert.is(b.usage(1), 0);
});

// ---------------------------------------------------------------------------------------------
// Issue 7 item 3: readmission at scale

test('connection_rate_limit is an average with a burst: 1,000 returning routers are admitted at once by default', () => {
  const b = broker({ connectionRateLimit: 10, maxTunnels: 2000 });
  let created = 0;
  for (let i = 0; i < DEFAULT_RATE_LIMIT_BURST + 1; i++) {
    const from = { ip: `198.51.100.${1 + (i % 250)}`, port: 2000 + i };
    if (connect(b, from, T0 + i).some((a) => a.type === 'setup')) created++;
  }
  assert.is(created, DEFAULT_RATE_LIMIT_BURST);
  assert.is(b.counters.get('refused-rate-limit'), 1);
  // then one per 10 s on average
  assert.not.ok(connect(b, { ip: '203.0.113.9', port: 1 }, T0 + 5_000).some((a) => a.type === 'setup'));
  assert.ok(connect(b, { ip: '203.0.113.9', port: 2 }, T0 + 10_500).some((a) => a.type === 'setup'));
  assert.not.ok(connect(b, { ip: '203.0.113.9', port: 3 }, T0 + 12_000).some((a) => a.type === 'setup'));
});

test('config: connection_rate_limit_burst defaults to 1000, is an integer >= 1, bad values name key and value', () => {
  const base = (extra: string): string => `[broker]\naddress=203.0.113.1\nport=8942\ninterface=eth0\nmax_tunnels=10\n` +
    `tunnel_id_base=100\nconnection_rate_limit=10\npmtu=0\n${extra}\n[log]\nverbosity=INFO\nlog_ip_addresses=false\n` +
    '[hooks]\nsession.up=\nsession.pre-down=\nsession.down=\nsession.mtu-changed=\nbroker.connection-rate-limit=\n';
  assert.is(parseConfig(base('')).connectionRateLimitBurst, 1000);
  assert.is(parseConfig(base('connection_rate_limit_burst=1')).connectionRateLimitBurst, 1);
  for (const bad of ['0', '2.5', 'many', '-1']) {
    try {
      parseConfig(base(`connection_rate_limit_burst=${bad}`));
      assert.unreachable(`accepted ${bad}`);
    } catch (e) {
      assert.instance(e, ConfigError);
      assert.match((e as Error).message, new RegExp(`^config broker\\.connection_rate_limit_burst = "${bad.replace('.', '\\.')}": `));
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Issue 10 item 4: fixed PMTU above 1446

test('pmtu=1500: the interface gets 1446 and the client is told 1446 (not 1500); a warning names the values', () => {
  const b = broker({ pmtu: 1500 });
  const out = connect(b, C1, T0);
  assert.equal(out.find((a) => a.type === 'setMtu'), { type: 'setMtu', tunnelId: 100, sessionId: 100, ifname: 'l2tp100-100', mtu: 1446 });
  const ntfy = sendActs(out).filter((a) => a.data[4] === 0x09).map((a) => toHex(a.data));
  assert.equal(ntfy, ['80 73 a7 01 09 02 05 a6 00 00 00 00']);
  const probe = new Uint8Array(1306);
  probe.set([0x80, 0x73, 0xa7, 0x01, 0x06, 0x00]);
  assert.equal(sendActs(b.datagram(TUN100, probe, C1, T0 + 1)).map((a) => toHex(a.data)), ['80 73 a7 01 09 02 05 a6 00 00 00 00']);
  assert.equal(configWarnings(config({ pmtu: 1500 })), [
    'config broker.pmtu = "1500": above 1446 (a 1500-byte path minus 54 bytes of tunnel overhead); tunnel interfaces get MTU 1446 ' +
      'and clients are told 1446 (the original told them 1500)',
  ]);
  assert.equal(configWarnings(config({ pmtu: 1000 })).length, 1);
  assert.equal(configWarnings(config({ pmtu: 1400 })), []);
  assert.equal(configWarnings(config({ pmtu: 0 })), []);
  // pmtu below 1280: told the 1280 it uses
  const low = broker({ pmtu: 1000 });
  assert.equal(sendActs(connect(low, C1, T0)).filter((a) => a.data[4] === 0x09).map((a) => toHex(a.data)), ['80 73 a7 01 09 02 05 00 00 00 00 00']);
});

// ---------------------------------------------------------------------------------------------
// Issue 10 item 2: no client address in any log line with log_ip_addresses=false

test('log_ip_addresses=false: no client address in any log line of core, driver and job runner, on every path', () => {
  const IP = '198.51.100.7';
  const cfg: BrokerConfig = {
    ...CFG, ports: [8942], logIpAddresses: false, perIpCount: 1, perIpTime: 100, connectionRateLimit: 0,
    hooks: { sessionUp: '/up', sessionPreDown: '/predown', sessionDown: '/down', sessionMtuChanged: '/mtu', connectionRateLimit: '/rl' },
  };
  const r = rig(cfg, { jobs: { maxQueue: 1 } });
  // hooks and tc that print the client address (as a hook may), and a slow rate-limit hook so
  // that its queue fills up
  for (const p of ['/up', '/predown', '/down', '/mtu']) r.native.behaviour.set(p, { ms: 50, code: 1, output: `configured ${IP} on the bridge\n` });
  r.native.behaviour.set('/usr/sbin/tc', { ms: 10, code: 2, output: `Error: no route to ${IP}\n` });
  r.native.behaviour.set('/rl', { ms: 5_000, code: 0, output: `blocked ${IP}\n` });
  r.driver.openListeners();
  // handshake, usage, a tunnel
  r.deliver(10, m.encodeUsageRequest(1));
  handshake(r, CLIENT);
  r.loop.advance(1000);
  // tunnel traffic: keepalive, LIMIT (tc with output), PMTU (mtu-changed hook), unknown type
  r.deliver(11, m.encodeClientKeepalive(0));
  r.deliver(11, m.encodeLimitBandwidthDown(0, 1024));
  r.deliver(11, m.encodePmtuNotify(1300));
  r.deliver(11, m.encodeMessage(0x42, [1, 2]));
  // refusals: per-IP limit (hook, then queue full), a different PREPARE, a bad cookie, junk
  for (let port = 2; port < 6; port++) handshake(r, { ip: IP, port }, `u${port}`);
  r.deliver(10, m.encodePrepare(new Uint8Array(8), m.utf8Encode('forged'), 1, 1), { ip: IP, port: 7 });
  r.deliver(10, Uint8Array.of(1, 2, 3), { ip: IP, port: 8 });
  r.deliver(10, m.encodeClientKeepalive(0), { ip: IP, port: 9 });
  // a wrong source on the tunnel socket, socket errors, an addon error naming the address
  r.deliver(11, m.encodeClientKeepalive(1), { ip: IP, port: 1 });
  const sendTo = r.native.sendTo.bind(r.native);
  r.native.sendTo = (fd, data, ip, port) => {
    if (port === 10) throw new TypeError(`sendTo: cannot send to ${ip}:${port}`);
    return sendTo(fd, data, ip, port);
  };
  r.deliver(10, m.encodeCookieRequest(), { ip: IP, port: 10 });
  r.native.send = () => -ERRNO.ECONNREFUSED;
  r.loop.advance(20_000);
  // close via timeout path is long; close via shutdown
  let done = false;
  r.driver.shutdown(65_000, () => { done = true; });
  r.loop.advance(70_000);
  assert.ok(done);
  const text = r.loop.logs.join('\n');
  assert.ok(r.loop.logs.length > 30, `${r.loop.logs.length} lines`);
  // every path was taken
  for (const needle of ['<ip hidden>', 'hook session.up', 'tc for tunnel 100', 'not run, 1 jobs already waiting in queue ip#',
    'more than 1 requests from its IP', 'internal error while executing send', ' closed: ', 'hook broker.connection-rate-limit']) {
    assert.ok(text.includes(needle), `no line with "${needle}":\n${text}`);
  }
  assert.not.ok(text.includes(IP), text.split('\n').filter((l) => l.includes(IP)).join('\n'));
  assert.not.ok(text.includes('198.51.100.'), 'no client address at all');
  assert.ok(text.includes('203.0.113.1:8942'), 'the broker\'s own address stays visible');
  // hooks still got the real address
  assert.ok([...r.native.children.values()].some((c) => c.path === '/up' && c.args.includes(IP)));
});

test('brokerLogLoop follows log_ip_addresses when a reload switches it', () => {
  const inner = new FakeLoop();
  const cfg = { logIpAddresses: true, address: '198.51.100.1' };
  const logLoop = brokerLogLoop(inner, cfg);
  logLoop.log('info', 'client 203.0.113.9 on 198.51.100.1');
  cfg.logIpAddresses = false; // what BrokerCore.reconfigure does to the running config
  logLoop.log('info', 'client 203.0.113.9 on 198.51.100.1');
  cfg.logIpAddresses = true;
  logLoop.log('info', 'client 203.0.113.9 again');
  assert.equal(inner.logs, [
    'info: client 203.0.113.9 on 198.51.100.1',
    'info: client <ip hidden> on 198.51.100.1',
    'info: client 203.0.113.9 again',
  ]);
});

test('redactAddresses: every IPv4 address but the kept ones; not version-like longer dotted numbers', () => {
  const keep = new Set(['203.0.113.1']);
  assert.is(redactAddresses('from 198.51.100.7:40000 to 203.0.113.1:8942, (10.0.0.1)', keep),
    'from <ip hidden>:40000 to 203.0.113.1:8942, (<ip hidden>)');
  assert.is(redactAddresses('version 1.2.3.4.5 and 1.2.3', keep), 'version 1.2.3.4.5 and 1.2.3');
});

// ---------------------------------------------------------------------------------------------
// Issue 10 item 5: SIGHUP

test('broker-main handles SIGHUP (Node would otherwise exit on it)', () => {
  const src = readFileSync(new URL('../../src/main/broker/broker-main.js', import.meta.url), 'utf8');
  // registered right after the loop exists, before the slow start-up steps
  const at = src.indexOf('signals.SIGHUP');
  assert.ok(at > 0, 'no SIGHUP handler');
  assert.ok(at < src.indexOf('resolveL2tpFamily'), 'registered before the start-up steps');
});

// ---------------------------------------------------------------------------------------------
// Issue 10 item 7: two brokers on one host

function lockDir(): string {
  return mkdtempSync(join(tmpdir(), 'td-lock-'));
}

test('id-range lock: a live broker with an overlapping range blocks the start; disjoint ranges and stale files do not', () => {
  const dir = lockDir();
  try {
    const alive = new Set<number>([1111]);
    const fs: LockFs = { ...nodeLockFs, isBroker: (pid) => alive.has(pid) };
    const first = lockIdRange(fs, dir, 100, 355, 1111);
    assert.ok(first.ok);
    assert.equal(readdirSync(dir), ['broker-ids-100-355.pid']);
    assert.is(readFileSync(join(dir, 'broker-ids-100-355.pid'), 'utf8'), '1111\n');
    // overlapping (same or partial) ranges are refused with a clear message
    for (const [a, b] of [[100, 355], [300, 400], [1, 100], [355, 355]]) {
      const second = lockIdRange(fs, dir, a, b, 2222);
      assert.not.ok(second.ok, `${a}-${b}`);
      if (!second.ok) {
        assert.match(second.message, new RegExp(`^tunnel ids ${a}-${b} overlap ids 100-355 of the broker running as pid 1111 \\(${dir}/broker-ids-100-355.pid\\)`));
        assert.match(second.message, /start-up clean-up would delete that broker's tunnels: refusing to start/);
      }
    }
    // disjoint: fine, both files exist
    const other = lockIdRange(fs, dir, 356, 400, 3333);
    assert.ok(other.ok);
    assert.equal(readdirSync(dir).sort(), ['broker-ids-100-355.pid', 'broker-ids-356-400.pid']);
    // the first broker dies without cleaning up: its file is stale and does not block
    alive.delete(1111);
    const after = lockIdRange(fs, dir, 100, 200, 4444);
    assert.ok(after.ok);
    assert.equal(readdirSync(dir).sort(), ['broker-ids-100-200.pid', 'broker-ids-356-400.pid']);
    // release removes only our own file
    if (after.ok) after.release();
    assert.equal(readdirSync(dir), ['broker-ids-356-400.pid']);
    writeFileSync(join(dir, 'broker-ids-356-400.pid'), '5555\n');
    if (other.ok) other.release();
    assert.equal(readdirSync(dir), ['broker-ids-356-400.pid'], 'a file now held by another pid is left alone');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('id-range lock on node:fs: this process counts as a live broker (kill 0 + command line)', () => {
  const dir = lockDir();
  try {
    const mine = lockIdRange(nodeLockFs, dir, 100, 110, process.pid);
    assert.ok(mine.ok);
    // a test runner's command line names the broker test file
    const again = lockIdRange(nodeLockFs, dir, 105, 120, process.pid + 1);
    assert.not.ok(again.ok);
    assert.not.ok(nodeLockFs.isBroker(0x3ffffff0), 'no such process');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
