// Broker configuration in the original l2tp_broker.cfg format (spec §6.1). Every key is
// mandatory except the two per-IP rate limits, as in the original, and our own
// connection_rate_limit_burst; unknown keys are ignored.
// Errors are one line naming section.key and the offending value.
import { MTU_MIN, PMTU_DEFAULT } from '../protocol/constants.js';
import { formatIpv6, isIpv4Mapped, isIpv6LinkLocal, parseIpv4, parseIpv6 } from '../protocol/ip-address.js';
import type { LogLevel } from '../runtime/loop.js';
import { utf8Encode } from '../utf8.js';
import { isIniError, parseIni, type IniSections } from './ini.js';
import { DEFAULT_JOB_NICE, DEFAULT_MAX_RUNNING } from './job-runner.js';

export interface HookPaths {
  sessionUp: string;
  sessionPreDown: string;
  sessionDown: string;
  sessionMtuChanged: string;
  connectionRateLimit: string;
}

export interface BrokerConfig {
  /** The addresses to listen on, comma-separated (listenAddresses() splits it): IPv4 dotted
   *  quads and IPv6 addresses in canonical text form, each with every port. */
  address: string;
  ports: number[];
  interface: string;
  maxTunnels: number;
  tunnelIdBase: number;
  /** Average seconds between successful tunnel creations (0 = off). */
  connectionRateLimit: number;
  /** How many creations the global rate limit lets through back to back (token bucket size);
   *  absent = DEFAULT_RATE_LIMIT_BURST, 1 = the original (a minimum interval). */
  connectionRateLimitBurst?: number;
  perIpCount: number;
  /** Seconds (0 = off). */
  perIpTime: number;
  /** IPv6 clients are counted per prefix of this many bits by the per-IP limit (an attacker
   *  rotates addresses inside a prefix); absent = DEFAULT_IPV6_PREFIX. */
  perIpIpv6Prefix?: number;
  /** 0 = automatic PMTU discovery; otherwise the fixed tunnel MTU. */
  pmtu: number;
  verbosity: LogLevel;
  logIpAddresses: boolean;
  /** '' = no hook. */
  hooks: HookPaths;
  /** [hooks] max_concurrent: hook and tc processes running at once over all tunnels
   *  (optional key; JobRunner's DEFAULT_MAX_RUNNING when absent). */
  maxConcurrentJobs?: number;
  /** [hooks] nice: hook and tc processes run at the broker's nice value plus this (0-19;
   *  optional key, DEFAULT_JOB_NICE when absent). */
  jobNice?: number;
  /** [control] socket: Unix socket of `tunneldigger-broker ctl`; '' = the default (control.ts). */
  controlSocket?: string;
  /** [metrics] listen: where /metrics is served; null (section or key absent) = off. */
  metricsListen?: ListenAddress | null;
}

export interface ListenAddress {
  host: string;
  port: number;
}

export class ConfigError extends Error {}

/** 1,000 routers returning after an outage are all readmitted within a minute whatever the
 *  configured average interval (the bucket alone holds them). */
export const DEFAULT_RATE_LIMIT_BURST = 1000;

/** An end site gets a /64 (or more): the per-IP limit counts an IPv6 client's /64. */
export const DEFAULT_IPV6_PREFIX = 64;

/** Largest tunnel id whose interface name l2tp<tid>-<tid> still fits IFNAMSIZ-1 = 15 chars. */
export const MAX_TUNNEL_ID = 99_999;

const PYTHON_LEVELS: Record<string, LogLevel> = {
  critical: 'error', fatal: 'error', error: 'error', warning: 'warning', warn: 'warning',
  info: 'info', debug: 'debug', notset: 'debug',
};

export function parseConfig(text: string): BrokerConfig {
  const ini = parseIni(text);
  if (isIniError(ini)) throw new ConfigError(`config line ${ini.line}: ${ini.message}`);
  const r = new Reader(ini);
  const address = r.get('broker', 'address', parseAddressList);
  const ports = r.get('broker', 'port', parsePorts);
  const iface = r.get('broker', 'interface', (v) =>
    v !== '' && v.length <= 15 && !/[\s/:]/.test(v) ? v : fail('not an interface name (1-15 chars)'));
  const maxTunnels = r.get('broker', 'max_tunnels', (v) => intIn(v, 1, MAX_TUNNEL_ID));
  const tunnelIdBase = r.get('broker', 'tunnel_id_base', (v) => intIn(v, 1, MAX_TUNNEL_ID));
  if (tunnelIdBase + maxTunnels - 1 > MAX_TUNNEL_ID) {
    throw new ConfigError(
      `config broker.tunnel_id_base = "${tunnelIdBase}" with broker.max_tunnels = "${maxTunnels}": ` +
        `tunnel ids above ${MAX_TUNNEL_ID} do not fit the interface name l2tp<id>-<id>`);
  }
  const connectionRateLimit = r.get('broker', 'connection_rate_limit', nonNegativeFloat);
  const connectionRateLimitBurst = r.optional('broker', 'connection_rate_limit_burst', DEFAULT_RATE_LIMIT_BURST,
    (v) => intIn(v, 1, 1_000_000));
  const perIpCount = r.optional('broker', 'connection_rate_limit_per_ip_count', 0, (v) => intIn(v, 0, 1_000_000));
  const perIpTime = r.optional('broker', 'connection_rate_limit_per_ip_time', 0, nonNegativeFloat);
  const perIpIpv6Prefix = r.optional('broker', 'connection_rate_limit_per_ip_ipv6_prefix', DEFAULT_IPV6_PREFIX,
    (v) => intIn(v, 1, 128));
  const pmtu = r.get('broker', 'pmtu', (v) => intIn(v, 0, 65535));
  const verbosity = r.get('log', 'verbosity', (v) => PYTHON_LEVELS[v.toLowerCase()] ?? fail('not a log level (DEBUG, INFO, WARNING, ERROR, CRITICAL)'));
  const logIpAddresses = r.get('log', 'log_ip_addresses', parseBoolean);
  const hook = (key: string): string => r.get('hooks', key, (v) => (v === '' || v.startsWith('/') ? v : fail('hook path must be absolute (or empty for none)')));
  const maxConcurrentJobs = r.optional('hooks', 'max_concurrent', DEFAULT_MAX_RUNNING, (v) => intIn(v, 1, 10_000));
  const jobNice = r.optional('hooks', 'nice', DEFAULT_JOB_NICE, (v) => intIn(v, 0, 19));
  return {
    address, ports, interface: iface, maxTunnels, tunnelIdBase, connectionRateLimit, connectionRateLimitBurst,
    perIpCount, perIpTime, perIpIpv6Prefix, pmtu,
    verbosity, logIpAddresses,
    hooks: {
      sessionUp: hook('session.up'),
      sessionPreDown: hook('session.pre-down'),
      sessionDown: hook('session.down'),
      sessionMtuChanged: hook('session.mtu-changed'),
      connectionRateLimit: hook('broker.connection-rate-limit'),
    },
    maxConcurrentJobs,
    jobNice,
    ...parseOpsSections(r),
  };
}

/** Things in a valid config that probably do not do what the operator expects, one line each
 *  (logged at start). */
export function configWarnings(cfg: BrokerConfig): string[] {
  const out: string[] = [];
  if (cfg.pmtu > PMTU_MAX) {
    out.push(`config broker.pmtu = "${cfg.pmtu}": above ${PMTU_MAX} (a 1500-byte path minus 54 bytes of tunnel overhead); ` +
      `tunnel interfaces get MTU ${PMTU_MAX} and clients are told ${PMTU_MAX} (the original told them ${cfg.pmtu})`);
  } else if (cfg.pmtu > 0 && cfg.pmtu < PMTU_MIN) {
    out.push(`config broker.pmtu = "${cfg.pmtu}": below ${PMTU_MIN} (the IPv6 minimum); ` +
      `tunnel interfaces get MTU ${PMTU_MIN} and clients are told ${PMTU_MIN}`);
  }
  return out;
}

/** The tunnel MTU range the broker uses (spec §4.2: max(1280, min(measured, 1446))). */
const PMTU_MAX = PMTU_DEFAULT;
const PMTU_MIN = MTU_MIN;

class ValueError extends Error {}

function fail(why: string): never {
  throw new ValueError(why);
}

class Reader {
  constructor(private readonly ini: IniSections) {}

  get<T>(section: string, key: string, conv: (v: string) => T): T {
    const value = this.ini.get(section)?.get(key);
    if (value === undefined) throw new ConfigError(`config ${section}.${key} is missing (required key)`);
    return this.convert(section, key, value, conv);
  }

  optional<T>(section: string, key: string, fallback: T, conv: (v: string) => T): T {
    const value = this.ini.get(section)?.get(key);
    return value === undefined ? fallback : this.convert(section, key, value, conv);
  }

  private convert<T>(section: string, key: string, value: string, conv: (v: string) => T): T {
    try {
      return conv(value);
    } catch (e) {
      if (e instanceof ValueError) throw new ConfigError(`config ${section}.${key} = "${value}": ${e.message}`);
      throw e;
    }
  }
}

function isIpv4(v: string): boolean {
  return parseIpv4(v) !== null;
}

/** broker.address: one address (the original: IPv4 only) or a comma-separated list of IPv4 and
 *  IPv6 addresses, IPv6 with or without brackets; returned comma-joined, IPv6 in canonical form. */
function parseAddressList(v: string): string {
  const list = v.split(',').map((a) => a.trim());
  const out = list.map(parseListenAddress);
  if (new Set(out).size !== out.length) fail('an address is listed twice');
  return out.join(',');
}

function parseListenAddress(a: string): string {
  if (a === '') return fail('an empty address in the list');
  if (isIpv4(a)) return a;
  const bracketed = /^\[(.*)\](:\d+)?$/.exec(a);
  if (bracketed?.[2]) return fail(`"${a}": no port here, ports go in broker.port`);
  const text = bracketed ? bracketed[1] : a;
  if (text.includes('%')) return fail(`"${a}": zone ids (%interface) are not supported; use a global IPv6 address`);
  const bytes = parseIpv6(text);
  if (!bytes) {
    return fail(text.includes(':') ? `"${a}" is not an IPv6 address`
      : `"${a}" is not an IPv4 or IPv6 address (host names are not accepted)`);
  }
  if (isIpv4Mapped(bytes)) {
    return fail(`"${a}" is an IPv4-mapped IPv6 address; write the IPv4 address ` +
      `${bytes.subarray(12).join('.')} itself (IPv6 listeners take no IPv4 traffic)`);
  }
  if (isIpv6LinkLocal(bytes)) return fail(`"${a}" is link-local, which needs a zone id; use a global IPv6 address`);
  return formatIpv6(bytes);
}

/** The addresses of broker.address, in the configured order. */
export function listenAddresses(cfg: Pick<BrokerConfig, 'address'>): string[] {
  return cfg.address.split(',');
}

/** Python int(): optional sign, digits with single underscores between them. */
function parseInt10(v: string): number {
  const t = v.trim();
  if (!/^[+-]?\d+(_\d+)*$/.test(t)) fail('not an integer');
  return Number(t.replace(/_/g, ''));
}

function intIn(v: string, min: number, max: number): number {
  const n = parseInt10(v);
  if (n < min || n > max) fail(`must be between ${min} and ${max}`);
  return n;
}

function nonNegativeFloat(v: string): number {
  const t = v.trim();
  if (!/^[+]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) fail('not a non-negative number');
  const n = Number(t);
  if (!Number.isFinite(n)) fail('not a finite number');
  return n;
}

function parsePorts(v: string): number[] {
  const ports = v.split(',').map((p) => intIn(p, 1, 65535));
  if (new Set(ports).size !== ports.length) fail('a port is listed twice');
  return ports;
}

/** ConfigParser.getboolean(). */
function parseBoolean(v: string): boolean {
  const t = v.toLowerCase();
  if (['1', 'yes', 'true', 'on'].includes(t)) return true;
  if (['0', 'no', 'false', 'off'].includes(t)) return false;
  return fail('not a boolean (true/false, yes/no, on/off, 1/0)');
}

/** [control] and [metrics]: new, optional sections (the original broker ignores them). */
function parseOpsSections(r: Reader): Pick<BrokerConfig, 'controlSocket' | 'metricsListen'> {
  const controlSocket = r.optional('control', 'socket', '', (v) =>
    v === '' || (v.startsWith('/') && utf8Encode(v).length <= 107) ? v : fail('must be an absolute path of at most 107 bytes'));
  const metricsListen = r.optional<ListenAddress | null>('metrics', 'listen', null, (v) => (v === '' ? null : parseListen(v)));
  return { controlSocket, metricsListen };
}

/** "127.0.0.1:9106", "[::1]:9106" or "[2001:db8::1]:9106". */
export function parseListen(v: string): ListenAddress {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(v.trim());
  if (!m) return fail('expected address:port, e.g. 127.0.0.1:9106 or [::1]:9106');
  const host = m[1] ?? m[2];
  if (m[2] !== undefined && !isIpv4(host)) fail('not an IPv4 address');
  if (m[1] !== undefined && (!host.includes(':') || !parseIpv6(host))) fail('not an IPv6 address');
  const port = Number(m[3]);
  if (port < 1 || port > 65535) fail('port must be between 1 and 65535');
  return { host, port };
}
