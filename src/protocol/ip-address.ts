// IP address text, both families, without any runtime (the C core parses for the socket calls;
// this is for configuration, logs and rate-limit keys). IPv4: a dotted quad. IPv6: RFC 4291 §2.2
// text (hex groups, one "::", an optional dotted-quad tail), no brackets, no zone id; printed in
// the RFC 5952 canonical form, which is what inet_ntop prints for every address the broker
// accepts (glibc and musl differ only in the embedded-IPv4 forms, which it refuses).
import type { IpFamily } from '../native.js';

/** The 4 bytes of a dotted quad (each part 0-255, at most 3 digits), or null. */
export function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return null;
  return Uint8Array.from(parts, Number);
}

/** The 16 bytes of an IPv6 address in text form, or null (also for brackets and zone ids). */
export function parseIpv6(text: string): Uint8Array | null {
  let head = text;
  const tail: number[] = [];
  const lastColon = head.lastIndexOf(':');
  if (lastColon < 0) return null;
  if (head.slice(lastColon + 1).includes('.')) {
    const v4 = parseIpv4(head.slice(lastColon + 1));
    if (!v4) return null;
    tail.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
    // "::1.2.3.4" keeps its "::"; "a:b:c:d:e:f:1.2.3.4" drops the colon before the quad
    head = head.slice(0, lastColon + 1);
    if (!head.endsWith('::')) head = head.slice(0, -1);
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  const groups = halves.map((h) => (h === '' ? [] : h.split(':')));
  if (!groups.every((g) => g.every((x) => /^[0-9A-Fa-f]{1,4}$/.test(x)))) return null;
  const words = groups.map((g) => g.map((x) => parseInt(x, 16)));
  const want = 8 - tail.length;
  const count = words[0].length + (words[1]?.length ?? 0);
  if (halves.length === 2 ? count >= want : count !== want) return null;
  const all = halves.length === 2 ? [...words[0], ...new Array<number>(want - count).fill(0), ...words[1]] : words[0];
  all.push(...tail);
  const out = new Uint8Array(16);
  all.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** RFC 5952: lower case, no leading zeros, the longest run (first on a tie) of two or more
 *  zero groups as "::". */
export function formatIpv6(bytes: Uint8Array): string {
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i] << 8) | bytes[i + 1]);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(':');
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/** 4 or 6 by what the text parses as, null when it is no address (names, brackets, zones). */
export function ipFamily(text: string): IpFamily | null {
  if (parseIpv4(text)) return 4;
  return parseIpv6(text) ? 6 : null;
}

/** The family of an address the runtime produced (recvFrom, resolveFinish): no parsing. */
export function familyOf(ip: string): IpFamily {
  return ip.includes(':') ? 6 : 4;
}

/** "198.51.100.1:8942" or "[2001:db8::1]:8942". */
export function formatHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** ::ffff:a.b.c.d (an IPv4 address written as IPv6). */
export function isIpv4Mapped(bytes: Uint8Array): boolean {
  return bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
}

/** fe80::/10, which needs a zone id (an interface) to be used. */
export function isIpv6LinkLocal(bytes: Uint8Array): boolean {
  return bytes[0] === 0xfe && (bytes[1] & 0xc0) === 0x80;
}

/** The first `bits` bits of an IPv6 address as canonical text with the rest zeroed, e.g.
 *  "2001:db8:1:2::/64"; an IPv4 address (or anything unparsable) is returned as it is. */
export function ipv6Prefix(ip: string, bits: number): string {
  if (!ip.includes(':')) return ip;
  const b = parseIpv6(ip);
  if (!b) return ip;
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    b[i] &= (0xff00 >> keep) & 0xff;
  }
  return `${formatIpv6(b)}/${bits}`;
}
