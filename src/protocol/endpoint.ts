// IP address and host:port text, one parser for the client's -b/-l and the broker's address=
// list. IPv4 dotted quads as the original reads them; IPv6 in RFC 4291 text form (groups of 1-4
// hex digits, one "::", an optional dotted-quad tail), brackets around it when a port follows
// ("[2001:db8::1]:8942", RFC 3986). Refused with a reason instead of being read as something
// else: zone ids ("fe80::1%eth0": the client has -I for that), v4-mapped addresses
// ("::ffff:198.51.100.1": IPv6 sockets are IPV6_V6ONLY, write the IPv4 address), and an IPv6
// address with a port but without brackets ("2001:db8::1:8942" is itself a valid address: no
// guess about where the port starts). The address bytes come from ip-address.ts.
import type { UnderlayFamily } from './mtu.js';
import { isIpv4Mapped, parseIpv4, parseIpv6 } from './ip-address.js';

/** 4 or 6 (the one definition is mtu.ts's UnderlayFamily). */
export type Family = UnderlayFamily;

/** The reason given for "fe80::1%eth0" (callers may add how to name the interface instead). */
export const ZONE_IDS = 'zone ids (%interface) are not supported';

const DEC = '0123456789';

function isDecimal(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (!DEC.includes(s[i])) return false;
  return s.length > 0;
}

/** An address as the sockets take it: `{ family }`, or `{ error }` saying why not (the caller
 *  names the option or key and the value). `wildcard`: also accept 0.0.0.0 / :: (bind). */
export function checkAddress(s: string, wildcard = true): { family: Family } | { error: string } {
  if (parseIpv4(s)) return { family: 4 };
  const pct = s.indexOf('%');
  if (pct >= 0 && parseIpv6(s.slice(0, pct))) return { error: ZONE_IDS };
  if (s[0] === '[' && s[s.length - 1] === ']' && parseIpv6(s.slice(1, -1))) return { error: 'no brackets around an address without a port' };
  const b = parseIpv6(s);
  if (!b) return { error: 'expected an IPv4 address such as 198.51.100.7 or an IPv6 address such as 2001:db8::7' };
  if (isIpv4Mapped(b)) return { error: `a v4-mapped IPv6 address: write the IPv4 address ${b.slice(12).join('.')} instead` };
  if (!wildcard && b.every((x) => x === 0)) return { error: 'the unspecified address :: is not a destination' };
  return { family: 6 };
}

/** Family of an address literal as checkAddress accepts it, null for anything else (names). */
export function addressFamily(s: string): Family | null {
  const r = checkAddress(s);
  return 'family' in r ? r.family : null;
}

export interface HostPort {
  /** Host name or address, without brackets. */
  host: string;
  /** Port number or service name, as given. */
  port: string;
  /** Family of an address literal; null for a host name (the resolver decides). */
  family: Family | null;
}

/** "host:port", "198.51.100.1:8942" or "[2001:db8::1]:8942". The port is a number 1..65535 or a
 *  service name (left to the resolver). */
export function parseHostPort(s: string): HostPort | { error: string } {
  let host: string;
  let port: string;
  if (s[0] === '[') {
    const close = s.indexOf(']');
    if (close < 0) return { error: "expected [IPv6 address]:port, the ']' is missing" };
    host = s.slice(1, close);
    if (s[close + 1] !== ':' || close + 2 >= s.length) return { error: `expected [${host}]:port` };
    port = s.slice(close + 2);
    const a = checkAddress(host, false);
    if ('error' in a) return a;
    if (a.family !== 6) return { error: `brackets are for IPv6 addresses: write ${host}:${port}` };
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 1 || colon === s.length - 1) return { error: 'expected host:port, or [IPv6 address]:port' };
    host = s.slice(0, colon);
    port = s.slice(colon + 1);
    if (host.includes(':')) {
      // 2001:db8::1:8942 is itself an address: never guess where the port starts
      const bare = host.includes('%') ? host.slice(0, host.indexOf('%')) : host;
      if (parseIpv6(bare) || parseIpv6(s)) {
        if (host.includes('%') || port.includes('%')) return { error: ZONE_IDS };
        return { error: `an IPv6 address needs brackets when a port follows, e.g. [${host}]:${port}` };
      }
      return { error: 'expected host:port, or [IPv6 address]:port' };
    }
  }
  if (isDecimal(port) && (+port < 1 || +port > 65535)) return { error: 'port must be 1..65535' };
  if (port.includes(':') || port.includes(']')) return { error: 'expected host:port, or [IPv6 address]:port' };
  if (host.includes('%')) return { error: ZONE_IDS };
  return { host, port, family: addressFamily(host) };
}
