// The netlink worker of the real addon (qjs-native/td_nl_worker.c, src/netlink/worker.ts) on the
// host's kernel, which has rtnetlink but no L2TP: requests run on the C thread, answers come back
// through the event loop in submit order, with the kernel's errno; bad arguments are answered at
// once. The L2TP requests themselves run in the VM scenarios (the broker uses the worker there).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NetlinkWorker, hasNetlinkWorker } from '../../src/netlink/worker.js';
import { NodeLoop } from '../../src/runtime/node/loop.js';
import { native } from '../../src/runtime/node/native.js';

const loop = new NodeLoop(native, 'error', () => {});

function startWorker(): NetlinkWorker {
  assert.ok(hasNetlinkWorker(native), 'the addon has the netlink worker');
  const w = NetlinkWorker.start(native, loop);
  if (typeof w === 'number') throw new Error(`netlinkWorkerStart: ${native.strerror(-w)}`);
  return w;
}

// RTM_SETLINK needs CAP_NET_ADMIN (checked before the device lookup), then finds no such device:
// nothing on the host changes either way
const EXPECTED = process.getuid?.() === 0 ? -native.errno.ENODEV : -native.errno.EPERM;

// first, before a NetlinkWorker watches the event fd: this test takes its completion itself
test('the event loop stays free while the worker waits: a timer fires between submit and answer of a slow request', async () => {
  // a receive on a netlink socket that gets no reply waits for its 2 s timeout (SO_RCVTIMEO) on
  // the worker thread: NLMSG_NOOP without NLM_F_ACK is answered by nothing
  const fd = native.netlinkSocket(0);
  assert.ok(fd >= 0);
  assert.ok(native.netlinkWorkerStart() >= 0);
  const noop = new Uint8Array(16);
  new DataView(noop.buffer).setUint32(0, 16, true);
  new DataView(noop.buffer).setUint16(4, 1, true); // NLMSG_NOOP
  new DataView(noop.buffer).setUint16(6, 1, true); // NLM_F_REQUEST
  const t0 = performance.now();
  let timerAt = 0;
  setTimeout(() => { timerAt = performance.now() - t0; }, 100);
  const r = await new Promise<number>((resolve) => {
    const tag = 0x7ffffff0;
    assert.is(native.netlinkWorkerSubmit(fd, noop, tag), 0);
    const poll = setInterval(() => {
      const done = native.netlinkWorkerTake();
      for (let i = 0; i < done.length; i += 3) {
        if (done[i] === tag) {
          clearInterval(poll);
          resolve(done[i + 1] as number);
        }
      }
    }, 50);
  });
  const waited = performance.now() - t0;
  native.close(fd);
  assert.is(r, -native.errno.EAGAIN, 'no reply within the receive timeout');
  assert.ok(waited >= 1500, `waited ${waited} ms`);
  assert.ok(timerAt > 0 && timerAt < 1000, `the timer fired after ${timerAt} ms`);
});

test('requests are answered through the event loop, after submit returned, in submit order, with the kernel errno', async () => {
  const w = startWorker();
  const got: [number, number][] = [];
  let returned = false;
  const all = new Promise<void>((resolve) => {
    for (let i = 0; i < 200; i++) {
      w.submit({ op: 'setLinkMtu', ifname: `tdnlw${i}`, mtu: 1400 }, (r) => {
        assert.ok(returned, 'never from inside submit');
        got.push([i, r]);
        if (got.length === 200) resolve();
      });
    }
    returned = true;
  });
  assert.is(w.pending, 200);
  await all;
  assert.equal(got.map(([i]) => i), Array.from({ length: 200 }, (_, i) => i));
  assert.ok(got.every(([, r]) => r === EXPECTED), `results ${[...new Set(got.map(([, r]) => r))]}`);
  assert.is(w.pending, 0);
  assert.is(native.netlinkWorkerPending(), 0, 'the C queue is empty as well');
});

test('a request that cannot be built is answered at once with EINVAL and the reason', () => {
  const w = startWorker();
  let result: [number, string] | null = null;
  w.submit({ op: 'setLinkMtu', ifname: 'a/b', mtu: 1400 }, (r, problem) => { result = [r, problem]; });
  assert.equal(result, [-native.errno.EINVAL, 'invalid interface name "a/b"']);
  assert.is(w.pending, 0);
});

test('start is idempotent: one thread, one event fd', () => {
  const a = native.netlinkWorkerStart();
  const b = native.netlinkWorkerStart();
  assert.ok(a >= 0);
  assert.is(a, b);
});

test('the C side rejects empty and oversized requests', () => {
  native.netlinkWorkerStart();
  assert.is(native.netlinkWorkerSubmit(0, new Uint8Array(0), 1), -native.errno.EINVAL);
  assert.is(native.netlinkWorkerSubmit(0, new Uint8Array(4096), 1), -native.errno.EINVAL);
});

test('stop() lets the event loop end (this process exits after the last test)', () => {
  const w = startWorker();
  w.stop();
  assert.is.not(NetlinkWorker.start(native, loop), w, 'a new start watches again');
  (NetlinkWorker.start(native, loop) as NetlinkWorker).stop();
});

test.run();
