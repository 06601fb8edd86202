// IP address text, both families, without any runtime (the C core parses for the socket calls;
// this is for configuration, logs and rate-limit keys). IPv4: a dotted quad. IPv6: RFC 4291 §2.2
// text (hex groups, one "::", an optional dotted-quad tail), no brackets, no zone id; printed as
// glibc's inet_ntop does (src/ip-text.ts: RFC 5952, with the embedded-IPv4 forms for ::ffff:0:0/96
// and ::/96, which the broker's configuration refuses anyway).
import type { IpFamily } from '../native.js';
import { formatIpv6, ipv4Number } from '../ip-text.js';

export { formatIpv6 };

// Character scans instead of regexps: the client bundle uses this module too, and the router
// build has no RegExp (qjs-native/qjs_main.c).
const HEX = '0123456789abcdefABCDEF';

/** s is non-empty and made only of characters in `set`. */
function only(s: string, set: string): boolean {
  for (let i = 0; i < s.length; i++) if (!set.includes(s[i])) return false;
  return s.length > 0;
}

/** The 4 bytes of a dotted quad (each part 0-255, at most 3 digits), or null. */
export function parseIpv4(text: string): Uint8Array | null {
  const v = ipv4Number(text);
  return Number.isNaN(v) ? null : Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** The 16 bytes of an IPv6 address in text form, or null (also for brackets and zone ids). A
 *  dotted-quad tail takes no leading zeros, as inet_pton. */
export function parseIpv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > 45) return null;
  const gap = text.indexOf('::');
  if (gap >= 0 && text.indexOf('::', gap + 1) >= 0) return null;
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const out: number[] = [];
    const words = part.split(':');
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (i === words.length - 1 && w.includes('.')) {
        const v4 = parseIpv4(w);
        if (!v4 || w.split('.').some((x) => x.length > 1 && x[0] === '0')) return null;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (w.length <= 4 && only(w, HEX)) out.push(parseInt(w, 16));
      else return null;
    }
    return out;
  };
  let words: number[];
  if (gap < 0) {
    const all = groups(text);
    if (!all || all.length !== 8) return null;
    words = all;
  } else {
    const head = groups(text.slice(0, gap));
    const tail = groups(text.slice(gap + 2));
    // the dotted tail may only end the address, not the part before "::"
    if (!head || !tail || text.slice(0, gap).includes('.') || head.length + tail.length > 7) return null;
    words = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
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

/** "198.51.100.1:8942" or "[2001:db8::1]:8942" (also a host name: "broker.example:domain"). */
export function formatHostPort(ip: string, port: number | string): string {
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
