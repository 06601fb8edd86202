// Command line of the client, compatible with the original tunneldigger (spec §6.3): getopt
// semantics (`-u foo`, `-ufoo`, grouped flags `-fa`, `--` ends the options). Unlike the
// original, bad values are refused with one line naming the option instead of being read as 0.

import { type Family, ZONE_IDS, addressFamily, checkAddress, parseHostPort } from '../protocol/endpoint.js';
import { formatHostPort, parseIpv4 } from '../protocol/ip-address.js';
import { VERSION } from '../version.js';

export type Selection = 'first' | 'usage' | 'random';

export interface Broker {
  /** Name or address (an IPv6 address without its brackets). */
  host: string;
  /** Port number or service name, handed to getaddrinfo as is. */
  port: string;
}

export interface Options {
  uuid: string;
  /** -l: local address (IPv4 or IPv6; its family is then the only one used); null: none given,
   *  each socket binds the wildcard of its family. */
  bindIp: string | null;
  brokers: Broker[];
  ifname: string;
  bindDevice: string | null;
  hook: string | null;
  /** -m: also call the hook with session.mtu-changed (an extension; off as in the original). */
  mtuHook: boolean;
  tunnelId: number;
  limitKbps: number;
  selection: Selection;
  foreground: boolean;
}

/** Either options to run with, or text to print and the exit code. */
export type ParseResult = { options: Options } | { exit: number; text: string; error: boolean };

export const MAX_BROKERS = 10;

export const HELP = `Usage: tunneldigger [options]
  -h            show this help and exit
  --version     print the version and exit
  -f            also log to stderr (does not daemonize)
  -u uuid       client identifier (required)
  -l ip         local address to bind to, IPv4 or IPv6 (then only that family
                is used; default: any address, both families)
  -b host:port  broker address and port (required, up to ${MAX_BROKERS}, repeatable);
                an IPv6 address in brackets: -b [2001:db8::1]:8942; a name with
                A and AAAA records is tried over both (IPv6 first if the system
                prefers it, IPv4 250 ms later)
  -i iface      tunnel interface name (required)
  -I iface      bind the tunnel socket to this interface
  -s script     hook script: run as <script> session.up|session.down <iface>
  -m            also run <script> session.mtu-changed <iface> <old> <new> when
                the tunnel MTU changes (not done by the original client)
  -t id         local tunnel id (default 1)
  -L kbps       ask the broker to limit broker-to-client bandwidth (kbit/s)
  -a            select the broker with the lowest usage
  -g            select the first broker that answers (default)
  -r            select a random broker among those that answer`;

const WITH_ARG = 'ulbiIstL';
const FLAGS = 'hfagrm';

// Character scans instead of regexps: the router build has no RegExp (qjs-native/qjs_main.c).
const DEC = '0123456789';

/** s is non-empty and made only of characters in `set`. */
function only(s: string, set: string): boolean {
  for (let i = 0; i < s.length; i++) if (!set.includes(s[i])) return false;
  return s.length > 0;
}

/** strtoul(s, NULL, 0) forms, but the whole string must be a number: 0x1f, 017, 42. */
function parseUlong(s: string): number | null {
  let n = NaN;
  if (s[0] === '0' && (s[1] === 'x' || s[1] === 'X')) {
    if (only(s.slice(2), DEC + 'abcdefABCDEF')) n = parseInt(s.slice(2), 16);
  } else if (s[0] === '0') {
    if (only(s, '01234567')) n = parseInt(s, 8);
  } else if (only(s, DEC)) n = parseInt(s, 10);
  return n <= 0xffffffff ? n : null;
}

/** A dotted quad without leading zeros (which getaddrinfo would read as octal): connected to
 *  directly, without the resolver. */
export function isIpv4Literal(s: string): boolean {
  return parseIpv4(s) !== null && s.split('.').every((x) => x === '0' || x[0] !== '0');
}

/** A decimal port 1..65535 (not a service name, which needs the resolver). */
export function isPortNumber(s: string): boolean {
  return only(s, DEC) && s.length <= 5 && +s >= 1 && +s <= 65535;
}

// what /[\s/:\0]/ matched: '/', ':', NUL and the ECMAScript white space and line terminators
const NOT_IN_IFNAME = '/:\0 \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff';

/** What the kernel accepts as a link name: 1..15 bytes, no '/', ':' or whitespace. */
function isIfname(s: string): boolean {
  if (s.length === 0 || s.length >= 16 || s === '.' || s === '..') return false;
  for (let i = 0; i < s.length; i++) if (NOT_IN_IFNAME.includes(s[i])) return false;
  return true;
}

/** args: the arguments after the program name. */
export function parseArgs(args: string[]): ParseResult {
  const o: Options = {
    uuid: '', bindIp: null, brokers: [], ifname: '', bindDevice: null, hook: null, mtuHook: false,
    tunnelId: 1, limitKbps: 0, selection: 'first', foreground: false,
  };
  const fail = (text: string): ParseResult => ({ exit: 1, text, error: true });
  let i = 0;
  for (; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (arg === '--version') return { exit: 0, text: `tunneldigger ${VERSION}`, error: false };
    // GNU getopt permutes: non-options are skipped over and reported below
    if (arg.length < 2 || arg[0] !== '-') return fail(`unexpected argument '${arg}' (options start with -; see -h)`);
    for (let k = 1; k < arg.length; k++) {
      const c = arg[k];
      if (FLAGS.includes(c)) {
        if (c === 'h') return { exit: 1, text: HELP, error: false };
        if (c === 'f') o.foreground = true;
        else if (c === 'm') o.mtuHook = true;
        else o.selection = c === 'a' ? 'usage' : c === 'r' ? 'random' : 'first';
        continue;
      }
      if (!WITH_ARG.includes(c)) return fail(`invalid option -${c} (see -h)`);
      let v: string;
      if (k + 1 < arg.length) v = arg.slice(k + 1);
      else if (i + 1 < args.length) v = args[++i];
      else return fail(`option -${c} requires an argument (see -h)`);
      const bad = (what: string): ParseResult =>
        fail(`invalid value '${v}' for -${c}: ${what}${what === ZONE_IDS ? '; bind to the interface with -I instead' : ''}`);
      switch (c) {
        case 'u':
          if (!v) return bad('expected a non-empty client identifier');
          o.uuid = v;
          break;
        case 'l': {
          const a = checkAddress(v);
          if ('error' in a) return bad(a.error);
          o.bindIp = v;
          break;
        }
        case 'b': {
          const hp = parseHostPort(v);
          if ('error' in hp) return bad(hp.error);
          if (o.brokers.length >= MAX_BROKERS) return bad(`at most ${MAX_BROKERS} brokers are supported`);
          o.brokers.push({ host: hp.host, port: hp.port });
          break;
        }
        case 'i':
        case 'I':
          if (!isIfname(v)) return bad('expected an interface name of 1..15 characters');
          if (c === 'i') o.ifname = v;
          else o.bindDevice = v;
          break;
        case 's':
          if (!v) return bad('expected a script path');
          o.hook = v;
          break;
        case 't': {
          const n = parseUlong(v);
          if (n === null || n === 0) return bad('expected a tunnel id 1..4294967295 (decimal, 0x hex or 0 octal)');
          o.tunnelId = n;
          break;
        }
        case 'L': {
          const n = only(v, DEC) ? +v : NaN;
          if (!(n <= 0xffffffff)) return bad('expected a bandwidth in kbit/s, 0..4294967295');
          o.limitKbps = n;
          break;
        }
      }
      break; // the rest of this word was the argument
    }
  }
  if (i < args.length) return fail(`unexpected argument '${args[i]}' (see -h)`);
  const missing = [!o.uuid && '-u uuid', !o.brokers.length && '-b host:port', !o.ifname && '-i iface'].filter(Boolean);
  if (missing.length) return fail(`missing required option ${missing.join(', ')}\n${HELP}`);
  // a broker literal of the other family than -l can never be reached: say so now
  const only4or6 = bindFamily(o);
  for (const b of o.brokers) {
    const f = addressFamily(b.host);
    if (only4or6 && f && f !== only4or6) {
      return fail(`broker ${formatHostPort(b.host, b.port)} is an IPv${f} address but -l ${o.bindIp} is IPv${only4or6}: it could never be reached`);
    }
  }
  return { options: o };
}

/** The only address family the client may use (-l given), or null for both. */
export function bindFamily(o: Pick<Options, 'bindIp'>): Family | null {
  return o.bindIp === null ? null : addressFamily(o.bindIp);
}
