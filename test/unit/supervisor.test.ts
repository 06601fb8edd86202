// src/process/supervisor.ts against the real kernel: the Node addon (posix_spawn, pidfd) and
// the Node Loop. Children are /bin/sh one-liners.
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { native as n } from '../../src/runtime/node/native.js';
import { NodeLoop } from '../../src/runtime/node/loop.js';
import { Supervisor, type ChildExit, type ChildSpec } from '../../src/process/supervisor.js';
import type { Native } from '../../src/native.js';

const logs: string[] = [];
const loop = new NodeLoop(n, 'debug', (line) => logs.push(line));
const text = (b: Uint8Array): string => new TextDecoder().decode(b);

function run(sup: Supervisor, spec: Omit<ChildSpec, 'onExit'>, limitMs = 5000): Promise<{ pid: number; exit: ChildExit }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit within ${limitMs} ms`)), limitMs);
    const pid = sup.start({
      ...spec,
      onExit: (exit) => {
        clearTimeout(timer);
        resolve({ pid, exit });
      },
    });
    if (pid < 0) {
      clearTimeout(timer);
      reject(new Error(`start: ${n.strerror(pid)}`));
    }
  });
}

/** Live (non-zombie) members of process group pgid. */
function liveGroupMembers(pgid: number): number[] {
  const live: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) === pgid && f[0] !== 'Z') live.push(Number(d));
    } catch {
      // exited while scanning
    }
  }
  return live;
}

test('exit code and output (stdout+stderr) come back once the pidfd fires; fds are closed', async () => {
  const sup = new Supervisor(n, loop);
  const { pid, exit } = await run(sup, {
    path: '/bin/sh', args: ['-c', 'echo out; echo err >&2; exit 4'], captureOutput: true, timeoutMs: 10_000,
  });
  assert.is(exit.pid, pid);
  assert.is(exit.code, 4);
  assert.not.ok(exit.killed);
  assert.is(text(exit.output), 'out\nerr\n');
  assert.is(sup.running, 0);
  assert.is(sup.pollingCount, 0, 'pidfd, no polling');
  assert.is(n.waitPid(pid), -n.errno.ECHILD, 'reaped');
  const fds = readdirSync('/proc/self/fd').map(Number);
  assert.is(n.close(Math.max(...fds) + 1), -n.errno.EBADF);
});

test('output beyond maxOutput is read and dropped', async () => {
  const sup = new Supervisor(n, loop);
  const { exit } = await run(sup, {
    path: '/bin/sh', args: ['-c', 'i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done'],
    captureOutput: true, timeoutMs: 10_000, maxOutput: 100,
  });
  assert.is(exit.code, 0);
  assert.is(exit.output.length, 100);
});

test('timeout: onTimeout, then the whole process group is killed and reported as killed', async () => {
  const sup = new Supervisor(n, loop);
  let timedOut = 0;
  const { pid, exit } = await run(sup, {
    path: '/bin/sh', args: ['-c', 'sleep 30 & sleep 30'], captureOutput: false, timeoutMs: 300,
    onTimeout: () => { timedOut++; },
  });
  assert.is(timedOut, 1);
  assert.ok(exit.killed);
  assert.is(exit.code, 128 + 9);
  assert.ok(exit.ms >= 300, `ran ${exit.ms} ms`);
  for (let i = 0; i < 100 && liveGroupMembers(pid).length; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(liveGroupMembers(pid), [], 'the background sleep died too');
});

test('nice: the child runs at our nice value + nice, without it at ours', async () => {
  const sup = new Supervisor(n, loop);
  // the child's own nice value, field 19 of its stat (after the command name: index 16), read
  // 0.1 s after the start: the renice follows the spawn, not the exec
  const spec = { path: '/bin/sh', args: ['-c', 'sleep 0.1; cut -d")" -f2 /proc/$$/stat | cut -d" " -f18'], captureOutput: true, timeoutMs: 10_000 };
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const mine = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  const niced = await run(sup, { ...spec, nice: 5 });
  assert.is(Number(text(niced.exit.output).trim()), Math.min(19, mine + 5));
  const plain = await run(sup, spec);
  assert.is(Number(text(plain.exit.output).trim()), mine);
});

test('a missing program is -ENOENT from start() and no callback', () => {
  const sup = new Supervisor(n, loop);
  let called = false;
  const rc = sup.start({ path: '/nonexistent/hook', args: [], captureOutput: true, timeoutMs: 1000, onExit: () => { called = true; } });
  assert.is(rc, -n.errno.ENOENT);
  assert.is(sup.running, 0);
  assert.not.ok(called);
});

test('without pidfd_open (ENOSYS) exits are polled, and the poll stops with the last child', async () => {
  const noPidfd: Native = { ...n, pidWatch: () => -n.errno.ENOSYS };
  const sup = new Supervisor(noPidfd, loop, { pollMs: 20 });
  const a = run(sup, { path: '/bin/sh', args: ['-c', 'exit 2'], captureOutput: false, timeoutMs: 10_000 });
  const b = run(sup, { path: '/bin/sh', args: ['-c', 'sleep 0.2; exit 3'], captureOutput: true, timeoutMs: 10_000 });
  assert.is(sup.pollingCount, 2);
  assert.is((await a).exit.code, 2);
  assert.is((await b).exit.code, 3);
  assert.is(sup.pollingCount, 0);
});

test('many children at once are all reaped by their pidfds', async () => {
  const sup = new Supervisor(n, loop);
  const all = Array.from({ length: 20 }, (_, i) =>
    run(sup, { path: '/bin/sh', args: ['-c', `exit ${i}`], captureOutput: i % 2 === 0, timeoutMs: 10_000 }, 10_000));
  const codes = (await Promise.all(all)).map((r) => r.exit.code);
  assert.equal(codes, Array.from({ length: 20 }, (_, i) => i));
  assert.is(sup.running, 0);
});

test.run();
