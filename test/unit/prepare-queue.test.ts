// The line of PREPAREs waiting for a tunnel setup slot (src/broker/prepare-queue.ts); the broker's
// use of it is in broker-worker.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Endpoint } from '../../src/native.js';
import { PrepareQueue } from '../../src/broker/prepare-queue.js';

test('bounded, one entry per endpoint in its first place, the newest copy of a repeat, payloads copied', () => {
  const q = new PrepareQueue<string>(2);
  const frame = (b: number) => ({ type: 3, payload: Uint8Array.of(b, b), datagramLength: 8 });
  const ep = (port: number): Endpoint => ({ ip: '198.51.100.1', port });
  const buf = Uint8Array.of(1, 1);
  assert.is(q.put('a', 's', { type: 3, payload: buf, datagramLength: 8 }, ep(1), 100, 40), 'queued');
  buf[0] = 9;
  assert.is(q.put('b', 's', frame(2), ep(2), 200, -1), 'queued');
  assert.is(q.put('c', 's', frame(3), ep(3), 300, -1), 'full');
  assert.is(q.put('a', 's', frame(4), ep(1), 400, 0), 'repeat', 'a repeat fits');
  assert.is(q.longestWaitMs(1000), 900 + 40, 'the first put counts, with its time before it was read');
  const first = q.shift()!;
  assert.equal([...first.frame.payload], [4, 4], 'the newest copy of the repeat');
  assert.is(first.at, 100);
  assert.is(q.shift()!.from.port, 2);
  assert.is(q.shift(), undefined);
  assert.is(q.longestWaitMs(1000), 0);
  // the payload is copied: a receive buffer reused after put() does not change what waits
  q.put('d', 's', { type: 3, payload: buf, datagramLength: 8 }, ep(4), 0, -1);
  buf[0] = 7;
  assert.is(q.shift()!.frame.payload[0], 9);
});

test.run();
