// The action-queue drain both drivers use (src/runtime/action-queue.ts): order, actions
// appended while draining, nested run(), and both ways of handling a failing action.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ActionQueue } from '../../src/runtime/action-queue.js';

test('executes in order, actions appended while draining included, in one drain', () => {
  const done: string[] = [];
  const nested: boolean[] = [];
  const q: ActionQueue<string> = new ActionQueue<string>((a) => {
    done.push(a);
    // an executor feeding a result back to the core: its answer joins the running drain
    if (a === 'b') nested.push(q.run(['b1', 'b2']));
    if (a === 'c') q.push('c1');
  });
  assert.is(q.run(['a', 'b', 'c']), true);
  assert.equal(done, ['a', 'b', 'c', 'b1', 'b2', 'c1']);
  assert.equal(nested, [false], 'a run() inside the drain only appends');
  assert.is(q.length, 0);
  assert.is(q.run([]), true, 'an empty run still drains (the caller re-arms its timer)');
  assert.is(q.run(['d']), true);
  assert.equal(done.at(-1), 'd');
});

test('with an error handler a failing action is reported and the drain goes on', () => {
  const done: number[] = [];
  const errors: string[] = [];
  const q = new ActionQueue<number>(
    (a) => {
      if (a % 2) throw new Error(`odd ${a}`);
      done.push(a);
    },
    (a, e) => errors.push(`${a}: ${(e as Error).message}`),
  );
  assert.is(q.run([1, 2, 3, 4]), true);
  assert.equal(done, [2, 4]);
  assert.equal(errors, ['1: odd 1', '3: odd 3']);
  assert.is(q.length, 0);
});

test('without an error handler the exception propagates and the rest stays queued', () => {
  const done: string[] = [];
  const q = new ActionQueue<string>((a) => {
    if (a === 'boom') throw new Error('boom');
    done.push(a);
  });
  assert.throws(() => q.run(['a', 'boom', 'b', 'c']), /boom/);
  assert.equal(done, ['a']);
  assert.is(q.length, 2, 'b and c not lost');
  assert.is(q.run(['d']), true, 'not stuck in the draining state');
  assert.equal(done, ['a', 'b', 'c', 'd']);
  assert.is(q.length, 0);
});

test('a long chain of appended actions drains completely', () => {
  let n = 0;
  const q: ActionQueue<number> = new ActionQueue<number>((a) => {
    n++;
    if (a > 0) q.push(a - 1);
  });
  q.run([100_000]);
  assert.is(n, 100_001);
  assert.is(q.length, 0);
});

test.run();
