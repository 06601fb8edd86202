// scripts/mips/check-no-fpu.sh: classifies MIPS disassembly lines. Runs the real script with
// OBJDUMP pointed at a stub that prints canned `objdump -d` output, so no cross tools are needed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const checker = resolve('scripts/mips/check-no-fpu.sh');

function scan(lines: string[]): { status: number | null; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'td-fpu-'));
  try {
    const dis = join(dir, 'dis.txt');
    writeFileSync(dis, ['', 'x.elf:     file format elf32-tradbigmips', '', '00400000 <f>:', ...lines, ''].join('\n'));
    const stub = join(dir, 'objdump');
    writeFileSync(stub, `#!/bin/sh\ncat '${dis}'\n`);
    chmodSync(stub, 0o755);
    const target = join(dir, 'x.elf');
    writeFileSync(target, '');
    const r = spawnSync('bash', [checker, target], { env: { ...process.env, OBJDUMP: stub }, encoding: 'utf8' });
    return { status: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const insn = (mnemonic: string, ops = '') => `  400000:\t00000000 \t${mnemonic}\t${ops}`;

test('integer-only code passes (including lookalikes: movn, mul, madd, teq, addu.qb)', () => {
  const r = scan([insn('addiu', 'sp,sp,-32'), insn('movn', 'v0,a0,a1'), insn('mul', 'v0,a0,a1'),
    insn('madd', 'a0,a1'), insn('teq', 'a1,zero,0x7'), insn('addu.qb', 'v0,a0,a1'), insn('jr.hb', 'ra'),
    insn('save', '272,ra,s0-s1'), insn('nop')]);
  assert.is(r.status, 0, r.out);
  assert.match(r.out, /no FPU instructions/);
});

for (const [m, ops] of [['add.d', '$f0,$f12,$f14'], ['mul.s', '$f0,$f2,$f4'], ['lwc1', '$f0,0(sp)'],
  ['ldc1', '$f0,8(a0)'], ['swc1', '$f2,4(sp)'], ['sdc1', '$f20,16(sp)'], ['mtc1', 'v0,$f0'],
  ['mfc1', 'v1,$f12'], ['cvt.d.w', '$f0,$f0'], ['c.eq.d', '$fcc5,$f12,$f14'], ['c.lt.s', '$f0,$f2'],
  ['trunc.w.d', '$f0,$f12'], ['mov.d', '$f0,$f12'], ['neg.s', '$f0,$f0'], ['bc1t', '400010'], ['ctc1', 'v0,$31']]) {
  test(`flags ${m}`, () => {
    const r = scan([insn('addiu', 'sp,sp,-32'), insn(m, ops), insn('jr', 'ra')]);
    assert.is(r.status, 1, r.out);
    assert.match(r.out, /FPU instructions found/);
    assert.match(r.out, /total: 1/);
  });
}

test('unreadable file is an error, not a pass', () => {
  const r = spawnSync('bash', [checker, '/nonexistent/elf'], { encoding: 'utf8' });
  assert.is(r.status, 2);
});

test.run();
