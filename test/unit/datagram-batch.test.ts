// Batched datagram reception: the DatagramBatch view (src/runtime/datagram-batch.ts) and the real
// addon path (watchDatagrams + datagramReader: recvmmsg in td_recv_batch; sendBatch and its form
// with destinations, sendmmsg in td_send_batch_to) on loopback.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DatagramBatch, DGRAM_META_WORDS, DGRAM_PER_SOCKET, DGRAM_SLOTS, packDestination } from '../../src/runtime/datagram-batch.js';
import { formatIpv6, ipv4Number } from '../../src/ip-text.js';
import * as ipBytes from '../../src/protocol/ip-address.js';
import * as m from '../../src/protocol/messages.js';
import { NodeDatagramReader } from '../../src/runtime/node/datagram-reader.js';
import { native as n } from '../../src/runtime/node/native.js';

const LO = '127.0.0.1';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function udp(): { fd: number; port: number } {
  const fd = n.udpSocket();
  assert.ok(fd >= 0);
  assert.is(n.bind(fd, LO, 0), 0);
  return { fd, port: n.localPort(fd) };
}

/** Runs the loop until cond() or ~2 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await sleep(10);
}

test('ip-text.ts: ipv4Number, and formatIpv6 agrees with inet_ntop forms', () => {
  assert.is(ipv4Number('198.51.100.7'), 198 * 2 ** 24 + 51 * 2 ** 16 + 100 * 256 + 7);
  assert.is(ipv4Number('255.255.255.255'), 0xffffffff);
  for (const bad of ['1.2.3', '1.2.3.256', '2001:db8::1', '1.2.3.4 ', 'a.b.c.d', '']) assert.ok(Number.isNaN(ipv4Number(bad)), bad);
  const v6 = (hex: string): Uint8Array => Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
  assert.is(formatIpv6(v6('20010db8000000000000000000000001')), '2001:db8::1');
  assert.is(formatIpv6(v6('00000000000000000000000000000001')), '::1');
  assert.is(formatIpv6(v6('00000000000000000000000000000000')), '::');
  assert.is(formatIpv6(v6('20010db8000000010000000000000000')), '2001:db8:0:1::');
  // a single zero group is not compressed; of two equal runs the first is
  assert.is(formatIpv6(v6('20010db8000000010001000100010001')), '2001:db8:0:1:1:1:1:1');
  assert.is(formatIpv6(v6('20010db8000000000001000000000001')), '2001:db8::1:0:0:1');
  assert.is(formatIpv6(v6('20010000000000010000000000000001')), '2001:0:0:1::1');
  assert.is(formatIpv6(v6('00000000000000000000000000000102')), '::102');
  assert.is(formatIpv6(v6('00000000000000000000ffffc6336407')), '::ffff:198.51.100.7');
  assert.is(formatIpv6(v6('000000000000000000000000c6336407')), '::198.51.100.7');
  assert.is(formatIpv6(v6('20010DB8ABCD00000000000000000000'.toLowerCase())), '2001:db8:abcd::');
});

test('DatagramBatch: push and read back data, errors, truncation and the source', () => {
  const b = new DatagramBatch(new Uint8Array(4 * 16), new Int32Array(4 * DGRAM_META_WORDS), 16);
  assert.is(b.capacity, 4);
  assert.ok(b.push(7, Uint8Array.of(1, 2, 3), { ip: '203.0.113.9', port: 8942 }));
  assert.ok(b.push(8, -111));
  assert.ok(b.push(9, new Uint8Array(20).fill(5), { ip: '198.51.100.1', port: 1 }));
  assert.ok(b.push(10, new Uint8Array(0)));
  assert.not.ok(b.push(11, Uint8Array.of(1)), 'full');
  assert.is(b.count, 4);
  assert.equal([b.fd(0), b.result(0), b.family(0), b.port(0), b.ip(0)], [7, 3, 4, 8942, '203.0.113.9']);
  assert.equal([...b.data(0)], [1, 2, 3]);
  assert.is(b.ipv4(0), ipv4Number('203.0.113.9'));
  assert.equal([b.fd(1), b.result(1), b.family(1), b.ip(1)], [8, -111, 0, '']);
  assert.ok(Number.isNaN(b.ipv4(1)));
  assert.equal([b.result(2), b.truncated(2), b.truncated(0)], [16, true, false]);
  assert.is(b.data(3).length, 0);
});

test('addon reader: datagrams of several sockets in one batch, with sources, then nothing more', async () => {
  const batches: { fd: number; len: number; data: number[]; ip: string; port: number; v4: number }[][] = [];
  const reader = new NodeDatagramReader(n);
  assert.is(reader.start((b) => {
    const rows = [];
    for (let i = 0; i < b.count; i++) rows.push({ fd: b.fd(i), len: b.result(i), data: [...b.data(i)], ip: b.ip(i), port: b.port(i), v4: b.ipv4(i) });
    batches.push(rows);
  }), 0);
  const a = udp();
  const c = udp();
  const tx = udp();
  assert.is(reader.watch(a.fd), 0);
  assert.is(reader.watch(c.fd), 0);
  // queued before the loop runs: one loop turn sees both sockets readable
  for (let k = 0; k < 3; k++) assert.is(n.sendTo(tx.fd, Uint8Array.of(0x80, k), LO, a.port), 2);
  assert.is(n.sendTo(tx.fd, Uint8Array.of(0x81), LO, c.port), 1);
  await until(() => batches.flat().length >= 4);
  const all = batches.flat();
  assert.is(all.length, 4);
  assert.is(batches.length, 1, 'one callback for both sockets');
  assert.equal(all.filter((r) => r.fd === a.fd).map((r) => r.data), [[0x80, 0], [0x80, 1], [0x80, 2]]);
  assert.equal(all.filter((r) => r.fd === c.fd).map((r) => r.data), [[0x81]]);
  for (const r of all) {
    assert.is(r.ip, LO);
    assert.is(r.port, tx.port);
    assert.is(r.v4, ipv4Number(LO));
  }
  await sleep(50);
  assert.is(batches.length, 1, 'no callback without datagrams');
  // unwatch stops delivery; the datagram stays queued in the kernel
  reader.unwatch(c.fd);
  assert.is(n.sendTo(tx.fd, Uint8Array.of(9), LO, c.port), 1);
  await sleep(100);
  assert.is(batches.length, 1);
  const from = { ip: '', port: 0 };
  const buf = new Uint8Array(16);
  assert.is(n.recvFrom(c.fd, buf, from), 1);
  for (const s of [a, c, tx]) n.close(s.fd);
});

test('addon reader: a long queue is read in slices of DGRAM_PER_SOCKET per turn, nothing lost; oversized is flagged', async () => {
  let got = 0;
  let turns = 0;
  let truncated = 0;
  let maxPerTurn = 0;
  const reader = new NodeDatagramReader(n);
  reader.start((b) => {
    turns++;
    maxPerTurn = Math.max(maxPerTurn, b.count);
    for (let i = 0; i < b.count; i++) {
      if (b.truncated(i)) truncated++;
      else got++;
    }
  });
  const rx = udp();
  const tx = udp();
  n.setRecvBuffer(rx.fd, 1 << 20);
  reader.watch(rx.fd);
  const total = 3 * DGRAM_PER_SOCKET + 5;
  for (let k = 0; k < total; k++) assert.is(n.sendTo(tx.fd, Uint8Array.of(k & 0xff), LO, rx.port), 1);
  assert.is(n.sendTo(tx.fd, new Uint8Array(3000), LO, rx.port), 3000);
  await until(() => got + truncated >= total + 1);
  assert.is(got, total);
  assert.is(truncated, 1);
  assert.ok(maxPerTurn <= DGRAM_PER_SOCKET, `at most ${DGRAM_PER_SOCKET} per turn, saw ${maxPerTurn}`);
  assert.ok(turns >= 4, `${turns} turns`);
  n.close(rx.fd);
  n.close(tx.fd);
});

test('addon reader: more readable sockets than a batch holds are all read in the same loop turn, batch after batch', async () => {
  // 700 sockets with a datagram each, a batch holds DGRAM_SLOTS (256). One batch per loop turn
  // with the rest left for epoll to report again is how a load generator with 10,000 sockets
  // fell behind: every batch must come before the loop's next turn.
  const N = 700;
  const got = new Set<number>();
  const batchTurns: number[] = [];
  let turn = 0;
  let ticking = true;
  const tick = () => { turn++; if (ticking) setImmediate(tick); };
  const reader = new NodeDatagramReader(n);
  assert.is(reader.start((b) => {
    batchTurns.push(turn);
    assert.ok(b.count <= DGRAM_SLOTS);
    for (let i = 0; i < b.count; i++) if (b.result(i) === 1) got.add(b.fd(i));
  }), 0);
  const socks = Array.from({ length: N }, () => udp());
  const tx = udp();
  for (const s of socks) assert.is(reader.watch(s.fd), 0);
  // all queued before the loop polls again (loopback delivers at once): one poll sees them all
  for (const s of socks) assert.is(n.sendTo(tx.fd, Uint8Array.of(7), LO, s.port), 1);
  setImmediate(tick);
  try {
    await until(() => got.size >= N);
  } finally {
    ticking = false; // the test's own turn counter must not keep the process alive
  }
  assert.is(got.size, N);
  assert.ok(batchTurns.length >= Math.ceil(N / DGRAM_SLOTS), `in ${batchTurns.length} batches`);
  assert.is(new Set(batchTurns).size, 1, `batches in loop turns ${batchTurns.join(', ')}`);
  for (const s of socks) n.close(s.fd);
  n.close(tx.fd);
});

test('addon reader: a pending socket error comes as a negative result; close() stops the watch', async () => {
  const results: number[] = [];
  const reader = new NodeDatagramReader(n);
  reader.start((b) => {
    for (let i = 0; i < b.count; i++) results.push(b.result(i));
  });
  const closed = udp();
  const port = closed.port;
  n.close(closed.fd);
  const s = udp();
  assert.is(n.connect(s.fd, LO, port), 0);
  reader.watch(s.fd);
  n.send(s.fd, Uint8Array.of(1)); // ICMP port unreachable → ECONNREFUSED pending on s
  await until(() => results.length > 0);
  assert.equal(results, [-n.errno.ECONNREFUSED]);
  n.close(s.fd);
  await sleep(30);
  assert.equal(results, [-n.errno.ECONNREFUSED]);
});

test('addon reader: a socket keeps being read after an ICMP error (libuv stops a poll handle on POLLERR)', async () => {
  // a broker tunnel socket whose client was away for a moment must read its later datagrams
  const results: number[] = [];
  const reader = new NodeDatagramReader(n);
  reader.start((b) => {
    for (let i = 0; i < b.count; i++) results.push(b.result(i));
  });
  const gone = udp();
  const port = gone.port;
  n.close(gone.fd); // nobody listens on port for now
  const s = udp();
  assert.is(n.connect(s.fd, LO, port), 0);
  reader.watch(s.fd);
  n.send(s.fd, Uint8Array.of(1)); // ICMP port unreachable
  await until(() => results.length > 0);
  assert.equal(results, [-n.errno.ECONNREFUSED]);
  const peer = n.udpSocket();
  assert.is(n.bind(peer, LO, port), 0, 'the peer is back on its port');
  assert.is(n.sendTo(peer, Uint8Array.of(7, 7, 7), LO, s.port), 3);
  await until(() => results.length > 1);
  assert.equal(results, [-n.errno.ECONNREFUSED, 3], 'the datagram after the error is read');
  n.close(s.fd);
  n.close(peer);
});

test('addon reader, deferred sockets: the first datagram is read at once, later ones of all deferred sockets together after deferMs; listeners stay immediate', async () => {
  const DEFER = 300;
  const batches: { at: number; fds: number[] }[] = [];
  const reader = new NodeDatagramReader(n, DEFER);
  assert.is(reader.start((b) => {
    const fds: number[] = [];
    for (let i = 0; i < b.count; i++) fds.push(b.fd(i));
    batches.push({ at: performance.now(), fds });
  }), 0);
  const a = udp();
  const c = udp();
  const listener = udp();
  const tx = udp();
  assert.is(reader.watch(a.fd, true), 0);
  assert.is(reader.watch(c.fd, true), 0);
  assert.is(reader.watch(listener.fd), 0);
  await sleep(DEFER + 50); // no read in the last deferMs
  const t0 = performance.now();
  assert.is(n.sendTo(tx.fd, Uint8Array.of(1), LO, a.port), 1);
  await until(() => batches.length >= 1);
  assert.equal(batches.map((b) => b.fds), [[a.fd]], 'a lone datagram is read as it arrives');
  assert.ok(batches[0].at - t0 < DEFER / 2, `read after ${batches[0].at - t0} ms`);
  const first = batches[0].at;
  // within the interval: deferred sockets wait for the timer, the listener does not
  assert.is(n.sendTo(tx.fd, Uint8Array.of(2), LO, c.port), 1);
  assert.is(n.sendTo(tx.fd, Uint8Array.of(3), LO, a.port), 1);
  await sleep(20);
  assert.is(n.sendTo(tx.fd, Uint8Array.of(4), LO, listener.port), 1);
  // one long sleep (no polling timers): the deferred read must come from the addon's own timer
  await sleep(3 * DEFER);
  assert.is(batches.length, 3);
  assert.equal(batches[1].fds, [listener.fd], 'the listener is read at once');
  assert.ok(batches[1].at - first < DEFER - 50, `listener read ${batches[1].at - first} ms after the first read`);
  assert.equal(batches[2].fds.sort((x, y) => x - y), [a.fd, c.fd].sort((x, y) => x - y), 'both deferred sockets in one batch');
  assert.ok(batches[2].at - first >= DEFER - 5, `deferred read ${batches[2].at - first} ms after the first (interval ${DEFER})`);
  assert.ok(batches[2].at - first < DEFER + 150, `deferred read ${batches[2].at - first} ms after the first: on time`);
  // the timer finds nothing: the set is polled again, and a later datagram is read at once
  await sleep(2 * DEFER + 50);
  assert.is(batches.length, 3, 'no callback without datagrams');
  const t1 = performance.now();
  assert.is(n.sendTo(tx.fd, Uint8Array.of(5), LO, c.port), 1);
  await until(() => batches.length >= 4);
  assert.equal(batches[3].fds, [c.fd]);
  assert.ok(batches[3].at - t1 < DEFER / 2, `read after ${batches[3].at - t1} ms`);
  // unwatch and close take a socket out of the set: nothing more is read from it
  reader.unwatch(c.fd);
  n.close(a.fd);
  await sleep(DEFER + 50);
  assert.is(n.sendTo(tx.fd, Uint8Array.of(6), LO, c.port), 1);
  await sleep(DEFER + 100);
  assert.is(batches.length, 4, 'an unwatched deferred socket is not read');
  const buf = new Uint8Array(16);
  assert.is(n.recvFrom(c.fd, buf, { ip: '', port: 0 }), 1, 'its datagram stays queued');
  for (const s of [c, listener, tx]) n.close(s.fd);
});

test('addon reader, deferred sockets: more readable sockets than a batch holds are all read in the same read, batch after batch', async () => {
  // 700 sockets with a datagram each, a batch holds DGRAM_SLOTS (256): the read must not leave
  // the rest for the next deferMs (10,000 tunnels' keepalives are ~1,000 per read)
  const DEFER = 1000;
  const N = 700;
  const got = new Set<number>();
  const batches: number[] = [];
  const reader = new NodeDatagramReader(n, DEFER);
  assert.is(reader.start((b) => {
    batches.push(b.count);
    for (let i = 0; i < b.count; i++) if (b.result(i) === 1) got.add(b.fd(i));
  }), 0);
  const socks = Array.from({ length: N }, () => udp());
  const tx = udp();
  for (const s of socks) assert.is(reader.watch(s.fd, true), 0);
  await sleep(DEFER + 50); // no read of the set in the last deferMs (the earlier tests'): read at once
  const t0 = performance.now();
  for (const s of socks) assert.is(n.sendTo(tx.fd, Uint8Array.of(7), LO, s.port), 1);
  await until(() => got.size >= N);
  const ms = performance.now() - t0;
  assert.is(got.size, N, `${got.size} of ${N} read after ${Math.round(ms)} ms (batches ${batches.join(', ')})`);
  assert.ok(ms < DEFER / 2, `all read after ${Math.round(ms)} ms, not a deferMs later`);
  assert.ok(batches.length >= Math.ceil(N / DGRAM_SLOTS), `in ${batches.length} batches`);
  assert.ok(batches.every((c) => c <= DGRAM_SLOTS));
  for (const s of socks) n.close(s.fd);
  n.close(tx.fd);
});

test('addon reader, deferred sockets: an ICMP error comes as a negative result and the socket is read on', async () => {
  const results: [number, number][] = [];
  const reader = new NodeDatagramReader(n, 100);
  reader.start((b) => {
    for (let i = 0; i < b.count; i++) results.push([b.fd(i), b.result(i)]);
  });
  const gone = udp();
  const port = gone.port;
  n.close(gone.fd);
  const s = udp();
  assert.is(n.connect(s.fd, LO, port), 0);
  assert.is(reader.watch(s.fd, true), 0);
  n.send(s.fd, Uint8Array.of(1)); // ICMP port unreachable → ECONNREFUSED pending on s
  await until(() => results.length > 0);
  assert.equal(results, [[s.fd, -n.errno.ECONNREFUSED]]);
  await sleep(250);
  assert.is(results.length, 1, 'the error is reported once, the set does not spin');
  const peer = n.udpSocket();
  assert.is(n.bind(peer, LO, port), 0);
  assert.is(n.sendTo(peer, Uint8Array.of(7, 7), LO, s.port), 2);
  await until(() => results.length > 1);
  assert.equal(results[1], [s.fd, 2]);
  n.close(s.fd);
  n.close(peer);
});

test('addon reader, deferMs 0: a socket watched as deferred is polled on its own (read at once)', async () => {
  const at: number[] = [];
  const reader = new NodeDatagramReader(n, 0);
  reader.start((b) => { for (let i = 0; i < b.count; i++) at.push(performance.now()); });
  const a = udp();
  const tx = udp();
  assert.is(reader.watch(a.fd, true), 0);
  for (let k = 0; k < 3; k++) {
    const t = performance.now();
    assert.is(n.sendTo(tx.fd, Uint8Array.of(k), LO, a.port), 1);
    await until(() => at.length > k);
    assert.ok(at[k] - t < 100, `read after ${at[k] - t} ms`);
  }
  n.close(a.fd);
  n.close(tx.fd);
});

test('addon sendBatch: datagrams on a connected socket arrive one by one, in order; errors as -errno', async () => {
  const reader = new NodeDatagramReader(n);
  const rx = udp();
  const tx = udp();
  assert.is(n.connect(tx.fd, LO, rx.port), 0);
  assert.is(reader.sendBatch(tx.fd, [Uint8Array.of(1), Uint8Array.of(2, 2), new Uint8Array(1400).fill(3)]), 3);
  const got: number[][] = [];
  const buf = new Uint8Array(2048);
  const from = { ip: '', port: 0 };
  for (let i = 0; i < 100 && got.length < 3; i++) {
    const r = n.recvFrom(rx.fd, buf, from);
    if (r >= 0) got.push([r, buf[0]]);
    else await sleep(10);
  }
  assert.equal(got, [[1, 1], [2, 2], [1400, 3]]);
  assert.is(n.sendBatch(tx.fd, new Uint8Array(4), Int32Array.of(2, 3), 2), -n.errno.EINVAL, 'lengths beyond the buffer');
  assert.is(n.sendBatch(tx.fd, new Uint8Array(4), Int32Array.of(2), 0), -n.errno.EINVAL);
  assert.is(reader.sendBatch(-1, [Uint8Array.of(1), Uint8Array.of(2)]), -n.errno.EBADF);
  n.close(rx.fd);
  n.close(tx.fd);
});

test('addon reader: queuedMs is -1 without setRxTimestamps, the time in the receive queue with it', async () => {
  const got: number[] = [];
  const reader = new NodeDatagramReader(n);
  reader.start((b) => {
    for (let i = 0; i < b.count; i++) got.push(b.queuedMs(i));
  });
  const rx = udp();
  const tx = udp();
  reader.watch(rx.fd);
  n.sendTo(tx.fd, Uint8Array.of(1), LO, rx.port);
  await until(() => got.length > 0);
  assert.equal(got, [-1]);
  assert.is(n.setRxTimestamps!(rx.fd), 0);
  await sleep(50); // the kernel turns its receive timestamps on in a work item
  // the loop is blocked for 150 ms after the send: the datagram waits in the queue meanwhile
  n.sendTo(tx.fd, Uint8Array.of(2), LO, rx.port);
  const t = performance.now();
  while (performance.now() - t < 150) { /* busy: the reader cannot run */ }
  await until(() => got.length > 1);
  assert.ok(got[1] >= 120 && got[1] < 5_000, `queued ${got[1]} ms`);
  reader.unwatch(rx.fd);
  n.close(rx.fd);
  n.close(tx.fd);
});

test('addon sendBatchTo on a listener: the same datagrams from the same address:port as its connected tunnel socket (IPv4, IPv6)', async () => {
  const reader = new NodeDatagramReader(n);
  for (const [family, lo] of [[4, LO], [6, '::1']] as const) {
    const socket = (): number => {
      const fd = n.udpSocket(family);
      assert.ok(fd >= 0);
      assert.is(n.setReusePort(fd), 0);
      return fd;
    };
    const rx = [0, 1].map(() => {
      const fd = n.udpSocket(family);
      assert.is(n.bind(fd, lo, 0), 0, `bind ${lo}`);
      return { fd, port: n.localPort(fd) };
    });
    const listener = socket();
    assert.is(n.bind(listener, lo, 0), 0);
    const port = n.localPort(listener);
    // the tunnel socket of rx[0]: bound to the listener's address and port, connected
    const tunnel = socket();
    assert.is(n.bind(tunnel, lo, port), 0);
    assert.is(n.connect(tunnel, lo, rx[0].port), 0);
    const ka = m.encodeBrokerKeepalive(7);
    const addr = family === 4 ? ipBytes.parseIpv4(lo) : ipBytes.parseIpv6(lo);
    const dests = rx.map((r) => packDestination(addr, r.port)!);
    assert.is(reader.sendBatchTo(listener, [ka, m.encodeBrokerKeepalive(8)], dests), 2);
    assert.is(n.send(tunnel, ka), ka.length);
    const got: string[] = [];
    const buf = new Uint8Array(2048);
    for (let i = 0; i < 100 && got.length < 3; i++) {
      let any = false;
      for (const [k, r] of rx.entries()) {
        const from = { ip: '', port: 0 };
        const len = n.recvFrom(r.fd, buf, from);
        if (len < 0) continue;
        any = true;
        got.push(`rx${k} from ${from.ip}:${from.port}: ${Array.from(buf.subarray(0, len), (b) => b.toString(16)).join(' ')}`);
      }
      if (!any) await sleep(10);
    }
    const hex = (d: Uint8Array): string => Array.from(d, (b) => b.toString(16)).join(' ');
    assert.equal(got.sort(), [
      `rx0 from ${lo}:${port}: ${hex(ka)}`, `rx0 from ${lo}:${port}: ${hex(ka)}`, `rx1 from ${lo}:${port}: ${hex(m.encodeBrokerKeepalive(8))}`,
    ], 'the listener and the tunnel socket send the same bytes from the same source');
    const bad = new Uint8Array(20);
    bad[0] = 5;
    assert.is(reader.sendBatchTo(listener, [ka, ka], [bad, bad]), -n.errno.EAFNOSUPPORT, 'an unknown family sends nothing');
    assert.is(n.sendBatch(listener, ka, Int32Array.of(ka.length), 1, new Uint8Array(10)), -n.errno.EINVAL, 'destinations too short');
    for (const fd of [listener, tunnel, rx[0].fd, rx[1].fd]) n.close(fd);
  }
});

test('addon: datagramReader with too small a buffer is -EINVAL, wrong types throw', () => {
  assert.is(n.datagramReader(new Uint8Array(10), new Int32Array(DGRAM_META_WORDS), 16, 1, () => {}), -n.errno.EINVAL);
  assert.throws(() => n.datagramReader(new Uint8Array(64), new Uint32Array(8) as unknown as Int32Array, 16, 1, () => {}), TypeError);
  assert.throws(() => n.datagramReader(new Uint8Array(64), new Int32Array(8), 16, 1, 5 as unknown as () => void), TypeError);
});

test.run();
