// The broker driver with the netlink worker (executor.ts: setups, teardowns and MTU changes wait
// for the kernel off the event loop): the order of kernel calls, hooks and answers is the same as
// with synchronous calls, nothing is answered before the kernel is done, a tunnel closed while
// its setup is still in the kernel is undone, and the setups waiting are bounded, the PREPAREs
// beyond served in order as they finish.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Endpoint } from '../../src/native.js';
import * as m from '../../src/protocol/messages.js';
import { BrokerMetrics } from '../../src/broker/metrics.js';
import { PREPARE_QUEUE_MAX } from '../../src/broker/prepare-queue.js';
import { CFG, CLIENT, ERRNO, FakeWorker, rig } from './broker-fakes.js';

const ONE_PORT = { ...CFG, ports: [8942] };
const TUNNEL_HEX = '80 73 a7 01 04 08 00 00 00 64 00 00 00 01';

function workerRig(cfg = ONE_PORT) {
  const worker = new FakeWorker();
  const r = rig(cfg, { worker });
  r.driver.openListeners();
  return { ...r, worker };
}

type R = ReturnType<typeof workerRig>;

function cookieFor(r: R, from: Endpoint): Uint8Array {
  r.deliver(10, m.encodeCookieRequest(), from);
  const reply = r.native.sent.at(-1)!;
  return Uint8Array.from(reply.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
}

function prepare(r: R, cookie: Uint8Array, from: Endpoint = CLIENT, uuid = 'foobar'): void {
  r.deliver(10, m.encodePrepare(cookie, m.utf8Encode(uuid), 1, 1), from);
}

const spawned = (r: R): string[] => r.native.calls.filter((c) => c.startsWith('spawn')).map((c) => c.split(' ')[1]);

test('worker: TUNNEL goes out only once tunnel and session exist; a PREPARE repeated meanwhile gets nothing', () => {
  const r = workerRig();
  const cookie = cookieFor(r, CLIENT);
  prepare(r, cookie);
  assert.equal(r.worker.calls, ['createTunnel 100 peer 1 fd 11']);
  assert.ok(r.native.calls.includes('connect 11 198.51.100.7:40000'), 'the socket is made at once');
  const sentBefore = r.native.sent.length;
  prepare(r, cookie);
  assert.is(r.native.sent.length, sentBefore, 'no TUNNEL (nor anything else) before the kernel is done');
  assert.is(r.core.counters.snapshot()['prepare-retransmits'], 1);
  assert.is(r.worker.completeNext(), 'createTunnel 100 peer 1 fd 11');
  // the session only after the tunnel's ACK
  assert.equal(r.worker.calls.slice(1), ['createSession 100/100 l2tp100-100']);
  assert.not.ok(r.loop.readable.has(11));
  r.worker.completeNext();
  assert.equal(r.native.sent.at(-1), { fd: 11, hex: TUNNEL_HEX });
  assert.ok(r.loop.readable.has(11), 'tunnel socket watched');
  assert.equal(r.worker.calls.slice(2), ['setLinkMtu l2tp100-100 1446', 'setSessionMtu 100/100 1446']);
  r.loop.advance(1000);
  assert.equal(spawned(r), [], 'session.up waits for the MTU');
  r.worker.completeAll();
  r.loop.advance(10);
  assert.equal(spawned(r), ['/up']);
  assert.is(r.core.tunnelCount, 1);
});

test('worker: a close deletes session and tunnel off the loop; socket closed and down hook run only after', () => {
  const r = workerRig();
  prepare(r, cookieFor(r, CLIENT));
  r.worker.completeAll();
  r.loop.advance(1000);
  r.worker.calls = [];
  r.deliver(11, m.encodeError(0x11));
  assert.equal(r.worker.calls, ['deleteSession 100/100', 'deleteTunnel 100']);
  assert.not.ok(r.loop.readable.has(11), 'not read any more');
  assert.not.ok(r.native.calls.includes('close 11'), 'the socket stays until the kernel tunnel is deleted');
  r.loop.advance(1000);
  assert.equal(spawned(r), ['/up', '/predown'], 'down waits for the kernel');
  r.worker.completeNext();
  r.loop.advance(1000);
  assert.equal(spawned(r), ['/up', '/predown']);
  r.worker.completeNext();
  assert.ok(r.native.calls.includes('close 11'));
  r.loop.advance(1000);
  assert.equal(spawned(r), ['/up', '/predown', '/down']);
});

test('worker: a failed session create deletes the tunnel, then closes the socket and refuses the client', () => {
  const r = workerRig();
  r.worker.results.set('createSession', -ERRNO.EEXIST);
  prepare(r, cookieFor(r, CLIENT));
  r.worker.completeNext();
  r.worker.completeNext();
  assert.equal(r.worker.calls, ['createTunnel 100 peer 1 fd 11', 'createSession 100/100 l2tp100-100', 'deleteTunnel 100']);
  assert.equal(r.native.sent.at(-1), { fd: 10, hex: '80 73 a7 01 03 00 00 00 00 00 00 00', to: '198.51.100.7:40000' });
  assert.ok(r.loop.logs.some((l) => l.startsWith('error: tunnel 100') && l.includes('kernel session create failed: File exists')));
  assert.not.ok(r.native.calls.includes('close 11'));
  r.worker.completeNext();
  assert.ok(r.native.calls.includes('close 11'));
  assert.is(r.core.tunnelCount, 0);
});

test('worker: a shutdown while a setup is in the kernel undoes it when it answers; nothing is sent to that client', () => {
  const r = workerRig();
  prepare(r, cookieFor(r, CLIENT));
  let clean: boolean | null = null;
  r.driver.shutdown(55_000, (c) => { clean = c; });
  assert.is(r.worker.completeNext(), 'createTunnel 100 peer 1 fd 11');
  // no session in a tunnel being undone: straight to the delete
  assert.equal(r.worker.calls.slice(1), ['deleteTunnel 100']);
  r.worker.completeNext();
  assert.ok(r.native.calls.includes('close 11'));
  assert.not.ok(r.native.sent.some((s) => s.hex === TUNNEL_HEX));
  r.loop.advance(2000);
  assert.is(clean, true);
  assert.equal(spawned(r), []);
});

test('worker: a shutdown waits for the down hook of a tunnel whose teardown was still in the kernel', () => {
  const r = workerRig();
  prepare(r, cookieFor(r, CLIENT));
  r.worker.completeAll();
  r.loop.advance(1000);
  r.deliver(11, m.encodeError(0x11));
  let clean: boolean | null = null;
  r.driver.shutdown(55_000, (c) => { clean = c; });
  r.loop.advance(5000);
  assert.is(clean, null, 'not done while the teardown waits');
  r.worker.completeAll();
  r.loop.advance(1000);
  assert.is(clean, true);
  assert.equal(spawned(r), ['/up', '/predown', '/down']);
});

const TUNNEL_PREFIX = '80 73 a7 01 04 08';
const tunnelsSent = (r: R): number => r.native.sent.filter((s) => s.hex.startsWith(TUNNEL_PREFIX)).length;
const createsSubmitted = (r: R): number => r.worker.calls.filter((c) => c.startsWith('createTunnel')).length;

function nineClients(r: R): { clients: Endpoint[]; cookies: Uint8Array[] } {
  const clients = Array.from({ length: 9 }, (_, i): Endpoint => ({ ip: `198.51.100.${10 + i}`, port: 40000 }));
  return { clients, cookies: clients.map((c) => cookieFor(r, c)) };
}

test('worker: setups waiting for the kernel are bounded (8 before any creation); the PREPARE beyond waits in line and is served as soon as one finishes', async () => {
  const r = workerRig();
  const metrics = new BrokerMetrics(r.core, { processMetrics: false });
  const { clients, cookies } = nineClients(r);
  clients.forEach((c, i) => prepare(r, cookies[i], c, `uuid${i}`));
  assert.is(createsSubmitted(r), 8);
  assert.is(r.core.counters.snapshot()['prepare-waited'], 1);
  assert.is(r.core.counters.snapshot()['drop-setup-backlog'], undefined);
  assert.is(r.core.tunnelCount, 8);
  assert.match(r.core.statusSummary(r.loop.now())[1], 'being set up 8, 1 PREPARE waiting for a setup slot;');
  assert.match(await metrics.text(), /^tunneldigger_prepares_waiting 1$/m);
  // the kernel answers in order: the 8 TUNNEL_CREATEs, then the first SESSION_CREATE, whose
  // setup's slot goes to the waiting PREPARE at once, without the client repeating it
  for (let i = 0; i < 8; i++) r.worker.completeNext();
  assert.is(createsSubmitted(r), 8);
  assert.is(r.worker.completeNext(), 'createSession 100/100 l2tp100-100');
  assert.is(createsSubmitted(r), 9);
  assert.is(r.core.tunnelCount, 9);
  assert.is(r.core.preparesWaiting, 0);
  assert.match(await metrics.text(), /^tunneldigger_prepares_waiting 0$/m);
  r.worker.completeAll();
  assert.is(tunnelsSent(r), 9);
  assert.is(r.core.counters.snapshot()['tunnels-created'], 9);
});

test('worker: a PREPARE repeated while it waits keeps its place and makes no second tunnel; the waiting ones go in arrival order', () => {
  const r = workerRig({ ...ONE_PORT, maxTunnels: 64 });
  const extra = Array.from({ length: 10 }, (_, i): Endpoint => ({ ip: `198.51.100.${30 + i}`, port: 40001 }));
  const { clients, cookies } = nineClients(r);
  const extraCookies = extra.map((c) => cookieFor(r, c));
  clients.forEach((c, i) => prepare(r, cookies[i], c, `uuid${i}`));
  extra.forEach((c, i) => prepare(r, extraCookies[i], c, `x${i}`));
  r.loop.advance(3000);
  prepare(r, cookies[8], clients[8], 'uuid8');
  extra.forEach((c, i) => prepare(r, extraCookies[i], c, `x${i}`));
  assert.is(r.core.counters.snapshot()['prepare-waited'], 11);
  assert.is(r.core.counters.snapshot()['prepare-retransmits'], 11);
  r.worker.completeAll();
  assert.is(r.core.counters.snapshot()['tunnels-created'], 19);
  assert.is(tunnelsSent(r), 19);
  const order = r.core.tunnelList().map((t) => t.uuid);
  assert.equal(order.slice(8), ['uuid8', ...extra.map((_, i) => `x${i}`)]);
});

test('worker: a PREPARE that waited past its cookie\'s age gets ERROR when its turn comes, and takes no slot', () => {
  const r = workerRig();
  const { clients, cookies } = nineClients(r);
  clients.forEach((c, i) => prepare(r, cookies[i], c, `uuid${i}`));
  // the kernel answers nothing for 13 s: the eight are still within their clients' 15 s
  r.loop.advance(13_000);
  r.worker.completeAll();
  assert.is(r.core.counters.snapshot()['tunnels-created'], 8);
  assert.is(r.core.counters.snapshot()['refused-stale-cookie'], 1);
  assert.ok(r.native.sent.some((s) => s.to === '198.51.100.18:40000' && s.hex.startsWith('80 73 a7 01 03')), 'ERROR to the ninth');
  assert.is(createsSubmitted(r), 8);
  assert.is(r.core.tunnelCount, 8);
});

test('worker: an id closed a moment ago that the kernel still holds (EEXIST) is refused once, not retired', () => {
  const r = workerRig({ ...ONE_PORT, maxTunnels: 1 });
  prepare(r, cookieFor(r, CLIENT));
  r.worker.completeAll();
  r.deliver(11, m.encodeError(0x11));
  r.worker.completeAll();
  r.loop.advance(1000);
  const other: Endpoint = { ip: '198.51.100.20', port: 40001 };
  r.worker.results.set('createTunnel', -ERRNO.EEXIST);
  prepare(r, cookieFor(r, other), other, 'second');
  r.worker.completeAll();
  assert.ok(r.loop.logs.some((l) => l.includes('kernel tunnel 100, ours (from an earlier run or closed just now), is still being removed')), r.loop.logs.join('\n'));
  assert.is(r.core.counters.snapshot()['refused-id-still-in-kernel'], 1);
  // the id is still handed out: the next try gets it
  r.worker.results.delete('createTunnel');
  r.loop.advance(16_000);
  const third: Endpoint = { ip: '198.51.100.21', port: 40002 };
  prepare(r, cookieFor(r, third), third, 'third');
  r.worker.completeAll();
  assert.is(r.core.tunnelCount, 1);
});

test('worker: a setup the kernel finishes after the client gave up (15 s from its cookie request) is removed again, no TUNNEL', () => {
  const r = workerRig();
  prepare(r, cookieFor(r, CLIENT));
  r.loop.advance(15_500);
  r.worker.completeNext();
  r.worker.completeNext();
  assert.not.ok(r.native.sent.some((s) => s.hex === TUNNEL_HEX), 'no TUNNEL to a client that left');
  assert.equal(r.worker.calls.slice(2), ['deleteSession 100/100', 'deleteTunnel 100']);
  assert.is(r.core.counters.get('setup-after-give-up'), 1);
  assert.is(r.core.counters.get('tunnels-created'), 0);
  assert.is(r.core.tunnelCount, 0);
  r.worker.completeAll();
  r.loop.advance(1000);
  assert.equal(spawned(r), [], 'never up: no hooks');
});

test('worker: past PREPARE_QUEUE_MAX waiting, a PREPARE from a new endpoint is dropped; a repeat of one in line is not', () => {
  const r = workerRig({ ...ONE_PORT, maxTunnels: 8000 });
  const n = 8 + PREPARE_QUEUE_MAX + 1;
  const clients = Array.from({ length: n }, (_, i): Endpoint => ({ ip: `198.51.100.${1 + (i % 200)}`, port: 20000 + Math.floor(i / 200) }));
  const cookies = clients.map((c) => cookieFor(r, c));
  clients.forEach((c, i) => prepare(r, cookies[i], c, `u${i}`));
  const c = r.core.counters.snapshot();
  assert.is(c['prepare-waited'], PREPARE_QUEUE_MAX);
  assert.is(c['drop-setup-backlog'], 1);
  prepare(r, cookies[n - 2], clients[n - 2], `u${n - 2}`);
  assert.is(r.core.counters.snapshot()['drop-setup-backlog'], 1);
  assert.is(createsSubmitted(r), 8);
});

test.run();
