// Broker operations: [control]/[metrics] config, the control protocol (drain, close, reload,
// status, tunnels) against the real core, the Unix control server and its client over a real
// socket (bad, idle and oversized peers), metrics values after real events, log line clipping,
// version strings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Endpoint } from '../../src/native.js';
import type { Action, SocketRef } from '../../src/broker/actions.js';
import { BrokerCore } from '../../src/broker/broker.js';
import { ConfigError, parseConfig, parseListen, type BrokerConfig } from '../../src/broker/config.js';
import { controlSocketPath, handleControl, type ControlReply } from '../../src/broker/control.js';
import { BrokerMetrics, hookName } from '../../src/broker/metrics.js';
import { ControlServer } from '../../src/main/broker/control-server.js';
import { BrokerOps } from '../../src/main/broker/broker-ops.js';
import type { BrokerKernel } from '../../src/broker/executor.js';
import type { JobRunner } from '../../src/broker/job-runner.js';
import type { NodeLoop } from '../../src/runtime/node/loop.js';
import type { NodeNative } from '../../src/runtime/node/native.js';
import { ctl, request } from '../../src/main/broker/control-client.js';
import { clipLogMessage, MAX_LOG_MESSAGE } from '../../src/runtime/node/loop.js';
import { VERSION } from '../../src/version.js';
import { parseArgs } from '../../src/client/options.js';
import * as m from '../../src/protocol/messages.js';
import { MessageType } from '../../src/protocol/constants.js';

const LISTENER: SocketRef = { kind: 'listener', port: 8942 };
const C1: Endpoint = { ip: '198.51.100.7', port: 40000 };
const C2: Endpoint = { ip: '198.51.100.8', port: 40001 };
const T0 = 100_000;

const BASE_CFG = `[broker]
address=203.0.113.1
port=8942
interface=eth0
max_tunnels=4
tunnel_id_base=100
connection_rate_limit=0
pmtu=0
[log]
verbosity=INFO
log_ip_addresses=false
[hooks]
session.up=/hooks/up
session.pre-down=
session.down=/hooks/down
session.mtu-changed=
broker.connection-rate-limit=
`;

function broker(text = BASE_CFG): BrokerCore {
  return new BrokerCore(parseConfig(text), {
    key: new Uint8Array(32), mac: (k, msg) => createHmac('sha1', k).update(msg).digest(), startMs: 0,
    random: () => 0.5, errno: osConstants.errno, tcPath: '/usr/sbin/tc',
  });
}

/** COOKIE + PREPARE from `client`, setup reported ok; returns all actions. */
function connect(b: BrokerCore, client: Endpoint, now: number, uuid = 'router-1'): Action[] {
  const cookieReply = b.datagram(LISTENER, m.encodeCookieRequest(), client, now);
  const frame = m.parseFrame((cookieReply.find((a) => a.type === 'send') as { data: Uint8Array }).data) as m.Frame;
  const cookie = m.decodeCookieReply(frame.payload)!;
  const out = b.datagram(LISTENER, m.encodePrepare(cookie, m.utf8Encode(uuid), 1, 1), client, now);
  const setup = out.find((a) => a.type === 'setup');
  if (!setup || setup.type !== 'setup') return out;
  return [...out, ...b.setupResult(setup.setup.tunnelId, { ok: true }, now)];
}

const sentTypes = (actions: Action[]): number[] =>
  actions.flatMap((a) => (a.type === 'send' ? [(m.parseFrame(a.data) as m.Frame).type] : []));
const usageOf = (b: BrokerCore, from: Endpoint): number => {
  const out = b.datagram(LISTENER, m.encodeUsageRequest(1), from, T0);
  const f = m.parseFrame((out[0] as { data: Uint8Array }).data) as m.Frame;
  return (f.payload[0] << 8) | f.payload[1];
};
const okReply = (r: ControlReply): { text: string; data?: unknown } => {
  if (!r.ok) throw new Error(`expected ok, got error ${r.error}`);
  return r;
};
const noReload = (): ControlReply => ({ ok: false, error: 'no reload here' });

test('config: [control] socket and [metrics] listen, IPv4 and IPv6, bad values name the key', () => {
  const c = parseConfig(`${BASE_CFG}[control]\nsocket=/run/td/a.sock\n[metrics]\nlisten=127.0.0.1:9106\n`);
  assert.is(c.controlSocket, '/run/td/a.sock');
  assert.equal(c.metricsListen, { host: '127.0.0.1', port: 9106 });
  assert.is(parseConfig(BASE_CFG).metricsListen, null, 'off when absent');
  assert.equal(parseListen('[::1]:9106'), { host: '::1', port: 9106 });
  assert.equal(parseListen('[2001:db8::7]:80'), { host: '2001:db8::7', port: 80 });
  assert.equal(parseListen('[::ffff:192.0.2.1]:80'), { host: '::ffff:192.0.2.1', port: 80 });
  for (const bad of ['localhost:9106', '127.0.0.1', '[::1]', '::1:9106', '[1::2::3]:1', '256.0.0.1:1', '127.0.0.1:0', '127.0.0.1:70000', '[12345::]:1']) {
    assert.throws(() => parseConfig(`${BASE_CFG}[metrics]\nlisten=${bad}\n`), (e: Error) =>
      e instanceof ConfigError && e.message.startsWith(`config metrics.listen = "${bad}"`), bad);
  }
  assert.throws(() => parseConfig(`${BASE_CFG}[control]\nsocket=relative.sock\n`), /control\.socket = "relative\.sock": must be an absolute path/);
  assert.is(controlSocketPath({}, '/etc/tunneldigger/edge-2.cfg'), '/run/tunneldigger-broker/edge-2.sock');
  assert.is(controlSocketPath({ controlSocket: '/tmp/x.sock' }, '/etc/tunneldigger/edge-2.cfg'), '/tmp/x.sock');
});

test('ctl drain: usage 0xFFFF and PREPARE refused, the existing tunnel stays; undrain admits again', () => {
  const b = broker();
  assert.ok(connect(b, C1, T0).some((a) => a.type === 'setMtu'));
  assert.is(usageOf(b, C2), Math.floor(0xffff / 4));
  const d = handleControl(b, 'drain\n', T0, noReload);
  assert.match(okReply(d.reply).text, /draining: new tunnels are refused, 1 tunnels stay/);
  assert.is(usageOf(b, C2), 0xffff);
  const refused = connect(b, C2, T0 + 10, 'router-2');
  assert.not.ok(refused.some((a) => a.type === 'setup'));
  assert.equal(sentTypes(refused).slice(-1), [MessageType.ERROR]);
  assert.is(b.tunnelCount, 1, 'existing tunnel kept');
  assert.is(b.counters.get('refused-draining'), 1);
  assert.match(okReply(handleControl(b, 'drain', T0, noReload).reply).text, /already draining/);
  handleControl(b, 'undrain', T0, noReload);
  assert.is(usageOf(b, C2), Math.floor(0xffff / 4));
  // a new endpoint (the refused one is held for 15 s) gets a tunnel again
  assert.ok(connect(b, { ip: '198.51.100.9', port: 1 }, T0 + 20, 'router-3').some((a) => a.type === 'setMtu'));
});

test('ctl close by id and by uuid: ERROR to the client, hooks, teardown; unknown refs are errors', () => {
  const b = broker();
  connect(b, C1, T0, 'router-1');
  connect(b, C2, T0, 'router-2');
  const byId = handleControl(b, 'close 100', T0 + 5, noReload);
  assert.match(okReply(byId.reply).text, /closed tunnel 100 \(uuid router-1\)/);
  assert.equal(sentTypes(byId.actions), [MessageType.ERROR]);
  assert.ok(byId.actions.some((a) => a.type === 'teardown'));
  assert.ok(byId.actions.some((a) => a.type === 'run' && a.job.path === '/hooks/down'));
  const byUuid = handleControl(b, 'close router-2', T0 + 5, noReload);
  assert.match(okReply(byUuid.reply).text, /closed tunnel 101/);
  assert.is(b.tunnelCount, 0);
  for (const bad of ['close 100', 'close', 'close a b', 'frobnicate', '', 'tunnels --yaml', 'status x']) {
    const r = handleControl(b, bad, T0, noReload);
    assert.is(r.reply.ok, false, bad);
    assert.equal(r.actions, []);
  }
  assert.is(b.counters.get('tunnels-closed-by:operator'), 2);
});

test('ctl status and tunnels: one row per tunnel, endpoint hidden with log_ip_addresses=false', () => {
  const b = broker();
  connect(b, C1, T0, 'router-1');
  b.datagram({ kind: 'tunnel', tunnelId: 100 }, Uint8Array.from([0x80, 0x73, 0xa7, 0x01, 0x80, 0x08, 0, 0, 0x01, 0x04, 0, 0, 0x08, 0]), C1, T0 + 1000);
  const t = handleControl(b, 'tunnels --json', T0 + 3000, noReload);
  const rows = okReply(t.reply).data as { id: number; uuid: string; endpoint: string; port: number; mtu: number; ageS: number }[];
  assert.is(rows.length, 1);
  assert.equal([rows[0].id, rows[0].uuid, rows[0].endpoint, rows[0].port, rows[0].mtu, rows[0].ageS],
    [100, 'router-1', '<ip hidden>:40000', 8942, 1446, 3]);
  assert.not.match(okReply(t.reply).text, /198\.51\.100\.7/);
  const s = okReply(handleControl(b, 'status', T0, noReload).reply);
  assert.match(s.text, /tunnels: 1\/4 \(3 ids free\)/);
  assert.is((s.data as { tunnels: number }).tunnels, 1);
});

test('reload: live keys apply without touching tunnels, restart keys are named and kept', () => {
  const b = broker();
  connect(b, C1, T0, 'router-1');
  const changed = BASE_CFG.replace('max_tunnels=4', 'max_tunnels=1').replace('session.up=/hooks/up', 'session.up=/hooks/up2')
    .replace('port=8942', 'port=8943').replace('pmtu=0', 'pmtu=1400').replace('verbosity=INFO', 'verbosity=DEBUG');
  const r = b.reconfigure(parseConfig(changed));
  assert.equal(r.needRestart, ['broker.port']);
  assert.ok(r.changed.includes('broker.max_tunnels 4 -> 1'), r.changed.join(';'));
  assert.ok(r.changed.includes('hook sessionUp'));
  assert.equal(b.cfg.ports, [8942], 'port kept');
  assert.is(b.cfg.hooks.sessionUp, '/hooks/up2');
  assert.is(b.tunnelCount, 1, 'tunnel survives a max_tunnels below the tunnel count');
  assert.is(usageOf(b, C2), 0xffff);
  assert.not.ok(connect(b, C2, T0 + 10, 'router-2').some((a) => a.type === 'setup'), 'full at max_tunnels=1');
  // the old tunnel still uses automatic PMTU (a client probe is ACKed, not answered with NOTIFY)
  const probe = b.datagram({ kind: 'tunnel', tunnelId: 100 }, m.encodeMessage(MessageType.PMTUD, new Array(100).fill(0)), C1, T0 + 20);
  assert.equal(sentTypes(probe), [MessageType.PMTUD_ACK]);
  // max_tunnels up again: ids above the old range are handed out
  b.reconfigure(parseConfig(changed.replace('max_tunnels=1', 'max_tunnels=3')));
  const up = connect(b, { ip: '198.51.100.10', port: 5 }, T0 + 30, 'router-4');
  assert.ok(up.some((a) => a.type === 'setMtu'));
  assert.ok(up.some((a) => a.type === 'run' && a.job.path === '/hooks/up2'), 'new hook used');
  assert.is(b.tunnelCount, 2);
});

test('metrics: values follow what happened, no IPs or uuids in labels', async () => {
  const b = broker();
  const metrics = new BrokerMetrics(b, { processMetrics: false });
  connect(b, C1, T0, 'router-1');
  connect(b, C2, T0, 'router-2');
  b.datagram(LISTENER, new Uint8Array([1, 2, 3]), C1, T0);
  handleControl(b, 'close 101', T0, noReload);
  handleControl(b, 'drain', T0, noReload);
  connect(b, { ip: '198.51.100.11', port: 7 }, T0, 'router-3');
  metrics.jobFinished({ queue: 'q', path: '/hooks/up', args: [], logArgs: [], label: 'hook session.up for tunnel 100' }, 0, false, 120);
  metrics.jobFinished({ queue: 'q', path: '/hooks/up', args: [], logArgs: [], label: 'hook session.up for tunnel 101' }, 137, true, 30_000);
  metrics.kernelFailure('createTunnel', 'EEXIST');
  const text = await metrics.text();
  const value = (line: string): number | undefined => {
    const hit = text.split('\n').find((l) => l.startsWith(`${line} `));
    return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
  };
  assert.is(value('tunneldigger_tunnels{port="8942"}'), 1);
  assert.is(value('tunneldigger_tunnels_created_total'), 2);
  assert.is(value('tunneldigger_tunnels_closed_total{reason="operator"}'), 1);
  assert.is(value('tunneldigger_handshakes_total{type="cookie"}'), 3);
  assert.is(value('tunneldigger_handshakes_total{type="prepare"}'), 3);
  assert.is(value('tunneldigger_admission_refusals_total{reason="draining"}'), 1);
  assert.is(value('tunneldigger_draining'), 1);
  assert.is(value('tunneldigger_tunnel_mtu_bucket{le="1446"}'), 1);
  assert.is(value('tunneldigger_tunnel_mtu_bucket{le="1440"}'), 0);
  assert.is(value('tunneldigger_hook_runs_total{hook="session.up"}'), 2);
  assert.is(value('tunneldigger_hook_timeouts_total{hook="session.up"}'), 1);
  assert.is(value('tunneldigger_hook_failures_total{hook="session.up"}'), 1);
  assert.is(value('tunneldigger_hook_duration_seconds_count{hook="session.up"}'), 2);
  assert.is(value('tunneldigger_kernel_call_failures_total{call="createTunnel",errno="EEXIST"}'), 1);
  assert.ok((value('tunneldigger_dropped_datagrams_total{reason="short"}') ?? 0) + 0 >= 0);
  assert.not.match(text, /198\.51\.100|router-/);
  assert.is(hookName({ queue: '', path: '/usr/sbin/tc', args: [], logArgs: [], label: 'tc for tunnel 3' }), 'tc');
});

test('wrapKernel counts failed kernel calls, the pipelined deleteTunnels per tunnel', async () => {
  const b = broker();
  const jobs = { onFinish: null } as unknown as JobRunner;
  const ops = new BrokerOps(b, b.cfg, 'broker.cfg', {} as NodeNative, {} as NodeLoop, jobs);
  const ENOENT = -osConstants.errno.ENOENT;
  const fake: BrokerKernel = {
    lastProblem: '', resolveL2tpFamily: () => 30, createTunnel: () => ENOENT, deleteTunnel: () => 0,
    deleteTunnels: (ids: number[]) => ids.map((id) => (id === 101 ? ENOENT : 0)), createSession: () => 0,
    deleteSession: () => 0, setSessionMtu: () => 0, setLinkMtu: () => 0, listTunnels: () => [], listSessions: () => [],
  };
  const k = ops.wrapKernel(fake);
  assert.equal(k.deleteTunnels!([100, 101, 102]), [0, ENOENT, 0]);
  k.createTunnel({ tunnelId: 1, peerTunnelId: 1, fd: 3 });
  const text = await ops.metrics.text();
  assert.match(text, /^tunneldigger_kernel_call_failures_total\{call="deleteTunnel",errno="ENOENT"\} 1$/m);
  assert.match(text, /^tunneldigger_kernel_call_failures_total\{call="createTunnel",errno="ENOENT"\} 1$/m);
});

test('wrapWorker times each netlink call, counts its failures and shows the calls pending', async () => {
  const b = broker();
  const jobs = { onFinish: null } as unknown as JobRunner;
  let t = 1000;
  const ops = new BrokerOps(b, b.cfg, 'broker.cfg', {} as NodeNative, { now: () => t } as unknown as NodeLoop, jobs);
  const waiting: ((r: number, p: string) => void)[] = [];
  const w = ops.wrapWorker({ submit: (_op, cb) => { waiting.push(cb); }, get pending() { return waiting.length; } });
  const results: number[] = [];
  w.submit({ op: 'createSession', session: { tunnelId: 1, sessionId: 1, peerSessionId: 1, ifname: 'l2tp1-1' } }, (r) => results.push(r));
  w.submit({ op: 'deleteSession', tunnelId: 1, sessionId: 1 }, (r) => results.push(r));
  let text = await ops.metrics.text();
  assert.match(text, /^tunneldigger_kernel_calls_pending 2$/m);
  t += 3000; // RTNL contended: 3 s
  waiting.shift()!(0, '');
  t += 2;
  waiting.shift()!(-osConstants.errno.ENODEV, '');
  assert.equal(results, [0, -osConstants.errno.ENODEV]);
  text = await ops.metrics.text();
  assert.match(text, /^tunneldigger_kernel_calls_pending 0$/m);
  assert.match(text, /^tunneldigger_kernel_call_duration_seconds_bucket\{le="2.5",call="createSession"\} 0$/m);
  assert.match(text, /^tunneldigger_kernel_call_duration_seconds_bucket\{le="10",call="createSession"\} 1$/m);
  // the queue wait counts: submitted with the first, answered 2 ms after it
  assert.match(text, /^tunneldigger_kernel_call_duration_seconds_bucket\{le="2.5",call="deleteSession"\} 0$/m);
  assert.match(text, /^tunneldigger_kernel_call_duration_seconds_sum\{call="deleteSession"\} 3.002$/m);
  assert.match(text, /^tunneldigger_kernel_call_failures_total\{call="deleteSession",errno="ENODEV"\} 1$/m);
});

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'td-ctl-'));
}

test('control server: mode 0600, commands over a real socket, bad/idle/oversized peers, stale socket', async () => {
  const dir = tmp();
  const path = join(dir, 'sub', 'b.sock');
  const b = broker();
  connect(b, C1, T0, 'router-1');
  const logs: string[] = [];
  const server = new ControlServer(path, (req) => handleControl(b, req, T0, noReload).reply, (l, msg) => logs.push(`${l} ${msg}`));
  await server.start();
  try {
    assert.is(statSync(path).mode & 0o777, 0o600);
    const st = await request(path, 'status');
    assert.ok(st.ok && /tunnels: 1\/4/.test(st.text));
    const bad = await request(path, 'rm -rf /');
    assert.is(bad.ok, false);
    // a peer that never sends is dropped, and others are served meanwhile
    const idle = createConnection(path);
    const closed = new Promise<void>((res) => idle.on('close', () => res()));
    assert.ok((await request(path, 'tunnels')).ok);
    // oversized request
    const big = await request(path, 'x'.repeat(5000));
    assert.is(big.ok, false);
    assert.match((big as { error: string }).error, /longer than 1024/);
    await closed;
    assert.ok(logs.some((l) => /sent no complete command/.test(l)));
    // ctl client: output and exit codes
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) } ;
    assert.is(await ctl(['-s', path, 'tunnels'], sink, sink), 0);
    assert.match(out.join(''), /router-1/);
    assert.is(await ctl(['-s', path, 'close', '999'], sink, sink), 1);
    assert.is(await ctl(['-s', path, 'bogus'], sink, sink), 2);
    assert.is(await ctl(['-s', join(dir, 'none.sock'), 'status'], sink, sink), 3);
    // a second broker on the same socket is refused while the first is alive
    await assert.not.ok(await new ControlServer(path, () => ({ ok: true, text: '' }), () => {}).start().then(() => true, () => false));
  } finally {
    server.stop();
  }
  // a socket file left by a killed broker is replaced
  const { createServer } = await import('node:net');
  const ghost = createServer();
  await new Promise<void>((res) => ghost.listen(path, () => res()));
  // close the listener without unlinking: simulate a dead owner
  (ghost as unknown as { _handle: { close(): void } })._handle.close();
  const again = new ControlServer(path, () => ({ ok: true, text: 'again' }), () => {});
  await again.start();
  const r = await request(path, 'status');
  assert.ok(r.ok && r.text === 'again');
  again.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('log lines: long messages are cut below 1 KiB on a character boundary, short ones untouched', () => {
  assert.is(clipLogMessage('short'), 'short');
  const long = 'ä'.repeat(2000);
  const cut = clipLogMessage(long);
  assert.ok(Buffer.byteLength(cut) <= MAX_LOG_MESSAGE, String(Buffer.byteLength(cut)));
  assert.match(cut, /more bytes cut\)$/);
  assert.not.match(cut, /\ufffd/);
});

test('version: both programs report package.json\'s version', () => {
  const pkg = JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string };
  assert.is(VERSION, pkg.version);
  assert.equal(parseArgs(['--version']), { exit: 0, text: `tunneldigger ${VERSION}`, error: false });
});

test('sdNotify (addon): silent without NOTIFY_SOCKET, a datagram to a path or abstract socket, -errno otherwise', async () => {
  const { native } = await import('../../src/runtime/node/native.js');
  const { spawn } = await import('node:child_process');
  const old = process.env.NOTIFY_SOCKET;
  try {
    delete process.env.NOTIFY_SOCKET;
    assert.is(native.sdNotify!('READY=1'), 0);
    process.env.NOTIFY_SOCKET = 'relative/path';
    assert.is(native.sdNotify!('READY=1'), -22, 'EINVAL');
    const dir = tmp();
    process.env.NOTIFY_SOCKET = join(dir, 'none.sock');
    assert.is(native.sdNotify!('READY=1'), -2, 'ENOENT');
    // a real receiver (Node has no AF_UNIX datagram sockets): python3 prints what arrives
    for (const addr of [join(dir, 'n.sock'), `@td-notify-test-${process.pid}`]) {
      const py = spawn('/usr/bin/python3', ['-c', [
        'import socket, sys', 'a = sys.argv[1]', "a = '\\0' + a[1:] if a[0] == '@' else a",
        's = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)', 's.bind(a)', "print('bound', flush=True)",
        "print(s.recv(4096).decode(), flush=True)",
      ].join('\n'), addr]);
      let out = '';
      py.stdout.on('data', (d: Buffer) => (out += d.toString()));
      for (let i = 0; i < 100 && !out.includes('bound'); i++) await new Promise((r) => setTimeout(r, 50));
      process.env.NOTIFY_SOCKET = addr;
      assert.is(native.sdNotify!('STATUS=3 tunnels\nREADY=1'), 1, addr);
      await new Promise<void>((r) => py.on('exit', () => r()));
      assert.match(out, /bound\nSTATUS=3 tunnels\nREADY=1/, addr);
    }
    rmSync(dir, { recursive: true, force: true });
  } finally {
    if (old === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = old;
  }
});

test.run();
