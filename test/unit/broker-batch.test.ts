// BrokerDriver with a DatagramReader (batched reception, src/runtime/datagram-batch.ts): the same
// answers as the per-datagram path, one clock reading and one timer re-arm per batch, no new
// Endpoint for a tunnel's own datagrams, and datagrams of a socket closed earlier in the same
// batch are dropped. The reader here is a test double; the addon's is tested in
// datagram-batch.test.ts and by the VM scenarios.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Endpoint } from '../../src/native.js';
import { DatagramBatch, HandedDatagramReader, type HandedDatagram } from '../../src/runtime/datagram-batch.js';
import * as m from '../../src/protocol/messages.js';
import { CFG, CLIENT, ERRNO, rig } from './broker-fakes.js';
import { DeadlineFakeLoop, type FakeLoop } from './fake-loop.js';

type Item = HandedDatagram;

/** The driver's reader: what a loop turn read, handed over by the test (sources default to CLIENT). */
class FakeReader extends HandedDatagramReader {
  batches = 0;
  constructor() {
    super(new DatagramBatch(new Uint8Array(16 * 2048), new Int32Array(16 * 8), 2048));
  }
  override turn(items: readonly Item[]): void {
    this.batches++;
    super.turn(items.map(([fd, data, from]): Item => [fd, data, from ?? CLIENT]));
  }
}

const LISTENER = 10;
const TUNNEL_FD = 12; // fds: 10, 11 listeners (ports 8942, 53), 12 the first tunnel socket

/** A reader whose tunnel sockets are read at most every `deferMs` (as the addon's). */
class DeferringReader extends FakeReader {
  constructor(readonly deferMs: number) {
    super();
  }
}

/** A broker with the fake reader (batched) or without (per-datagram), one tunnel up. */
function upRig(batched: boolean, reader: FakeReader = new FakeReader(), loop?: FakeLoop) {
  const r = rig(CFG, batched ? { reader, loop } : { loop });
  r.driver.openListeners();
  const feed = (items: Item[]): void => {
    if (batched) return reader.turn(items);
    for (const [fd, data, from] of items) {
      if (typeof data === 'number') continue;
      r.deliver(fd, data, from ?? CLIENT);
    }
  };
  feed([[LISTENER, m.encodeCookieRequest()]]);
  const cookie = Uint8Array.from(r.native.sent.at(-1)!.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  feed([[LISTENER, m.encodePrepare(cookie, m.utf8Encode('uuid-1'), 1, 1)]]);
  assert.is(r.core.tunnelCount, 1);
  return { ...r, reader, feed };
}

test('a batch gets the same answers as the per-datagram path', () => {
  const other: Endpoint = { ip: '198.51.100.99', port: 1234 };
  const items: Item[] = [
    [TUNNEL_FD, m.encodeClientKeepalive(1)],
    [TUNNEL_FD, m.encodePmtuProbe(1400)],
    [TUNNEL_FD, m.encodeClientKeepalive(2), other],
    [LISTENER, m.encodeUsageRequest(0)],
    [LISTENER, Uint8Array.of(1, 2, 3)],
  ];
  const results = [false, true].map((batched) => {
    const r = upRig(batched);
    const before = r.native.sent.length;
    r.feed(items);
    return { sent: r.native.sent.slice(before), logs: r.loop.logs.filter((l) => !l.startsWith('debug')), counters: r.core.counters.snapshot() };
  });
  assert.is(results[0].sent.length, 2, 'the probe and the USAGE were answered');
  assert.equal(results[1].sent, results[0].sent);
  assert.equal(results[1].logs, results[0].logs);
  assert.equal(results[1].counters, results[0].counters);
  assert.ok(results[1].logs.some((l) => l.includes('ignoring a message from 198.51.100.99:1234')), 'the other source, formatted');
});

test('one clock reading and one timer re-arm per batch, however many datagrams', () => {
  const r = upRig(true);
  let nows = 0;
  const now = r.loop.now.bind(r.loop);
  r.loop.now = () => (nows++, now());
  let arms = 0;
  const setTimer = r.loop.setTimer.bind(r.loop);
  r.loop.setTimer = (ms, cb) => (arms++, setTimer(ms, cb));
  let deadlines = 0;
  const nextDeadline = r.core.nextDeadline.bind(r.core);
  r.core.nextDeadline = () => (deadlines++, nextDeadline());
  r.reader.turn(Array.from({ length: 10 }, (_, k): Item => [TUNNEL_FD, m.encodeClientKeepalive(k)]));
  assert.is(nows, 1);
  assert.is(deadlines, 1);
  assert.ok(arms <= 1);
});

test("a tunnel's own datagrams reuse its peer Endpoint; another source gets a new one", () => {
  const r = upRig(true);
  const seen: Endpoint[] = [];
  const datagram = r.core.datagram.bind(r.core);
  r.core.datagram = (s, d, from, now) => (seen.push(from), datagram(s, d, from, now));
  r.reader.turn([[TUNNEL_FD, m.encodeClientKeepalive(1)], [TUNNEL_FD, m.encodeClientKeepalive(2)]]);
  r.reader.turn([[TUNNEL_FD, m.encodeClientKeepalive(3), { ip: '198.51.100.8', port: CLIENT.port }]]);
  assert.is(seen.length, 3);
  assert.ok(seen[0] === seen[1], 'same object');
  assert.equal(seen[0], CLIENT);
  assert.ok(seen[2] !== seen[0]);
  assert.equal(seen[2], { ip: '198.51.100.8', port: CLIENT.port });
});

test('datagrams after the one that closed their tunnel, in the same batch, are dropped', () => {
  const r = upRig(true);
  const before = r.native.sent.length;
  r.reader.turn([[TUNNEL_FD, m.encodeError(0x11)], [TUNNEL_FD, m.encodePmtuProbe(1400)]]);
  assert.is(r.core.tunnelCount, 0);
  assert.not.ok(r.reader.watched.has(TUNNEL_FD));
  assert.is(r.native.sent.slice(before).filter((s) => s.fd === TUNNEL_FD && s.hex.startsWith('80 73 a7 01 07')).length, 0, 'no PMTUD_ACK');
});

test('socket errors in a batch count toward closing the tunnel; truncated datagrams are dropped and counted', () => {
  const r = upRig(true);
  r.reader.turn([[TUNNEL_FD, -ERRNO.EAGAIN], [TUNNEL_FD, -ERRNO.EINTR]]);
  assert.is(r.core.tunnelCount, 1, 'EAGAIN/EINTR are no errors');
  const before = r.native.sent.length;
  r.reader.turn([[TUNNEL_FD, new Uint8Array(3000)]]);
  assert.is(r.native.sent.length, before);
  assert.ok(r.core.counters.get('drop-oversized') === 1);
  r.reader.turn(Array.from({ length: 10 }, (): Item => [TUNNEL_FD, -ERRNO.ECONNREFUSED]));
  assert.is(r.core.tunnelCount, 0, 'closed after 10 socket errors');
  assert.ok(r.loop.logs.some((l) => l.includes('10 socket errors')));
});

/** A reader that also sends in batches, recorded in native.calls next to the other socket calls. */
class SendingReader extends FakeReader {
  sendBatches: { fd: number; n: number }[] = [];
  /** How many of a batch go out (the rest "fail"); Infinity: all. */
  accept = Infinity;
  constructor(private readonly record: (fd: number, d: Uint8Array) => void, private readonly calls: string[]) {
    super();
  }
  sendBatch(fd: number, datagrams: readonly Uint8Array[]): number {
    const n = Math.min(datagrams.length, this.accept);
    this.sendBatches.push({ fd, n: datagrams.length });
    this.calls.push(`sendBatch ${fd} ${n}/${datagrams.length}`);
    for (const d of datagrams.slice(0, n)) this.record(fd, d);
    return n;
  }
}

function sendingRig() {
  const r0 = { calls: [] as string[], rec: null as null | ((fd: number, d: Uint8Array) => void) };
  const reader = new SendingReader((fd, d) => r0.rec!(fd, d), r0.calls);
  const r = rig(CFG, { reader });
  r.native.calls = r0.calls;
  r0.rec = (fd, d) => r.native.sent.push({ fd, hex: Array.from(d, (x) => x.toString(16).padStart(2, '0')).join(' ') });
  r.driver.openListeners();
  reader.turn([[LISTENER, m.encodeCookieRequest()]]);
  const cookie = Uint8Array.from(r.native.sent.at(-1)!.hex.split(' ').slice(6, 14).map((x) => parseInt(x, 16)));
  reader.turn([[LISTENER, m.encodePrepare(cookie, m.utf8Encode('uuid-1'), 1, 1)]]);
  assert.is(r.core.tunnelCount, 1);
  return { ...r, reader };
}

const ackHex = (probeSize: number): string => {
  const n = probeSize - 28;
  return `80 73 a7 01 07 02 ${(n >> 8).toString(16).padStart(2, '0')} ${(n & 0xff).toString(16).padStart(2, '0')}`;
};

test("a client's PMTU round read in one batch is answered with one sendBatch, in order", () => {
  const r = sendingRig();
  const before = r.native.sent.length;
  const sizes = [1334, 1400, 1450, 1476, 1492, 1500];
  r.reader.turn(sizes.map((s): Item => [TUNNEL_FD, m.encodePmtuProbe(s)]));
  assert.equal(r.reader.sendBatches.at(-1), { fd: TUNNEL_FD, n: 6 });
  assert.equal(r.native.sent.slice(before).map((s) => s.hex.slice(0, 23)), sizes.map(ackHex));
});

test('a batch that stops early: the failing datagram is sent alone (its error counted), the rest follow', () => {
  const r = sendingRig();
  r.reader.accept = 2;
  const before = r.native.sent.length;
  r.reader.turn([1334, 1400, 1450, 1476].map((s): Item => [TUNNEL_FD, m.encodePmtuProbe(s)]));
  // 2 by the batch, the third alone (the fake native's send succeeds), the fourth alone
  assert.equal(r.native.sent.slice(before).map((s) => s.hex.slice(0, 23)), [1334, 1400, 1450, 1476].map(ackHex));
  assert.ok(r.native.calls.includes(`sendBatch ${TUNNEL_FD} 2/4`));
});

test('sends queued for a socket go out before anything else happens to it (teardown, other sockets)', () => {
  const r = sendingRig();
  r.native.calls.length = 0;
  // a probe (ACK queued), then the client's ERROR: the ACK goes out before the socket closes
  r.reader.turn([[TUNNEL_FD, m.encodePmtuProbe(1400)], [TUNNEL_FD, m.encodeError(0x11)]]);
  const closeAt = r.native.calls.indexOf(`close ${TUNNEL_FD}`);
  assert.ok(closeAt >= 0, r.native.calls.join('; '));
  assert.ok(r.native.sent.some((s) => s.fd === TUNNEL_FD && s.hex.startsWith(ackHex(1400))));
  assert.not.ok(r.native.calls.slice(closeAt).some((c) => c.startsWith('sendBatch')), 'nothing sent after the close');
});

test('shutdown stops the listeners in the reader', () => {
  const r = upRig(true);
  assert.ok(r.reader.watched.has(LISTENER));
  r.driver.shutdown(1000, () => {});
  assert.not.ok(r.reader.watched.has(LISTENER));
  assert.not.ok(r.reader.watched.has(11));
});


test('a deferring reader: the deadlines due before the next read are served in the read that came first, each once', () => {
  const AHEAD = 500;
  const runs = [new DeferringReader(AHEAD), new FakeReader()].map((reader) => {
    const r = upRig(true, reader);
    const due = r.core.nextDeadline();
    assert.ok(Number.isFinite(due));
    r.loop.advance(due - 300 - r.loop.t); // the timer is not due yet
    const before = r.native.sent.length;
    r.reader.turn([[TUNNEL_FD, m.encodeClientKeepalive(1)]]);
    const inRead = r.native.sent.slice(before).map((x) => x.hex);
    r.loop.advance(300 + 5);
    const byTimer = r.native.sent.slice(before + inRead.length).map((x) => x.hex);
    return { inRead, byTimer, next: r.core.nextDeadline() - due };
  });
  const [ahead, plain] = runs;
  assert.is(plain.inRead.length, 0, 'without deferral the read sends nothing');
  assert.ok(plain.byTimer.length > 0, 'the timer sends what was due');
  assert.equal(ahead.inRead, plain.byTimer, 'the deferring reader sends the same in the read');
  assert.is(ahead.byTimer.length, 0, 'and nothing twice when the deadline comes');
  assert.is(ahead.next, plain.next, 'the schedule after it is the same (ticked as of its own deadline)');
});

test('with the runtime\'s re-armable timer: armed for the next deadline, moved later when a read served the ones ahead (no wake-up left behind)', () => {
  const loop = new DeadlineFakeLoop();
  const r = upRig(true, new DeferringReader(500), loop);
  const due = r.core.nextDeadline();
  assert.is(loop.deadlineAt, due, 'armed for the core\'s next deadline');
  r.loop.advance(due - 300 - r.loop.t);
  const before = r.native.sent.length;
  r.reader.turn([[TUNNEL_FD, m.encodeClientKeepalive(1)]]);
  assert.ok(r.native.sent.length > before, 'the read served what was due before the next read');
  const next = r.core.nextDeadline();
  assert.ok(next > due + 300, `the next deadline ${next - due} ms after the served one`);
  assert.is(loop.deadlineAt, next, 'the timer moved to it');
  const fires = loop.deadlineFires;
  r.loop.advance(400);
  assert.is(loop.deadlineFires, fires, 'no wake-up at the served deadline');
  // and it fires at the next one and serves it
  const sent = r.native.sent.length;
  r.loop.advance(next - r.loop.t);
  assert.is(loop.deadlineFires, fires + 1);
  assert.ok(r.native.sent.length > sent || r.core.nextDeadline() > next, 'the deadline was served');
  assert.is(loop.deadlineAt, r.core.nextDeadline(), 'and re-armed for the one after');
  r.driver.shutdown(1000, () => {});
  assert.is(loop.deadlineAt, Infinity, 'stopped at shutdown');
});

test.run();
