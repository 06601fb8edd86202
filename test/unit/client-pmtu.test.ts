// Client PMTU rounds (src/client/pmtu.ts) under loss, and the shared tunnel MTU formula
// (src/protocol/mtu.ts) used by client and broker.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PmtuRounds, type RoundResult } from '../../src/client/pmtu.js';
import { clientProbeSizes, timers } from '../../src/protocol/constants.js';
import { tunnelMtu } from '../../src/protocol/mtu.js';

/** Drives PmtuRounds from its own deadlines. round(acked) answers every probe of one round whose
 *  size is in `acked` (each time it is sent) and returns the round's evaluation. */
class Sim {
  p = new PmtuRounds();
  now = 1000;
  constructor() {
    this.p.start(this.now);
  }
  /** Ticks at each deadline until a round has been evaluated; acks are fed after each send. */
  round(acked: readonly number[]): RoundResult {
    for (;;) {
      const d = this.p.deadline();
      assert.ok(d > this.now && d < Infinity, `deadline ${d} at ${this.now}`);
      this.now = d;
      const { probe, result } = this.p.tick(d);
      if (result) return result; // probes sent in the same tick belong to the next round
      for (const s of probe) if (acked.includes(s)) this.p.ack(s);
    }
  }
}

const ALL: readonly number[] = clientProbeSizes;
const upTo = (max: number): number[] => clientProbeSizes.filter((s) => s <= max);

test('formula: min of own and peer, clamp 1280, either side alone, null when neither is known', () => {
  assert.is(tunnelMtu(1446, 1400), 1400);
  assert.is(tunnelMtu(1346, 1446), 1346);
  assert.is(tunnelMtu(null, 1400), 1400);
  assert.is(tunnelMtu(1422, null), 1422);
  assert.is(tunnelMtu(1422, 0), 1422, 'a zero notification means none');
  assert.is(tunnelMtu(1446, 576), 1280);
  assert.is(tunnelMtu(1280 - 54, null), 1280);
  assert.is(tunnelMtu(9000, null), 9000, 'no upper clamp (as the originals)');
  assert.is(tunnelMtu(null, null), null);
});

test('all probes acked: path MTU 1500 at once; later rounds the same', () => {
  const s = new Sim();
  assert.equal(s.round(ALL), { kind: 'raised', pmtu: 1500, old: 0 });
  assert.equal(s.round(ALL), { kind: 'same', pmtu: 1500 });
});

test('1500-byte path, the two largest probes lost in one round: no change, the next round keeps 1500', () => {
  const s = new Sim();
  s.round(ALL);
  // lossy round: 1492 and 1500 (or their ACKs) lost every time
  assert.equal(s.round(upTo(1476)), { kind: 'unconfirmed', pmtu: 1500, probed: 1476 });
  assert.is(s.p.pmtu, 1500);
  assert.equal(s.round(ALL), { kind: 'same', pmtu: 1500 });
  // and the same at the very start: one bad first round does not give 1476 (issue 6: 1422)
  const f = new Sim();
  assert.equal(f.round(upTo(1476)), { kind: 'unconfirmed', pmtu: 0, probed: 1476 });
  assert.equal(f.round(ALL), { kind: 'raised', pmtu: 1500, old: 0 });
});

test('rounds without answers never lower the MTU, let alone to the 1280 floor', () => {
  const s = new Sim();
  s.round(ALL);
  for (let i = 0; i < 8; i++) assert.equal(s.round([]), { kind: 'no-answer', pmtu: 1500 });
  assert.is(s.p.pmtu, 1500);
  // no answers before the first measurement: still nothing measured (the kernel default stays)
  const f = new Sim();
  assert.equal(f.round([]), { kind: 'no-answer', pmtu: 0 });
  assert.equal(f.round([]), { kind: 'no-answer', pmtu: 0 });
  assert.is(f.p.pmtu, 0);
});

test('a real drop (1500 -> 1400 path): lowered after two rounds agree, confirmation 5 s after the first', () => {
  const s = new Sim();
  s.round(ALL);
  s.round(ALL);
  s.round(ALL); // now in the 60 s intervals
  const r1 = s.round(upTo(1400));
  assert.equal(r1, { kind: 'unconfirmed', pmtu: 1500, probed: 1400 });
  const evalAt = s.now;
  const r2 = s.round(upTo(1400));
  assert.equal(r2, { kind: 'lowered', pmtu: 1400, old: 1500 });
  assert.is(s.now - evalAt, timers.pmtuConfirm + timers.pmtuCollect, 'confirmation round right after the first');
  // a silent round between the two does not cancel the evidence
  const q = new Sim();
  q.round(ALL);
  q.round(upTo(1400));
  assert.equal(q.round([]), { kind: 'no-answer', pmtu: 1500 });
  assert.equal(q.round(upTo(1400)), { kind: 'lowered', pmtu: 1400, old: 1500 });
});

test('lowering takes the largest size acknowledged in the low rounds (losses differ per round)', () => {
  const s = new Sim();
  s.round(ALL);
  s.round(upTo(1450)); // 1476..1500 missing
  assert.equal(s.round(upTo(1400)), { kind: 'lowered', pmtu: 1450, old: 1500 }, '1450 got through once: it fits');
  // one large ACK in between proves the size again: no lowering
  const t = new Sim();
  t.round(ALL);
  t.round(upTo(1400));
  assert.equal(t.round(ALL), { kind: 'same', pmtu: 1500 });
  assert.equal(t.round(upTo(1400)), { kind: 'unconfirmed', pmtu: 1500, probed: 1400 }, 'evidence starts over');
});

test('raising is immediate on one ACK of a larger probe', () => {
  const s = new Sim();
  s.round(upTo(1400));
  assert.equal(s.round(upTo(1400)), { kind: 'lowered', pmtu: 1400, old: 0 });
  assert.equal(s.round([1334, 1450]), { kind: 'raised', pmtu: 1450, old: 1400 });
});

test('resends: only probes larger than the largest ACK so far; none once the largest got through', () => {
  const p = new PmtuRounds();
  p.start(0);
  const sent: string[] = [];
  let now = 0;
  for (;;) {
    now = p.deadline();
    const { probe, result } = p.tick(now);
    if (probe.length) sent.push(`${now / 1000}: ${probe.join(' ')}`);
    if (now === 15_000) p.ack(1450); // the first transmission: up to 1450 acked
    if (now === 16_000) p.ack(1500); // the first resend: 1500 too
    if (result) break;
  }
  assert.equal(sent, ['15: 1334 1400 1450 1476 1492 1500', '16: 1476 1492 1500']);
  assert.is(now, 20_000, 'evaluated at +5 s as before');
  assert.is(p.pmtu, 1500);
});

test('random loss of 30 % per probe and per ACK on a 1500 path: never below 1476, never 1280', () => {
  let seed = 4242;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
  const p = new PmtuRounds();
  p.start(0);
  const seen = new Set<number>();
  let rounds = 0;
  while (rounds < 300) {
    const now = p.deadline();
    const { probe, result } = p.tick(now);
    // an ACK needs the probe and the reply to survive (0.7 * 0.7)
    for (const size of probe) if (rnd() < 0.49) p.ack(size);
    if (result) {
      rounds++;
      if (p.pmtu) seen.add(p.pmtu);
    }
  }
  assert.ok(!seen.has(1280) && Math.min(...seen) >= 1476, `path MTUs taken: ${[...seen]}`);
});

test('schedule: first round 15 s after start, then doubling to 600 s; a confirmation round does not double it', () => {
  const p = new PmtuRounds();
  p.start(0);
  const starts: number[] = [];
  let now = 0;
  let inRound = false;
  let lossy = 1; // the first round misses the big probes once
  while (now < 3_000_000) {
    now = p.deadline();
    const { probe, result } = p.tick(now);
    if (result) inRound = false;
    if (probe.length && !inRound) {
      starts.push(now);
      inRound = true;
    }
    const through: readonly number[] = lossy > 0 ? upTo(1476) : ALL;
    for (const sz of probe) if (through.includes(sz)) p.ack(sz);
    if (result && lossy > 0) lossy--;
  }
  const gaps = starts.slice(1).map((t, i) => t - starts[i]);
  assert.is(starts[0], 15_000);
  // 15 s: first; 25 s: confirmation (5 s after the evaluation); then the regular rounds as
  // without it: 30 s, 60 s, 120 s, ... 480 s, then every 600 s
  assert.equal(starts.slice(0, 7), [15_000, 25_000, 30_000, 60_000, 120_000, 240_000, 480_000]);
  assert.ok(gaps.slice(7).every((g) => g === 600_000), `${gaps.slice(7)}`);
});

test.run();
