// test/vm/scenarios/load-lib.sh's load_sigterm_wait and load_kernel_holds, run by dash on the host: the exit time of a
// SIGTERM'd child (taken with the shell's wait, so the child is reaped), of a process that is
// not the shell's child (polled), and no figure for one that ignores SIGTERM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const lib = resolve('test/vm/scenarios/load-lib.sh');

/** Runs `body` in dash after sourcing load-lib.sh; its stdout lines. */
function dash(body: string): string[] {
  const r = spawnSync('dash', ['-c', `. '${lib}'\n${body}`], { encoding: 'utf8', timeout: 30_000 });
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

// a process that takes ~0.3 s to exit after SIGTERM
const slowExit = `sh -c 'trap "sleep 0.3; exit 0" TERM; while :; do sleep 0.05; done' & p=$!; sleep 0.2`;

test('a child: its exit time, and it is reaped (a second wait knows no such pid)', () => {
  const [line, again] = dash(`${slowExit}\nload_sigterm_wait $p; echo "rc=$? s=$LOAD_EXIT_S"\nwait $p; echo "again=$?"`);
  const m = /^rc=0 s=(\d+\.\d\d)$/.exec(line!);
  assert.ok(m, line);
  assert.ok(Number(m[1]) >= 0.3 && Number(m[1]) < 10, line);
  assert.is(again, 'again=127');
});

test('not the shell\'s child (inside $(...)): polled until it is gone or a zombie', () => {
  const [line] = dash(`${slowExit}\nr=$(load_sigterm_wait $p; echo "rc=$? s=$LOAD_EXIT_S"); echo "$r"; wait $p`);
  const m = /^rc=0 s=(\d+\.\d\d)$/.exec(line!);
  assert.ok(m, line);
  assert.ok(Number(m[1]) >= 0.3 && Number(m[1]) < 10, line);
});

test('a pid that does not exist: kill fails, no figure', () => {
  const [line] = dash('load_sigterm_wait 999999999 2>/dev/null; echo "rc=$? s=[$LOAD_EXIT_S]"');
  assert.is(line, 'rc=1 s=[]');
});

test('load_kernel_holds counts anew at every call (a wait loop sees the kernel change)', () => {
  // a fake `ip` (first on PATH): its l2tp tunnel list grows by one each call
  const dir = mkdtempSync(join(tmpdir(), 'td-loadlib-'));
  try {
    writeFileSync(join(dir, 'n'), '0');
    writeFileSync(join(dir, 'ip'), `#!/bin/sh\nn=$(cat '${dir}/n'); echo $((n + 1)) > '${dir}/n'\ni=0; while [ $i -lt $n ]; do echo "Tunnel $i, encap UDP"; i=$((i + 1)); done\n`);
    chmodSync(join(dir, 'ip'), 0o755);
    const [line] = dash(`PATH='${dir}':$PATH\ni=0; until load_kernel_holds broker 3; do i=$((i + 1)); [ $i -lt 20 ] || break; done; echo "tries=$i"`);
    assert.is(line, 'tries=3', 'holds 3 at the fourth call');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
