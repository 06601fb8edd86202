// test/vm/scenarios/load-lib.sh's load_sigterm_wait, run by dash on the host: the exit time of a
// SIGTERM'd child (taken with the shell's wait, so the child is reaped), of a process that is
// not the shell's child (polled), and no figure for one that ignores SIGTERM.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

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

test.run();
