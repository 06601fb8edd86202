// The Node runtime's loop clock and re-armable deadline timer (NodeLoop.turnNow/deadlineTimer on
// the addon's loopNow/hrtimeMs/deadlineTimer*), on the real event loop: the turn's clock is the
// wake-up's, not read again, never ahead of performance.now(); the timer fires once, at or after
// the time armed relative to that clock, re-arming replaces the time (later too), stop disarms.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { performance } from 'node:perf_hooks';
import { NodeLoop } from '../../src/runtime/node/loop.js';
import { native as n } from '../../src/runtime/node/native.js';

const loop = new NodeLoop(n, 'error', () => {});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('turnNow: the wake-up\'s time, the same through a busy turn, close behind performance.now()', async () => {
  await sleep(5); // a fresh turn
  const a = loop.turnNow();
  const p = performance.now();
  assert.ok(a <= p, `turnNow ${a} is not ahead of performance.now() ${p}`);
  assert.ok(p - a < 50, `turnNow ${(p - a).toFixed(1)} ms behind at the start of a turn`);
  while (performance.now() - p < 30) { /* busy: the turn goes on */ }
  assert.is(loop.turnNow(), a, 'no new reading within the turn');
  await sleep(5);
  assert.ok(loop.turnNow() >= p + 30, 'the next turn has a new one');
});

test('deadlineTimer: fires once, not before the armed time of the turn\'s clock; re-arming later replaces it', async () => {
  const fired: { at: number; turn: number }[] = [];
  const t = loop.deadlineTimer(() => fired.push({ at: performance.now(), turn: loop.turnNow() }));
  assert.ok(t, 'the addon has one');
  await sleep(1);
  const armedTurn = loop.turnNow();
  t!.arm(40);
  await sleep(15);
  const rearmTurn = loop.turnNow();
  t!.arm(80); // later than the first time: the first must not fire
  await sleep(150);
  assert.is(fired.length, 1, JSON.stringify(fired));
  assert.ok(fired[0].turn >= rearmTurn + 80, `fired at turn ${fired[0].turn - rearmTurn} ms after the re-arm`);
  assert.ok(fired[0].turn >= armedTurn + 40);
  // earlier replaces too; stop disarms
  t!.arm(500);
  t!.arm(10);
  await sleep(60);
  assert.is(fired.length, 2);
  t!.arm(20);
  t!.stop();
  await sleep(60);
  assert.is(fired.length, 2, 'stopped: no fire');
});

test('addon: deadlineTimerStart rejects negative and non-finite times, and needs the timer', () => {
  assert.is(n.deadlineTimerStart(-1), -n.errno.EINVAL);
  assert.is(n.deadlineTimerStart(Number.NaN), -n.errno.EINVAL);
  assert.is(n.deadlineTimerStart(Infinity), -n.errno.EINVAL);
  assert.throws(() => n.deadlineTimer(5 as unknown as () => void), /callback/);
  n.deadlineTimerStop();
});

test.run();
