// Package versions (docs/versioning.md): opkg's and apk's orderings as documented, then where
// our version sorts against the original Tunneldigger packages and our own earlier releases.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync, mkdirSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { apkCompare, apkTokens, apkValid, opkgCompare, parseOpkgVersion, verrevcmp } from './pkg-version.js';

const sign = (n: number): number => Math.sign(n);

// ---- the two algorithms against their documented examples ----------------------------------

test('verrevcmp: digit runs numerically, leading zeros ignored', () => {
  assert.is(sign(verrevcmp('1.10', '1.9')), 1);
  assert.is(sign(verrevcmp('1.01', '1.1')), 0);
  assert.is(sign(verrevcmp('2021', '0')), 1);
  assert.is(sign(verrevcmp('1.0', '1.0.1')), -1);
  assert.is(sign(verrevcmp('', '')), 0);
});

test("verrevcmp: '~' before end before letters before other characters", () => {
  assert.is(sign(verrevcmp('1.0~rc1', '1.0')), -1);
  assert.is(sign(verrevcmp('1.0~~', '1.0~')), -1);
  assert.is(sign(verrevcmp('1.0', '1.0a')), -1);
  assert.is(sign(verrevcmp('1.0a', '1.0+')), -1);
  assert.is(sign(verrevcmp('1.0a', '1.0b')), -1);
  assert.is(sign(verrevcmp('1.0Z', '1.0a')), -1); // ASCII within the letters
  assert.is(sign(verrevcmp('1.0.', '1.0-')), 1); // '.' 46 > '-' 45, both "other"
});

test('opkg: epoch, then upstream, then the revision after the last dash', () => {
  assert.equal(parseOpkgVersion('2021-03-08-4f72b305-2'), { epoch: 0, upstream: '2021-03-08-4f72b305', revision: '2' });
  assert.equal(parseOpkgVersion('1:0.5.0-1'), { epoch: 1, upstream: '0.5.0', revision: '1' });
  assert.equal(parseOpkgVersion('2021.03.08~4f72b305-r2'), { epoch: 0, upstream: '2021.03.08~4f72b305', revision: 'r2' });
  assert.equal(parseOpkgVersion('1.0'), { epoch: 0, upstream: '1.0', revision: '' });
  assert.throws(() => parseOpkgVersion('x:1.0'), /epoch 'x' is not a number/);
  assert.is(sign(opkgCompare('1:0.1', '9999')), 1);
  assert.is(sign(opkgCompare('1.0-2', '1.0-10')), -1);
  assert.is(sign(opkgCompare('1.0-r2', '1.0-r10')), -1);
  assert.is(sign(opkgCompare('1.0-1', '1.0')), 1);
  assert.is(sign(opkgCompare('0:1.0-1', '1.0-1')), 0);
  // the observation: the original beats an epoch-less 0.5.0 and loses to 1:0.5.0
  assert.is(sign(opkgCompare('2021-03-08-4f72b305-2', '0.5.0-1')), 1);
  assert.is(sign(opkgCompare('2021.03.08~4f72b305-r2', '0.5.0-r1')), 1);
  assert.is(sign(opkgCompare('1:0.5.0-1', '2021-03-08-4f72b305-2')), 1);
});

// opkg's verrevcmp is dpkg's algorithm: check the model against the real dpkg of the build host.
test('opkg model agrees with dpkg --compare-versions on every pair', () => {
  const versions = ['0.5.0-1', '0.5.0-r1', '1:0.5.0-1', '2021-03-08-4f72b305-2', '2021.03.08~4f72b305-r2', '2026.12.0-1',
    '2026.12.0-r1', '2026.12.1-r1', '2027.1.0-r1', '1.0~rc1', '1.0', '1.0a', '1.0+', '1.0-r10', '1.0-r9', '1.01', '1.1'];
  const dpkg = (a: string, op: string, b: string): boolean => spawnSync('dpkg', ['--compare-versions', a, op, b]).status === 0;
  assert.ok(spawnSync('dpkg', ['--version']).status === 0, 'dpkg is installed (Debian build host)');
  versions.forEach((a, i) => {
    for (const b of versions.slice(i + 1)) {
      const want = dpkg(a, 'lt', b) ? -1 : dpkg(a, 'eq', b) ? 0 : 1;
      assert.is(sign(opkgCompare(a, b)), want, `${a} vs ${b}`);
      assert.is(sign(opkgCompare(b, a)), -want, `${b} vs ${a}`);
    }
  });
});

test('apk: grammar digit{.digit}{letter}{_suffix{n}}{~hash}{-rN}', () => {
  for (const v of ['1', '1.0', '1.0a', '1.0_rc1', '1.0_p2_git3', '2021.03.08~4f72b305-r2', '1.2.3-r0', '1.0a_alpha'])
    assert.ok(apkValid(v), v);
  for (const v of ['', 'a1', '1:0.5.0-r1', '1.0-1', '2021-03-08-4f72b305-2', '1.0_foo', '1.0-r', '1.0~', '1.0~x', '1.0-r1.2', '1.a2', '1.0~ab~cd'])
    assert.not.ok(apkValid(v), v);
  assert.equal(apkTokens('2021.03.08~4f72b305-r2').map((t) => t.kind), ['InitialDigit', 'Digit', 'Digit', 'CommitHash', 'RevisionNo', 'End']);
});

test('apk: ordering rules', () => {
  const lt = (a: string, b: string): void => {
    assert.is(sign(apkCompare(a, b)), -1, `${a} < ${b}`);
    assert.is(sign(apkCompare(b, a)), 1, `${b} > ${a}`);
  };
  lt('1.0', '1.0-r1');
  lt('1.0-r9', '1.0-r10');
  lt('1.0', '1.0.1');
  lt('1.0', '1.0a');
  lt('1.0_alpha', '1.0_beta');
  lt('1.0_beta', '1.0_pre');
  lt('1.0_rc1', '1.0');
  lt('1.0', '1.0_cvs');
  lt('1.0_git1', '1.0_p1');
  lt('1.0_p1', '1.0_p2');
  lt('1.9', '1.10');
  lt('8.2.0015', '8.2.002'); // leading zero: string comparison
  lt('1.2.3', '1.2.3~abc');
  lt('1.2.3~abc', '1.2.3~abd');
  lt('0.5.0-r1', '2021.03.08~4f72b305-r2');
  assert.is(apkCompare('1.0-r1', '1.0-r1'), 0);
  assert.is(apkCompare('1.01', '1.01'), 0);
});

// A sample of the published expectations in apk-tools' test/version.data (all valid versions).
test('apk: agrees with rows of apk-tools test/version.data', () => {
  const rows = `0.1.0_alpha2 > 0.1.0_alpha
1.1 > 1.1_alpha1
1.2.1 > 1.2
1.06-r6 < 006
2.3.0b-r1 < 2.3.0b-r2
20050718-r2 > 3.9.8-r5
3.9.8-r5 > 2.01.01_alpha10
1.0 > 0.99.3.20040818
1.2.07.8 < 1.2.12.04
1.2.12.04 < 1.2.12.05
0.20070118 < 0.20070207_rc1
4.5_p1-r1 > 4.5_p1
7.0.17 < 7.0.174
1.3_pre1-r1 < 1.3.2
1.0_p10-r0 > 1.0_p9-r0
0.1.0_alpha_pre2 < 0.1.0_alpha
1.0.0_pre20191002222144-r0 < 1.0.0_pre20210530193627-r0
2.1.9.200602141850 > 1.6
6b-r7 > 1.12-r7
0.9.28.1 < 087-r1
1.3-r0 < 1.3.1-r0
2.12r-r4 < 2.12r-r5
2.16.1-r3 = 2.16.1-r3`;
  for (const row of rows.split('\n')) {
    const [a, op, b] = row.split(' ');
    assert.ok(apkValid(a) && apkValid(b), row);
    assert.is(sign(apkCompare(a, b)), op === '<' ? -1 : op === '=' ? 0 : 1, row);
  }
});

// ---- our version --------------------------------------------------------------------------

const pkgVersion = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
// The original client as OpenWrt ships it: 23.05 (opkg), 24.10 (opkg, apk-style string),
// 25.12 and later (apk).
const ORIGINAL_2305 = '2021-03-08-4f72b305-2';
const ORIGINAL_2410 = '2021.03.08~4f72b305-r2';
// Our earlier releases, in every form they were built in.
const PREVIOUS = [
  { release: '0.5.0', forms: { ipk: '1:0.5.0-1', sdk2305: '0.5.0-1', sdk2410: '0.5.0-r1' } },
];

function makefileVar(name: string): string {
  const m = readFileSync('openwrt/Makefile', 'utf8').match(new RegExp(`^${name}:=(.*)$`, 'm'));
  assert.ok(m, `openwrt/Makefile has no ${name}:=`);
  return m![1].trim();
}

test('version scheme: YEAR.MONTH.N, no leading zeros, semver-shaped for npm', () => {
  assert.match(pkgVersion, /^20[2-9][0-9]\.([1-9]|1[0-2])\.(0|[1-9][0-9]*)$/);
  assert.ok(apkValid(`${pkgVersion}-r1`));
});

test('the SDK Makefile and make ipk carry the package.json version', () => {
  assert.is(makefileVar('PKG_VERSION'), pkgVersion);
  assert.match(makefileVar('PKG_RELEASE'), /^[1-9][0-9]*$/);
  const r = spawnSync('make', ['-s', '--no-print-directory', '--eval', 'td-print-ipk: ; @echo $(IPK_FILE)', 'td-print-ipk'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  assert.is(r.stdout.trim(), `dist/tunneldigger_${pkgVersion}-r1_mips_24kc.ipk`);
});

test('make ipk (ipk-build.sh) writes Version <version>-r1 with no epoch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'td-ver-'));
  try {
    writeFileSync(join(dir, 'bin'), 'not an ELF\n');
    const out = join(dir, 'out');
    const r = spawnSync('bash', ['openwrt/ipk-build.sh'], { env: { ...process.env, BIN: join(dir, 'bin'), OUT_DIR: out, SOURCE_DATE_EPOCH: '1700000000' }, encoding: 'utf8' });
    assert.is(r.status, 0, r.stdout + r.stderr);
    const files = readdirSync(out);
    assert.equal(files, [`tunneldigger_${pkgVersion}-r1_mips_24kc.ipk`]);
    const u = join(dir, 'u');
    mkdirSync(u);
    assert.is(spawnSync('tar', ['-xzf', join(out, files[0]), '-C', u]).status, 0);
    assert.is(spawnSync('tar', ['-xzf', join(u, 'control.tar.gz'), '-C', u]).status, 0);
    const control = readFileSync(join(u, 'control'), 'utf8');
    assert.match(control, new RegExp(`^Version: ${pkgVersion.replace(/\./g, '\\.')}-r1$`, 'm'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('opkg (OpenWrt <= 24.10): ours sorts above both forms of the original, without an epoch', () => {
  for (const ours of [`${pkgVersion}-1`, `${pkgVersion}-r1`]) {
    assert.is(parseOpkgVersion(ours).epoch, 0);
    for (const orig of [ORIGINAL_2305, ORIGINAL_2410]) {
      assert.is(sign(opkgCompare(ours, orig)), 1, `${ours} > ${orig}`);
      assert.is(sign(opkgCompare(orig, ours)), -1, `${orig} < ${ours}`);
    }
  }
});

test('apk (OpenWrt >= 25.12): ours is valid and sorts above the original', () => {
  const ours = `${pkgVersion}-r1`;
  assert.ok(apkValid(ours));
  assert.is(sign(apkCompare(ours, ORIGINAL_2410)), 1);
  assert.is(sign(apkCompare(ORIGINAL_2410, ours)), -1);
});

test('upgrades from our earlier releases behave as docs/versioning.md says', () => {
  for (const p of PREVIOUS) {
    // SDK builds (no epoch) upgrade normally on both package managers
    assert.is(sign(opkgCompare(`${pkgVersion}-1`, p.forms.sdk2305)), 1);
    assert.is(sign(opkgCompare(`${pkgVersion}-r1`, p.forms.sdk2410)), 1);
    assert.is(sign(apkCompare(`${pkgVersion}-r1`, p.forms.sdk2410)), 1);
    // the epoch-1 ipk of `make ipk` outranks every epoch-less version: a one-time
    // `opkg install --force-downgrade` (documented) is needed to leave it
    assert.is(sign(opkgCompare(`${pkgVersion}-r1`, p.forms.ipk)), -1);
    // apk never accepted the epoch form, so no apk system has it installed
    assert.not.ok(apkValid(p.forms.ipk.replace(/-1$/, '-r1')));
  }
});

test('a later release (next month, same month next number) sorts above this one', () => {
  const [y, m, n] = pkgVersion.split('.').map(Number);
  const later = [`${y}.${m}.${n + 1}`, m === 12 ? `${y + 1}.1.0` : `${y}.${m + 1}.0`, `${y + 1}.1.0`];
  for (const l of later) {
    assert.is(sign(opkgCompare(`${l}-r1`, `${pkgVersion}-r1`)), 1, l);
    assert.is(sign(apkCompare(`${l}-r1`, `${pkgVersion}-r1`)), 1, l);
    assert.is(sign(apkCompare(`${pkgVersion}-r2`, `${pkgVersion}-r1`)), 1);
  }
});

test.run();
