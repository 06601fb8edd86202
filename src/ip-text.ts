// The two address forms every layer shares: a dotted quad as a number (compared per datagram on
// the broker's hot path) and 16 IPv6 bytes as text the way glibc's inet_ntop writes them, so an
// address formatted here equals the one the C core reports for the same socket address (logs,
// redaction, rate-limit keys). Character scans, no RegExp: the router build has none.

/** A dotted quad (each part 0-255, 1-3 digits) as a number, NaN when the text is not one. */
export function ipv4Number(ip: string): number {
  let v = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let k = 0; k <= ip.length; k++) {
    const c = k < ip.length ? ip.charCodeAt(k) : 46;
    if (c >= 48 && c <= 57) {
      part = part * 10 + (c - 48);
      if (++digits > 3 || part > 255) return NaN;
    } else if (c === 46 && digits > 0 && dots < 4) {
      v = v * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else {
      return NaN;
    }
  }
  return dots === 4 ? v : NaN;
}

/** RFC 5952 text of 16 address bytes, as glibc's inet_ntop writes it: lower-case hex, the
 *  longest run of two or more zero groups (the first of equal ones) as "::", and ::ffff:0:0/96
 *  (and ::/96 with a non-zero seventh group) with its last 32 bits as a dotted quad. */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = [];
  for (let k = 0; k < 8; k++) g.push((b[2 * k] << 8) | b[2 * k + 1]);
  const zeroTo5 = g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0;
  if (zeroTo5 && (g[5] === 0xffff || (g[5] === 0 && g[6] !== 0))) {
    const quad = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
    return g[5] === 0xffff ? `::ffff:${quad}` : `::${quad}`;
  }
  let bestAt = -1;
  let bestLen = 1;
  for (let k = 0; k < 8;) {
    if (g[k] !== 0) {
      k++;
      continue;
    }
    let e = k;
    while (e < 8 && g[e] === 0) e++;
    if (e - k > bestLen) {
      bestAt = k;
      bestLen = e - k;
    }
    k = e;
  }
  const hex = (from: number, to: number): string => g.slice(from, to).map((x) => x.toString(16)).join(':');
  if (bestAt < 0) return hex(0, 8);
  return `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}
