// test/run.sh's counting, run on fake suites in a temporary tree: skips are reported as skips
// (and fail under CI=true), a test source without its compiled suite is a failure, a stale
// compiled suite without a source is not run, a missing suite script is a failure. Also the two
// suites that used to pass silently when something was missing now report a skip.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const repo = resolve('.');

function write(path: string, text: string, mode = 0o644): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
  chmodSync(path, mode);
}

// A compiled "suite" that prints a uvu summary.
const uvuSuite = (total: number, passed: number, skipped: number, exit = 0): string =>
  `console.log('  Total:     ${total}\\n  Passed:    ${passed}\\n  Skipped:   ${skipped}\\n  Duration:  1ms');\nprocess.exit(${exit});\n`;

function tree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'td-runsh-'));
  cpSync(join(repo, 'test/run.sh'), join(dir, 'test/run.sh'));
  for (const n of ['good', 'skips', 'missing']) write(join(dir, `test/unit/${n}.test.ts`), '// source\n');
  write(join(dir, 'build/js/test/unit/good.test.js'), uvuSuite(3, 3, 0));
  write(join(dir, 'build/js/test/unit/skips.test.js'), uvuSuite(1, 1, 2));
  // left over from a suite that was deleted: would count 5 failures if it ran
  write(join(dir, 'build/js/test/unit/stale.test.js'), uvuSuite(5, 0, 0, 1));
  // the C-level test binary runs with the unit suites
  write(join(dir, 'build/test/td_core_test'), '#!/bin/sh\necho "VMTEST PASS native-c"\n', 0o755);
  return dir;
}

function run(dir: string, args: string[], ci?: string): { status: number | null; out: string; last: string } {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.CI;
  if (ci !== undefined) env.CI = ci;
  const r = spawnSync('bash', [join(dir, 'test/run.sh'), ...args], { env, encoding: 'utf8' });
  const out = r.stdout + r.stderr;
  const lines = r.stdout.trim().split('\n');
  return { status: r.status, out, last: lines[lines.length - 1] };
}

test('unit: skips are counted as skips, a missing compiled suite fails, stale suites do not run', () => {
  const dir = tree();
  try {
    const r = run(dir, ['unit']);
    assert.is(r.last, '5 passed, 1 failed, 2 skipped', r.out);
    assert.is(r.status, 1);
    assert.match(r.out, /unit skips +1 passed, 0 failed, 2 skipped/);
    assert.match(r.out, /unit missing: build\/js\/test\/unit\/missing\.test\.js is missing .*counted as 1 failure/);
    assert.not.match(r.out, /stale/);
    rmSync(join(dir, 'test/unit/missing.test.ts'));
    const ok = run(dir, ['unit']);
    assert.is(ok.last, '5 passed, 0 failed, 2 skipped', ok.out);
    assert.is(ok.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('unit: under CI=true every skip is also a failure', () => {
  const dir = tree();
  try {
    rmSync(join(dir, 'test/unit/missing.test.ts'));
    const r = run(dir, ['unit'], 'true');
    assert.is(r.last, '5 passed, 2 failed, 2 skipped', r.out);
    assert.is(r.status, 1);
    assert.match(r.out, /unit:skips: 2 skipped under CI=true, counted as 2 failed/);
    assert.match(r.out, /failing: unit:skips:skipped/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('all: VMTEST SKIP lines are skips; a missing suite script is a failure', () => {
  const dir = tree();
  try {
    rmSync(join(dir, 'test/unit/missing.test.ts'));
    write(join(dir, 'test/openwrt/run.sh'), '#!/bin/sh\necho "VMTEST PASS a"\necho "VMTEST PASS b"\necho "VMTEST SKIP c: no tool"\n', 0o755);
    write(join(dir, 'test/openwrt/feed.sh'), '#!/bin/sh\necho "VMTEST PASS feed"\n', 0o755);
    write(join(dir, 'test/cross/run-user.sh'), '#!/bin/sh\necho "VMTEST PASS user-$1"\n', 0o755);
    write(join(dir, 'test/vm-mipsel/run-scenarios.sh'), '#!/bin/sh\necho "VMTEST PASS vm-mipsel"\n', 0o755);
    write(join(dir, 'test/native/run-mips.sh'), '#!/bin/sh\necho "VMTEST PASS native-c-mips"\n', 0o755);
    write(join(dir, 'test/deb/run.sh'), '#!/bin/sh\necho "VMTEST PASS deb"\n', 0o755);
    write(join(dir, 'test/mips/run-user.sh'), '#!/bin/sh\necho "VMTEST SKIP mips-user: no qemu"\nexit 0\n', 0o755);
    write(join(dir, 'test/vm/run-scenarios.sh'), '#!/bin/sh\necho "VMTEST PASS vm"\necho "VMTEST FAIL vm2: broken"\nexit 1\n', 0o755);
    // test/vm-mips/run-scenarios.sh is missing
    const r = run(dir, []);
    assert.is(r.last, '16 passed, 2 failed, 4 skipped', r.out);
    assert.match(r.out, /== vm-mips: test\/vm-mips\/run-scenarios\.sh is missing or not executable, counted as 1 failure/);
    assert.match(r.out, /^VMTEST SKIP mips-user: no qemu$/m);
    assert.is(r.status, 1);
    const ci = run(dir, [], 'true');
    assert.is(ci.last, '16 passed, 6 failed, 4 skipped', ci.out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mips-user without qemu-mips-static prints one VMTEST SKIP line, not a pass', () => {
  const bin = mkdtempSync(join(tmpdir(), 'td-runsh-bin-'));
  try {
    for (const tool of ['dirname', 'mkdir']) {
      const found = ['/usr/bin', '/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));
      assert.ok(found, tool);
      symlinkSync(found!, join(bin, tool));
    }
    const r = spawnSync('/bin/bash', ['test/mips/run-user.sh'], { env: { PATH: bin, HOME: tmpdir() }, encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, 'VMTEST SKIP mips_24kc/user: qemu-mips-static not installed (make deps installs qemu-user-static)\n');
  } finally {
    rmSync(bin, { recursive: true, force: true });
  }
});

test('netlink suite without the Node addon reports its real-kernel test as skipped', () => {
  const compiled = join(repo, 'build/js/test/unit/netlink.test.js');
  assert.ok(existsSync(compiled), 'netlink.test.js is compiled');
  const dir = mkdtempSync(join(tmpdir(), 'td-runsh-nl-'));
  try {
    // the same compiled suite and sources, in a root that has no build/node/tdnative.node
    cpSync(join(repo, 'build/js/src'), join(dir, 'build/js/src'), { recursive: true });
    cpSync(compiled, join(dir, 'build/js/test/unit/netlink.test.js'));
    symlinkSync(join(repo, 'node_modules'), join(dir, 'node_modules'));
    const r = spawnSync(process.execPath, [join(dir, 'build/js/test/unit/netlink.test.js')], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8' });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^ *Skipped: +1$/m);
    assert.match(r.stdout, /SKIP real rtnetlink test: build\/node\/tdnative\.node is not built/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
