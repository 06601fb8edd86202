// Broker cookies (spec §2.6): 8 opaque bytes = u16 timestamp + the first 6 bytes of a MAC over
// the client's source IP, port and the timestamp. Stateless: the broker recomputes the MAC to
// verify. Only the broker reads its own cookies, so the layout is ours to choose:
//  * CookieJar is the original construction (64-second ticks, the Python bytes-repr artefact in
//    the MAC input), kept as the reference that spec §3's worked example checks;
//  * FineCookieJar is what the broker issues: 250 ms ticks, so a PREPARE tells how long ago its
//    client got the cookie, and one whose client has given up (15 s after selecting us, §4.1)
//    does not create a tunnel nobody uses.
import { utf8Encode } from './messages.js';

/** HMAC-SHA1(key, message), provided by the runtime (node:crypto on the broker). */
export type Mac = (key: Uint8Array, message: Uint8Array) => Uint8Array;

export const COOKIE_TICK_MS = 64_000;
/** A cookie is accepted while its tick is within this many ticks of now (~128–192 s). */
export const COOKIE_MAX_AGE_TICKS = 2;

/** Python 3 repr() of a bytes object, e.g. b'\x00\x03'. */
export function pythonBytesRepr(bytes: Uint8Array): string {
  const hasSingle = bytes.includes(0x27);
  const quote = hasSingle && !bytes.includes(0x22) ? '"' : "'";
  let body = '';
  for (const b of bytes) {
    if (b === 0x5c) body += '\\\\';
    else if (b === 0x09) body += '\\t';
    else if (b === 0x0a) body += '\\n';
    else if (b === 0x0d) body += '\\r';
    else if (b === quote.charCodeAt(0)) body += '\\' + quote;
    else if (b >= 0x20 && b < 0x7f) body += String.fromCharCode(b);
    else body += '\\x' + b.toString(16).padStart(2, '0');
  }
  return `b${quote}${body}${quote}`;
}

export class CookieJar {
  constructor(
    private readonly key: Uint8Array,
    private readonly mac: Mac,
    /** Monotonic ms at broker start (tick 0). */
    private readonly epochMs: number,
  ) {}

  tick(nowMs: number): number {
    return Math.floor((nowMs - this.epochMs) / COOKIE_TICK_MS) & 0xffff;
  }

  private signature(ip: string, port: number, timestamp: Uint8Array): Uint8Array {
    const text = `${ip}${port}${pythonBytesRepr(timestamp)}`;
    return this.mac(this.key, utf8Encode(text)).subarray(0, 6);
  }

  issue(ip: string, port: number, nowMs: number): Uint8Array {
    const t = this.tick(nowMs);
    const timestamp = Uint8Array.of(t >> 8, t & 0xff);
    const cookie = new Uint8Array(8);
    cookie.set(timestamp, 0);
    cookie.set(this.signature(ip, port, timestamp), 2);
    return cookie;
  }

  /** True when the cookie was issued by this broker to ip:port within the allowed age.
   *  Tick distance is computed modulo 2^16 (the original rejects valid cookies at the wrap). */
  verify(cookie: Uint8Array, ip: string, port: number, nowMs: number): boolean {
    if (cookie.length !== 8) return false;
    const timestamp = cookie.subarray(0, 2);
    const then = (timestamp[0] << 8) | timestamp[1];
    const diff = (this.tick(nowMs) - then) & 0xffff;
    const distance = Math.min(diff, 0x10000 - diff);
    if (distance > COOKIE_MAX_AGE_TICKS) return false;
    const expected = this.signature(ip, port, timestamp);
    let mismatch = 0;
    for (let i = 0; i < 6; i++) mismatch |= expected[i] ^ cookie[2 + i];
    return mismatch === 0;
  }
}

/** FineCookieJar tick: 250 ms; the u16 wraps after 4.5 h (ages are computed modulo 2^16). */
export const FINE_TICK_MS = 250;
/** Accepted for 192 s, the original's upper bound (spec §2.6 asks for at least ~2 minutes). */
export const FINE_MAX_AGE_MS = 192_000;

export class FineCookieJar {
  constructor(
    private readonly key: Uint8Array,
    private readonly mac: Mac,
    /** Monotonic ms at broker start (tick 0). */
    private readonly epochMs: number,
  ) {}

  tick(nowMs: number): number {
    return Math.floor((nowMs - this.epochMs) / FINE_TICK_MS) & 0xffff;
  }

  private signature(ip: string, port: number, tick: number): Uint8Array {
    // a prefix unlike any text of the original construction, so the two can never collide
    return this.mac(this.key, utf8Encode(`td-fine ${ip} ${port} ${tick}`)).subarray(0, 6);
  }

  issue(ip: string, port: number, nowMs: number): Uint8Array {
    const t = this.tick(nowMs);
    const cookie = new Uint8Array(8);
    cookie[0] = t >> 8;
    cookie[1] = t & 0xff;
    cookie.set(this.signature(ip, port, t), 2);
    return cookie;
  }

  /** The cookie's age in ms (a multiple of FINE_TICK_MS) when it was issued by this broker to
   *  ip:port at most FINE_MAX_AGE_MS ago; null otherwise (forged, other endpoint, expired, or
   *  from the future). */
  age(cookie: Uint8Array, ip: string, port: number, nowMs: number): number | null {
    if (cookie.length !== 8) return null;
    const then = (cookie[0] << 8) | cookie[1];
    const age = ((this.tick(nowMs) - then) & 0xffff) * FINE_TICK_MS;
    if (age > FINE_MAX_AGE_MS) return null;
    const expected = this.signature(ip, port, then);
    let mismatch = 0;
    for (let i = 0; i < 6; i++) mismatch |= expected[i] ^ cookie[2 + i];
    return mismatch === 0 ? age : null;
  }
}
