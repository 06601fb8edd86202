// Admission under overload (issue 7, docs/scaling.md "Overload"): when clients arrive faster than
// the broker creates tunnels, requests wait in the listener's receive queue, and an answer that
// comes after the client's window is wasted work that delays the next request further. Two rules
// keep the broker creating tunnels at its full rate for the clients it can still serve:
// * a COOKIE or USAGE request that waited in the queue longer than REQUEST_MAX_AGE_MS is dropped
//   unanswered (the client repeats both every 3 s: a fresher copy is behind it or on its way),
//   which costs a header check instead of an HMAC, so a long queue drains quickly;
// * while PREPAREs with valid cookies wait longer than BUSY_PREPARE_AGE_MS (the broker is behind,
//   and only real clients can send those), cookies in flight (issued to an endpoint without a
//   tunnel, no PREPARE seen yet) are bounded by what the broker created in the last
//   CREATION_WINDOW_MS: past the bound, COOKIE requests of new endpoints are not answered and
//   USAGE answers 0xFFFF, so clients with several brokers go elsewhere and the others repeat
//   later, and the PREPAREs of the cookies out there find a short queue. Spoofed COOKIE requests
//   fill the bound only while the broker is really behind. Sans-IO: fed times and queue ages.
import { MessageType } from '../protocol/constants.js';
import { EndpointMemory } from './endpoint-memory.js';

/** A COOKIE or USAGE request older than this (time in the receive queue, plus the time since the
 *  batch was read) is not answered: the client resends both every 3 s (spec §3), its selection
 *  round lasts at most 10 s and an attempt 15 s. */
export const REQUEST_MAX_AGE_MS = 3_000;
/** A cookie counts as in flight for this long after it was issued (then its PREPARE would be
 *  refused as stale anyway: PREPARE_MAX_COOKIE_AGE_MS). */
export const COOKIE_FLIGHT_MS = 12_000;
/** A PREPARE with a valid cookie that waited longer than this means the broker is behind ... */
export const BUSY_PREPARE_AGE_MS = 1_000;
/** ... for this long after it was read. */
export const BUSY_HOLD_MS = 5_000;
/** Cookies in flight allowed while busy: the tunnels created within this window before, ... */
export const CREATION_WINDOW_MS = 5_000;
/** ... but at least this many (a broker that just started, or one that created nothing lately). */
export const MIN_COOKIES_IN_FLIGHT = 8;

/** How long the first COOKIE request of an endpoint is remembered: a client attempt lasts 15 s
 *  from its first COOKIE request (spec §4.1), and a new attempt comes from a new socket. */
export const ATTEMPT_MS = 15_000;

const BUCKET_MS = 1_000;
const BUCKETS = CREATION_WINDOW_MS / BUCKET_MS;

/** The message type of a datagram when it is a handshake request the driver may serve after the
 *  rest of its batch (COOKIE, USAGE), else 0. Looks at the type byte only (a bad header is the
 *  core's business): the order is all that depends on it. */
export function deferrableRequest(data: Uint8Array): number {
  if (data.length < 6 || data[0] !== 0x80 || data[1] !== 0x73 || data[2] !== 0xa7) return 0;
  return data[4] === MessageType.COOKIE || data[4] === MessageType.USAGE ? data[4] : 0;
}

export class OverloadAdmission {
  /** Endpoints holding a cookie they have not used yet, in issue order. */
  private readonly inFlight = new EndpointMemory(COOKIE_FLIGHT_MS);
  /** Endpoints → when their first COOKIE request of the last ATTEMPT_MS arrived (answered or not). */
  private readonly firstAsked = new EndpointMemory(ATTEMPT_MS);
  /** Tunnel creations per second of the last CREATION_WINDOW_MS (a ring of buckets). */
  private readonly buckets = new Array<number>(BUCKETS).fill(0);
  private bucketAt = -Infinity;
  private createdInWindow = 0;
  private busyUntil = -Infinity;

  /** Whether a request that waited ageMs (-1: unknown) is too old to be worth an answer. */
  stale(ageMs: number): boolean {
    return ageMs > REQUEST_MAX_AGE_MS;
  }

  /** Cookies the broker lets out at once now. */
  limit(now: number): number {
    this.advance(now);
    return Math.max(MIN_COOKIES_IN_FLIGHT, this.createdInWindow);
  }

  /** Cookies in flight now. */
  inFlightCount(now: number): number {
    this.inFlight.prune(now);
    return this.inFlight.size;
  }

  /** A PREPARE with a valid cookie that waited ageMs (-1: unknown) was read. */
  prepareSeen(ageMs: number, now: number): void {
    if (ageMs > BUSY_PREPARE_AGE_MS) this.busyUntil = now + BUSY_HOLD_MS;
  }

  /** Whether PREPAREs waited too long lately (BUSY_PREPARE_AGE_MS, BUSY_HOLD_MS). */
  busy(now: number): boolean {
    return now < this.busyUntil;
  }

  /** Whether the bound applies and is reached: no cookie for a new endpoint, USAGE 0xFFFF. */
  full(now: number): boolean {
    return this.busy(now) && this.inFlightCount(now) >= this.limit(now);
  }

  /** Whether a COOKIE request from this endpoint is answered: one that holds a cookie in flight
   *  already (a repeat) always is, a new one while the bound is not reached. */
  mayIssue(key: string, now: number): boolean {
    return this.inFlight.since(key, now) !== undefined || !this.full(now);
  }

  /** A COOKIE request from key arrived ageMs ago (-1: unknown, taken as now); returns how long
   *  ago the endpoint's first COOKIE request of this attempt arrived: a client's window starts
   *  there, and when the first ones were dropped (stale, or held back) the one answered is a
   *  repeat sent 3, 6 or 9 s later. */
  asked(key: string, ageMs: number, now: number): number {
    const first = this.firstAsked.since(key, now);
    const age = Math.max(0, ageMs);
    if (first !== undefined && first >= age) return first;
    this.firstAsked.mark(key, now - age);
    return age;
  }

  issued(key: string, now: number): void {
    this.inFlight.mark(key, now);
  }

  /** The endpoint's PREPARE was decided (a tunnel, or a refusal): its cookie is no longer out. */
  settled(key: string): void {
    this.inFlight.forget(key);
    this.firstAsked.forget(key);
  }

  created(now: number): void {
    this.advance(now);
    this.buckets[Math.floor(now / BUCKET_MS) % BUCKETS]++;
    this.createdInWindow++;
  }

  private advance(now: number): void {
    const b = Math.floor(now / BUCKET_MS);
    if (b <= this.bucketAt) return;
    if (this.bucketAt === -Infinity) {
      this.bucketAt = b;
      return;
    }
    const stale = Math.min(BUCKETS, b - this.bucketAt);
    for (let k = 1; k <= stale; k++) {
      const i = (this.bucketAt + k) % BUCKETS;
      this.createdInWindow -= this.buckets[i];
      this.buckets[i] = 0;
    }
    this.bucketAt = b;
  }
}
