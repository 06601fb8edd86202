// Broker runtime pieces with fake Native/Loop/kernel: the hook/tc job runner (ordering, output,
// timeout kill) and the action executor (socket options, kernel calls, cleanup, shutdown).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Job } from '../../src/broker/actions.js';
import type { BrokerConfig } from '../../src/broker/config.js';
import { JobRunner } from '../../src/broker/job-runner.js';
import * as m from '../../src/protocol/messages.js';
import { CFG, ERRNO, FakeLoop, FakeNative, handshake, rig as brokerRig, type Child } from './broker-fakes.js';

const job = (queue: string, path: string, ...args: string[]): Job => ({ queue, path, args, logArgs: args, label: `job ${path}` });

test('jobs of one queue run one after another; other queues run in parallel', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/up', { ms: 3000, code: 0 });
  native.behaviour.set('/mtu', { ms: 1000, code: 0 });
  native.behaviour.set('/rl', { ms: 100, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000 });
  const start = loop.t;
  runner.submit(job('tunnel:100', '/up', 'a'));
  runner.submit(job('tunnel:100', '/mtu', 'b'));
  runner.submit(job('ip:x', '/rl', 'c'));
  const spawns = (): string[] => native.calls.filter((c) => c.startsWith('spawn'));
  assert.equal(spawns(), ['spawn /up a', 'spawn /rl c']);
  loop.advance(2900);
  assert.equal(spawns(), ['spawn /up a', 'spawn /rl c']);
  loop.advance(200);
  assert.equal(spawns(), ['spawn /up a', 'spawn /rl c', 'spawn /mtu b']);
  const mtuStart = [...native.children.values()].find((c) => c.path === '/mtu')!.startedAt;
  assert.ok(mtuStart - start >= 3000, 'started after /up exited');
  let idle = false;
  runner.whenIdle(() => { idle = true; });
  assert.not.ok(idle);
  loop.advance(1000);
  assert.ok(idle);
  assert.is(runner.pending, 0);
});

test('each job is reniced right after its spawn: hooks.nice (default 10), 0 = not at all; a failure is no error', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/up', { ms: 100, code: 0 });
  new JobRunner(native, loop, { timeoutMs: 30_000 }).submit(job('tunnel:100', '/up', 'a'));
  const child = [...native.children.keys()];
  assert.equal(native.renices, [[child[0], 10]]);
  native.renices = [];
  native.reniceResult = -ERRNO.ESRCH; // gone already (a hook that exits at once)
  const logsBefore = loop.logs.length;
  new JobRunner(native, loop, { timeoutMs: 30_000, nice: 19 }).submit(job('tunnel:101', '/up', 'b'));
  assert.equal(native.renices, [[[...native.children.keys()][1], 19]]);
  loop.advance(1000);
  assert.not.ok(loop.logs.slice(logsBefore).some((l) => /^(warning|error)/.test(l)), loop.logs.join('\n'));
  native.renices = [];
  new JobRunner(native, loop, { timeoutMs: 30_000, nice: 0 }).submit(job('tunnel:102', '/up', 'c'));
  assert.equal(native.renices, []);
});

test('output and exit code are logged when a job exits; ignoreFailure logs at debug', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/hook', { ms: 10, code: 3, output: 'hello\nworld\n' });
  native.behaviour.set('/tc', { ms: 10, code: 2, output: 'RTNETLINK answers: No such file or directory\n' });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000 });
  runner.submit(job('q', '/hook', 'x', 'y'));
  runner.submit({ ...job('q', '/tc', 'qdisc', 'del'), ignoreFailure: true });
  loop.advance(1000);
  const warn = loop.logs.filter((l) => l.startsWith('warning'));
  assert.is(warn.length, 1);
  assert.match(warn[0], /^warning: job \/hook: \/hook x y exited with code 3 after 0\.\d s; output: hello \| world$/);
  assert.ok(loop.logs.some((l) => l.startsWith('debug: job /tc: /tc qdisc del exited with code 2')));
});

test('a job still running after the timeout is killed with its process group; the queue goes on', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/hang', { ms: Infinity, code: 0 });
  native.behaviour.set('/next', { ms: 10, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000 });
  runner.submit(job('q', '/hang'));
  runner.submit(job('q', '/next'));
  loop.advance(29_000);
  assert.not.ok(native.calls.some((c) => c.startsWith('kill')));
  loop.advance(1_500);
  assert.ok(native.calls.includes('kill -500 9'), native.calls.join(','));
  assert.ok(loop.logs.some((l) => l.startsWith('warning: job /hang: still running after 30 s, killing it')));
  assert.ok(loop.logs.some((l) => /job \/hang: \/hang was killed \(exit 137\)/.test(l)));
  assert.ok(native.calls.includes('spawn /next'));
});

test('a job that cannot start is logged and skipped', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/ok', { ms: 10, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000 });
  runner.submit(job('q', '/missing', 'a'));
  runner.submit(job('q', '/ok'));
  assert.ok(loop.logs.includes('error: job /missing: cannot run /missing: No such file or directory'));
  assert.ok(native.calls.includes('spawn /ok'));
});

test('queues are bounded', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/slow', { ms: 1000, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000, maxQueue: 3 });
  for (let i = 0; i < 10; i++) runner.submit(job('ip:1', '/slow', String(i)));
  assert.is(runner.pending, 3);
  loop.advance(10_000);
  assert.is(native.calls.filter((c) => c.startsWith('spawn')).length, 3);
});

/** Spawned children alive at each moment: records the most at once. */
function trackConcurrency(native: FakeNative, loop: FakeLoop): { peak: () => number } {
  let peak = 0;
  const alive = new Set<Child>();
  const spawn = native.spawn.bind(native);
  native.spawn = (path, args) => {
    const r = spawn(path, args);
    if (typeof r !== 'number') alive.add(native.children.get(r.pid)!);
    for (const c of alive) if (c.exitAt <= loop.t || c.killedWith) alive.delete(c);
    peak = Math.max(peak, alive.size);
    return r;
  };
  return { peak: () => peak };
}

test('global cap: at most maxRunning jobs at once; keys take turns; order per key kept', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/a', { ms: 100, code: 0 });
  native.behaviour.set('/b', { ms: 100, code: 0 });
  native.behaviour.set('/c', { ms: 100, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000, maxRunning: 2 });
  const conc = trackConcurrency(native, loop);
  for (const i of [1, 2, 3]) runner.submit(job('A', '/a', String(i)));
  runner.submit(job('B', '/b', '1'));
  runner.submit(job('C', '/c', '1'));
  const spawns = (): string[] => native.calls.filter((c) => c.startsWith('spawn')).map((c) => c.slice(6));
  assert.equal(spawns(), ['/a 1', '/b 1']);
  assert.is(runner.pending, 5);
  loop.advance(100);
  // A finished first job goes behind C, which waited for a slot
  assert.equal(spawns(), ['/a 1', '/b 1', '/c 1', '/a 2']);
  loop.advance(1000);
  assert.equal(spawns(), ['/a 1', '/b 1', '/c 1', '/a 2', '/a 3']);
  assert.is(conc.peak(), 2);
  assert.is(runner.peakRunning, 2);
  assert.not.ok(runner.busy);
});

test('shutdown of 10,000 tunnels: two hooks each, 32 at a time, every pre-down before its down', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/predown', { ms: 50, code: 0 });
  native.behaviour.set('/down', { ms: 50, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000, maxRunning: 32 });
  const conc = trackConcurrency(native, loop);
  const tunnels = 10_000;
  for (let t = 0; t < tunnels; t++) {
    runner.submit(job(`tunnel:${t}`, '/predown', String(t)));
    runner.submit(job(`tunnel:${t}`, '/down', String(t)));
  }
  assert.is(runner.runningCount, 32);
  let idleAt = -1;
  const start = loop.t;
  runner.whenIdle(() => { idleAt = loop.t; });
  loop.advance(60_000);
  assert.ok(idleAt > 0, 'all hooks done');
  const spawned = [...native.children.values()];
  assert.is(spawned.length, 2 * tunnels);
  assert.is(conc.peak(), 32);
  // 20,000 jobs of 50 ms, 32 at a time: 625 rounds
  assert.is(idleAt - start, Math.ceil((2 * tunnels) / 32) * 50);
  const predownAt = new Map<string, number>();
  for (const c of spawned) if (c.path === '/predown') predownAt.set(c.args[0], c.startedAt + 50);
  for (const c of spawned) if (c.path === '/down') assert.ok(c.startedAt >= predownAt.get(c.args[0])!, `tunnel ${c.args[0]}`);
  assert.is(loop.timers.length, 0, 'no timer left once idle');
  assert.is(native.pidFds.size, 0, 'every pidfd closed');
});

test('abandon() under the cap: waiting jobs dropped, running ones killed, then idle', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.behaviour.set('/hang', { ms: Infinity, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000, maxRunning: 3 });
  for (let t = 0; t < 10; t++) runner.submit(job(`tunnel:${t}`, '/hang', String(t)));
  let idle = false;
  runner.whenIdle(() => { idle = true; });
  runner.abandon();
  loop.advance(10);
  assert.ok(idle);
  assert.is(native.calls.filter((c) => c.startsWith('spawn')).length, 3);
  assert.is(native.calls.filter((c) => c.startsWith('kill -')).length, 3);
});

test('without pidfd_open (kernel < 5.3) children are polled, and only while one runs', () => {
  const loop = new FakeLoop();
  const native = new FakeNative(loop);
  native.pidWatchResult = -ERRNO.ENOSYS;
  native.behaviour.set('/hook', { ms: 1000, code: 0 });
  const runner = new JobRunner(native, loop, { timeoutMs: 30_000, pollMs: 250 });
  runner.submit(job('q', '/hook', '1'));
  runner.submit(job('q', '/hook', '2'));
  loop.advance(1000);
  assert.is(native.calls.filter((c) => c.startsWith('spawn')).length, 2, 'first noticed by the poll');
  loop.advance(1000);
  assert.not.ok(runner.busy);
  assert.is(loop.timers.length, 0, 'poll timer stopped when nothing runs');
});

// ---------------------------------------------------------------------------------------------
// BrokerDriver

/** The fakes' rig with hook exits on pidfds (the fakes' default is polling). */
const rig = (cfg: BrokerConfig = CFG): ReturnType<typeof brokerRig> => brokerRig(cfg, { pidfd: true });

test('listeners: SO_REUSEPORT, SO_BINDTODEVICE, bind per port; an unbindable port is skipped', () => {
  const r = rig();
  r.native.failBind.add(53);
  assert.is(r.driver.openListeners(), 1);
  assert.equal(r.native.calls, [
    'socket=10', 'reuseport 10', 'bindtodevice 10 eth0', 'bind 10 203.0.113.1:8942', 'rcvbuf 10 4194304',
    'socket=11', 'reuseport 11', 'bindtodevice 11 eth0', 'bind 11 203.0.113.1:53', 'close 11',
  ]);
  assert.ok(r.loop.logs.some((l) => l === 'warning: cannot listen on 203.0.113.1:53 (bind: Address already in use); skipping this port'));
  assert.ok(r.loop.logs.includes('info: listening on 203.0.113.1:8942 (interface eth0), receive buffer 8388608 bytes'), r.loop.logs.join('\n'));
});

test('listener receive buffer: the granted size is logged, also when it is less than asked for or fails', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.native.recvBufferResult = 425_984;
  r.driver.openListeners();
  assert.ok(r.loop.logs.some((l) => l.startsWith('info: listening on 203.0.113.1:8942') &&
    l.includes('receive buffer 425984 bytes (asked for 4194304; SO_RCVBUFFORCE needs CAP_NET_ADMIN')), r.loop.logs.join('\n'));
  const f = rig({ ...CFG, ports: [8942] });
  f.native.recvBufferResult = -ERRNO.EINVAL;
  f.driver.openListeners();
  assert.ok(f.loop.logs.some((l) => l.endsWith('receive buffer: default, setting 4194304 bytes failed: error 22')), f.loop.logs.join('\n'));
  assert.is(f.driver.listenerCount, 1, 'still listening');
});

test('a PREPARE creates socket, kernel tunnel and session, sets the MTU, answers TUNNEL, runs session.up', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  r.native.calls = [];
  handshake(r);
  assert.equal(r.native.calls.slice(0, 6), [
    'socket=11', 'reuseport 11', 'bindtodevice 11 eth0', 'bind 11 203.0.113.1:8942', 'connect 11 198.51.100.7:40000', 'pmtuprobe 11',
  ]);
  assert.equal(r.kernel.calls, [
    'createTunnel 100 peer 1 fd 11', 'createSession 100/100 peer 1 l2tp100-100', 'setLinkMtu l2tp100-100 1446', 'setSessionMtu 100/100 1446',
  ]);
  assert.equal(r.native.sent.at(-1), { fd: 11, hex: '80 73 a7 01 04 08 00 00 00 64 00 00 00 01' });
  assert.ok(r.native.calls.includes('spawn /up 100 100 l2tp100-100 1446 198.51.100.7 40000 8942 foobar 8942'));
  assert.ok(r.loop.readable.has(11), 'tunnel socket watched');
  // keepalives come from the timer
  r.loop.advance(3_500);
  assert.ok(r.native.sent.some((s) => s.fd === 11 && s.hex === '80 73 a7 01 05 02 00 00 00 00 00 00'));
  // client closes: session and tunnel deleted, socket closed, ERROR 01 sent before
  r.kernel.calls = [];
  r.deliver(11, m.encodeError(0x11));
  assert.equal(r.kernel.calls, ['deleteSession 100/100', 'deleteTunnel 100']);
  assert.ok(r.native.calls.includes('close 11'));
  assert.not.ok(r.loop.readable.has(11));
  assert.equal(r.native.sent.at(-1), { fd: 11, hex: '80 73 a7 01 03 01 01 00 00 00 00 00' });
  r.loop.advance(1000);
  const spawns = r.native.calls.filter((c) => c.startsWith('spawn')).map((c) => c.split(' ')[1]);
  assert.equal(spawns, ['/up', '/predown', '/down']);
});

test('the driver wakes exactly at the next deadline, and a datagram costs no scan of the tunnels', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  handshake(r);
  const wakeups: number[] = [];
  const tick = r.core.tick.bind(r.core);
  r.core.tick = (now) => (wakeups.push(now), tick(now));
  r.loop.advance(10_000);
  // random 0.5: first probe 2 s, first keepalive 3 s after TUNNEL, then one probe/s and a
  // keepalive every 5 s: every wake-up is 1 ms after a deadline (the +1 of the timer)
  const t0 = wakeups[0] - 2001;
  assert.equal(wakeups.map((t) => t - t0).slice(0, 4), [2001, 3001, 4001, 5001]);
  assert.ok(r.native.sent.filter((x) => x.fd === 11 && x.hex.startsWith('80 73 a7 01 05 02')).length >= 2, 'keepalives sent');
  // one timer at a time
  assert.is(r.loop.timers.filter((x) => x.at > r.loop.t).length >= 1, true);
});

test('a failed session create deletes the tunnel, closes the socket and refuses via the listener', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  r.kernel.failSession = -ERRNO.EEXIST;
  handshake(r);
  assert.equal(r.kernel.calls, ['createTunnel 100 peer 1 fd 11', 'createSession 100/100 peer 1 l2tp100-100', 'deleteTunnel 100']);
  assert.ok(r.native.calls.includes('close 11'));
  assert.equal(r.native.sent.at(-1), { fd: 10, hex: '80 73 a7 01 03 00 00 00 00 00 00 00', to: '198.51.100.7:40000' });
  assert.ok(r.loop.logs.some((l) => l.startsWith('error: tunnel 100') && l.includes('kernel session create failed: File exists')));
  assert.is(r.core.tunnelCount, 0);
});

test('shutdown: listeners closed, ERROR 02, kernel teardown, waits for pre-down/down hooks', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  handshake(r);
  r.loop.advance(1000);
  let result: boolean | null = null;
  r.driver.shutdown(65_000, (clean) => { result = clean; });
  assert.ok(r.native.calls.includes('close 10'), 'listener closed');
  assert.equal(r.native.sent.at(-1), { fd: 11, hex: '80 73 a7 01 03 01 02 00 00 00 00 00' });
  // one pipelined TUNNEL_DELETE (the kernel closes the session itself), then the socket
  assert.equal(r.kernel.calls.slice(-1), ['deleteTunnels 100']);
  assert.ok(r.native.calls.includes('close 11'));
  assert.is(result, null, 'hooks still running');
  r.loop.advance(1000);
  assert.is(result, true);
  assert.equal(r.native.calls.filter((c) => c.startsWith('spawn')).map((c) => c.split(' ')[1]), ['/up', '/predown', '/down']);
  assert.ok(r.loop.logs.some((l) => /^info: shutdown: told 1 clients \(ERROR 0x02\) after \d+ ms; deleted 1 kernel tunnels/.test(l)),
    r.loop.logs.join('\n'));
  assert.ok(r.loop.logs.some((l) => /^info: shutdown: hooks finished after \d+ ms; 2 hooks run/.test(l)), r.loop.logs.join('\n'));
});

test('shutdown: a down hook waits until the kernel no longer lists its tunnel, the pre-down does not', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  handshake(r);
  handshake(r, { ip: '198.51.100.8', port: 40001 }, 'other');
  r.loop.advance(1000);
  r.native.behaviour.set('/predown', { ms: 10, code: 0 });
  r.kernel.listedAfterDelete = 5; // listed by the first five polls (100 ms apart), gone at the sixth
  const spawnsAt = (): string[] => r.native.calls.filter((c) => /^spawn \/(predown|down)/.test(c)).map((c) => c.split(' ').slice(1, 3).join(' '));
  let result: boolean | null = null;
  const t0 = r.loop.t;
  r.driver.shutdown(65_000, (clean) => { result = clean; });
  assert.equal(spawnsAt(), ['/predown 100', '/predown 101'], 'pre-down hooks at once');
  r.loop.advance(550);
  assert.equal(spawnsAt(), ['/predown 100', '/predown 101'], 'no down hook while the kernel still lists the tunnels');
  r.loop.advance(100);
  assert.equal(spawnsAt(), ['/predown 100', '/predown 101', '/down 100', '/down 101']);
  r.loop.advance(300);
  assert.is(result, true);
  assert.ok(r.loop.logs.some((l) => /^info: shutdown: the kernel removed all 2 tunnels after 600 ms/.test(l)), r.loop.logs.join('\n'));
  assert.ok(r.loop.t - t0 < 1000);
});

test('shutdown: while a full round of hooks waits for a slot the kernel is listed once a second, then every 100 ms', () => {
  const r = rig({ ...CFG, ports: [8942], maxConcurrentJobs: 1 });
  r.driver.openListeners();
  handshake(r);
  handshake(r, { ip: '198.51.100.8', port: 40001 }, 'other');
  r.loop.advance(1000);
  r.native.behaviour.set('/predown', { ms: 2500, code: 0 });
  r.kernel.listedAfterDelete = 6; // listed by six dumps, gone at the seventh
  const startsOf = (path: string): number[] => [...r.native.children.values()].filter((c) => c.path === path).map((c) => c.startedAt);
  let result: boolean | null = null;
  const t0 = r.loop.t;
  r.driver.shutdown(65_000, (clean) => { result = clean; });
  // one slot: tunnel 100's pre-down runs, 101's waits: dumps at 0.1, 1.1 and 2.1 s, not every 100 ms
  r.loop.advance(2450);
  assert.is(r.kernel.listCount, 3);
  // 101's pre-down runs from 2.5 s, nothing waits: dumps at 2.5, 2.6, 2.7 s, gone at the seventh (2.8 s)
  r.loop.advance(1000);
  assert.is(r.kernel.listCount, 7);
  assert.ok(r.loop.logs.some((l) => /^info: shutdown: the kernel removed all 2 tunnels after 2800 ms \(7 dumps of its tunnel list, 0 ms\)/.test(l)),
    r.loop.logs.join('\n'));
  r.loop.advance(6000);
  assert.is(result, true);
  // each down after its own pre-down, one at a time
  assert.equal(startsOf('/predown').map((t) => t - t0), [0, 2500]);
  assert.equal(startsOf('/down').map((t) => t - t0), [5000, 5200]);
});

test('shutdown: the kernel cannot list tunnels: down hooks run anyway; failed deletes named in one line', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  handshake(r);
  r.loop.advance(1000);
  r.kernel.deleteResults.set(100, -ERRNO.EADDRINUSE);
  r.kernel.listTunnelsResult = -ERRNO.ENOENT;
  let result: boolean | null = null;
  r.driver.shutdown(65_000, (clean) => { result = clean; });
  assert.ok(r.loop.logs.some((l) => l.startsWith('warning: shutdown: TUNNEL_DELETE failed for 1 tunnels: 100 (Address already in use)')),
    r.loop.logs.join('\n'));
  r.loop.advance(1000);
  assert.is(result, true);
  assert.ok(r.loop.logs.some((l) => l.startsWith('warning: shutdown: cannot list kernel L2TP tunnels (No such file or directory)')));
  assert.equal(r.native.calls.filter((c) => c.startsWith('spawn')).map((c) => c.split(' ')[1]), ['/up', '/predown', '/down']);
});

test('shutdown gives up on hung hooks after the grace time', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  handshake(r);
  r.loop.advance(1000);
  r.native.behaviour.set('/predown', { ms: Infinity, code: 0 });
  let result: boolean | null = null;
  r.driver.shutdown(10_000, (clean) => { result = clean; });
  r.loop.advance(9_000);
  assert.is(result, null);
  r.loop.advance(2_000);
  assert.is(result, false);
  assert.ok(r.native.calls.some((c) => c.startsWith('kill')));
  // the pre-down hung and was killed; its down hook never ran: both counted in one line
  assert.ok(r.loop.logs.some((l) => l.startsWith('warning: shutdown: still busy after 10 s: 1 hooks killed, 1 never run;')),
    r.loop.logs.join('\n'));
});

test('startup deletes the stale kernel tunnels in our id range only, in one pipelined call, and says so in one line', () => {
  const r = rig();
  r.kernel.sessions = [{ tunnelId: 100, sessionId: 100 }, { tunnelId: 5, sessionId: 1 }, { tunnelId: 115, sessionId: 1 }];
  r.kernel.tunnels = [{ tunnelId: 100 }, { tunnelId: 5 }, { tunnelId: 99 }, { tunnelId: 101 }, { tunnelId: 102 }, { tunnelId: 115 }];
  r.kernel.deleteResults.set(115, -ERRNO.EADDRINUSE);
  // the kernel finished removing 101 between the dump and the delete: gone, not a failure
  r.kernel.deleteResults.set(101, -ERRNO.ENODEV);
  r.driver.cleanupStaleKernelState();
  // no SESSION_DELETE: deleting a tunnel closes its sessions in the kernel
  assert.equal(r.kernel.calls, ['deleteTunnels 100,101,102,115']);
  const lines = r.loop.logs.filter((l) => l.includes('start-up:'));
  assert.is(lines.length, 2, lines.join('\n'));
  assert.match(lines[0], /^info: start-up: 4 kernel tunnels in our id range 100-115 were left by an earlier run \(100-102, 115\): deleted in \d+ ms/);
  assert.match(lines[1], /^warning: start-up: deleting 1 stale kernel tunnels failed: 115 \(Address already in use\)$/);
});

test('startup: ids of stale kernel tunnels are handed out last; EEXIST on one refuses the client but keeps the id', () => {
  const r = rig({ ...CFG, ports: [8942], maxTunnels: 4 });
  r.kernel.tunnels = [{ tunnelId: 100 }, { tunnelId: 101 }];
  r.driver.cleanupStaleKernelState();
  r.kernel.tunnels = [];
  r.driver.openListeners();
  r.kernel.createResults.set(100, -ERRNO.EEXIST); // still being removed by the kernel
  const ids = (): number[] => r.core.tunnelList().map((t) => t.tunnelId).sort();
  handshake(r, { ip: '198.51.100.8', port: 1 }, 'a');
  handshake(r, { ip: '198.51.100.8', port: 2 }, 'b');
  assert.equal(ids(), [102, 103], 'fresh ids first');
  handshake(r, { ip: '198.51.100.8', port: 3 }, 'c');
  assert.equal(ids(), [102, 103], 'EEXIST on 100: refused');
  assert.ok(r.loop.logs.some((l) => l.includes('kernel tunnel 100, ours (from an earlier run or closed just now), is still being removed')), r.loop.logs.join('\n'));
  assert.is(r.core.counters.get('refused-id-still-in-kernel'), 1);
  handshake(r, { ip: '198.51.100.8', port: 4 }, 'd');
  assert.equal(ids(), [101, 102, 103]);
  r.kernel.createResults.delete(100); // gone now
  handshake(r, { ip: '198.51.100.8', port: 5 }, 'e');
  assert.equal(ids(), [100, 101, 102, 103], 'id 100 was not retired');
});

test('bad datagrams on a socket are counted, not fatal', () => {
  const r = rig({ ...CFG, ports: [8942] });
  r.driver.openListeners();
  for (let i = 0; i < 100; i++) r.deliver(10, Uint8Array.from({ length: i % 20 }, (_, k) => (k * 37 + i) & 0xff));
  assert.is(r.core.counters.get('datagrams'), 100);
  assert.ok(r.core.counters.get('drop-short') + r.core.counters.get('drop-magic') === 100);
});

test.run();
