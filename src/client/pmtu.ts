// Client path MTU rounds (spec §4.1 "PMTU reprobe"), sans-IO: the first round 15 s after
// setup, then at intervals doubling to 600 s; each round sends the six probes, resends every
// second those larger than the largest acknowledged so far (the original resent all six: when
// everything got through, 24 useless probes and as many ACKs to wake up for), and is evaluated
// after 5 s on the largest probe the broker acknowledged.
//
// Loss rule (issue 6): the original took every round's best ACK as the path MTU, so lost probes
// lowered it (1500-byte paths settling on 1476, or on the 1280 floor after a silent round). Here:
// * a round without any ACK changes nothing;
// * a larger ACK than the current path MTU raises it at once (an ACK proves the size fits);
// * a smaller best ACK lowers it only when a second round (started pmtuConfirm after the
//   first evaluation) again acknowledges nothing above it; the new value is the largest size
//   acknowledged in those rounds. Before the first measurement the reference is the largest
//   probe (a 1500-byte path, the kernel's default for the interface).
import { clientProbeSizes, timers } from '../protocol/constants.js';

/** Rounds in a row that must lack the larger probes before the path MTU is lowered. */
export const PMTU_LOWER_ROUNDS = 2;

export type RoundResult =
  /** no probe acknowledged: path MTU kept */
  | { kind: 'no-answer'; pmtu: number }
  /** best ACK equals the path MTU (or none known yet and the largest probe got through) */
  | { kind: 'same'; pmtu: number }
  | { kind: 'raised' | 'lowered'; pmtu: number; old: number }
  /** best ACK below the path MTU, not confirmed yet: kept, a confirmation round follows */
  | { kind: 'unconfirmed'; pmtu: number; probed: number };

export class PmtuRounds {
  /** Accepted path MTU (IP bytes), 0 before the first measurement. */
  pmtu = 0;
  private probed = 0;
  private lowRounds = 0;
  private lowBest = 0;
  private interval = 0;
  private roundAt = Infinity;
  private resendAt = 0;
  private collectAt = 0;
  /** While a confirmation round is scheduled: when the next regular round is due. */
  private regularAt = 0;
  /** Probe sizes (IP bytes) of this underlay, ascending; the largest is the reference before
   *  the first measurement. */
  private sizes: readonly number[] = clientProbeSizes;

  /** Largest probe of this underlay: ACKs above it are dropped by the caller. */
  get maxProbe(): number {
    return this.sizes[this.sizes.length - 1];
  }

  /** Tunnel up at `now`: schedules the first round, probing with `sizes` (ascending). */
  start(now: number, sizes: readonly number[] = clientProbeSizes): void {
    this.stop();
    this.sizes = sizes;
    this.interval = timers.pmtuReprobeFirst;
    this.roundAt = now + this.interval;
  }

  /** Tunnel gone: no more rounds, measurement forgotten. */
  stop(): void {
    this.pmtu = this.probed = this.lowRounds = this.lowBest = this.resendAt = this.collectAt = this.regularAt = 0;
    this.roundAt = Infinity;
  }

  /** A PMTUD_ACK for a probe of `ipSize` bytes (already checked ≤ maxProbe). */
  ack(ipSize: number): void {
    if (this.collectAt && ipSize > this.probed) this.probed = ipSize;
  }

  /** Earliest time at which tick() has something to do (Infinity: nothing scheduled). */
  deadline(): number {
    let d = this.roundAt;
    if (this.collectAt && this.collectAt < d) d = this.collectAt;
    if (this.resendAt && this.resendAt < d) d = this.resendAt;
    return d;
  }

  /** probe: the probe sizes to send now (largest last); result: the evaluation of a round that
   *  just ended. */
  tick(now: number): { probe: readonly number[]; result: RoundResult | null } {
    let result: RoundResult | null = null;
    if (this.collectAt && now >= this.collectAt) {
      this.collectAt = this.resendAt = 0;
      result = this.evaluate(now);
    }
    if (now >= this.roundAt) {
      this.probed = 0;
      this.collectAt = now + timers.pmtuCollect;
      this.resendAt = now;
      if (this.regularAt) {
        // a confirmation round is an extra one: the regular schedule stays as it was
        this.roundAt = Math.max(this.regularAt, this.collectAt);
        this.regularAt = 0;
      } else {
        this.roundAt = now + this.interval;
        this.interval = Math.min(this.interval * 2, timers.pmtuReprobeMax);
      }
    }
    let probe: readonly number[] = [];
    if (this.resendAt && now >= this.resendAt) {
      probe = this.probed ? this.sizes.filter((size) => size > this.probed) : this.sizes;
      // nothing left to learn this round: no more resends, the evaluation stays at +5 s
      this.resendAt = probe.length ? now + timers.pmtuProbeResend : 0;
    }
    return { probe, result };
  }

  private evaluate(now: number): RoundResult {
    const p = this.probed;
    const old = this.pmtu;
    if (!p) return { kind: 'no-answer', pmtu: old };
    if (p >= (old || this.maxProbe)) {
      this.lowRounds = this.lowBest = 0;
      if (p === old) return { kind: 'same', pmtu: old };
      this.pmtu = p;
      return { kind: 'raised', pmtu: p, old };
    }
    this.lowRounds++;
    this.lowBest = Math.max(this.lowBest, p);
    if (this.lowRounds < PMTU_LOWER_ROUNDS) {
      // confirm soon instead of waiting for the next regular round (up to 10 min away)
      const at = now + timers.pmtuConfirm;
      if (at < this.roundAt) {
        this.regularAt = this.roundAt;
        this.roundAt = at;
      }
      return { kind: 'unconfirmed', pmtu: old, probed: p };
    }
    this.pmtu = this.lowBest;
    this.lowRounds = this.lowBest = 0;
    return { kind: 'lowered', pmtu: this.pmtu, old };
  }
}
