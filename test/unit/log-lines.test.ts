import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { stderrLines } from '../../src/runtime/node/loop.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

test('log lines of one turn go out in one write, in order, after the turn', async () => {
  const writes: string[] = [];
  const w = stderrLines((t) => writes.push(t));
  for (let i = 0; i < 1000; i++) w.write(`line ${i}\n`);
  assert.equal(writes, [], 'nothing written while the turn runs');
  await turn();
  assert.is(writes.length, 1);
  assert.is(writes[0].split('\n').length, 1001);
  assert.ok(writes[0].startsWith('line 0\nline 1\n') && writes[0].endsWith('line 999\n'));
  w.write('next turn\n');
  await turn();
  assert.equal(writes.slice(1), ['next turn\n']);
});

test('64 KiB gathered are written at once; flush writes what is left', () => {
  const writes: string[] = [];
  const w = stderrLines((t) => writes.push(t));
  const line = `${'x'.repeat(1023)}\n`;
  for (let i = 0; i < 64; i++) w.write(line);
  assert.is(writes.length, 1, 'the 64th KiB flushed');
  assert.is(writes[0].length, 65_536);
  w.write('tail\n');
  w.flush();
  assert.equal(writes.slice(1), ['tail\n']);
  w.flush();
  assert.is(writes.length, 2, 'an empty flush writes nothing');
});

test("a broker's loop that logs and exits at once still writes the line (flushed on exit)", () => {
  const loopJs = fileURLToPath(new URL('../../src/runtime/node/loop.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { NodeLoop } = await import(${JSON.stringify(loopJs)});
     const l = new NodeLoop({ watch: () => 0, unwatch: () => {} });
     l.log('info', 'first'); l.log('warning', 'then exiting'); l.exit(3);`], { encoding: 'utf8' });
  assert.is(r.status, 3, r.stderr);
  assert.match(r.stderr, /INFO first\n.*WARNING then exiting\n$/s);
});

test.run();
