// Command line of the load generator (bench/loadgen/main.ts). Bad values name the option.
import type { IpFamily } from '../../src/native.js';
import { formatIpv6, ipFamily, parseIpv6 } from '../../src/protocol/ip-address.js';
import type { Mode } from './sim.js';

export const HELP = `Usage: node build/js/bench/loadgen/main.js --broker IP:PORT --clients N [options]
Simulates N tunneldigger clients in one process, each with its own UDP socket and uuid, speaking
the bytes of our client (src/client/context.ts). Bounded: stops by itself. Exit status 0 when
every client came up, 1 when one never did (or was still down at the end), 2 on bad options.

  --broker IP:PORT     broker address: a.b.c.d:PORT or [IPv6]:PORT (no name resolution); the
                       clients use the broker's address family
  --clients N          number of simulated clients (1..20000)
  --rate R             arrivals per second (default 0: all at once)
  --original           behave like the original C client: give up silently after 15 s (no ERROR),
                       retry at once, no backoff (default: our client's main loop)
  --kernel             create each client's kernel L2TP tunnel + session (interface <prefix><i>),
                       so data can flow; default: control only (keepalives, PMTU probes answered,
                       no client-side kernel state)
  --limit KBPS         each client asks for a downstream limit of KBPS kbit/s once up (as -L)
  --source LIST        source addresses of the broker's family, round-robin: a.b.c.d[,a.b.c.e-f...]
                       or 2001:db8::10[,2001:db8::20-2f...] (a range in the last group, hex for
                       IPv6); default 0.0.0.0 or ::
  --up-timeout S       give up waiting for all clients after S s (default 60)
  --settle S           after all are up (+2 s), wait S s before the hold starts (default 0): the
                       broker's PMTU discovery runs for ~25 s after each tunnel is created
  --duration S         hold the tunnels S s (default 0); churn happens here; the broker's CPU
                       during the hold is its idle figure
  --windows N          also report the broker's CPU per minute in each of N equal parts of the
                       hold (default 1): the first minutes carry V8's compiling and the clients'
                       first PMTU rounds, the later ones show the steady state
  --churn R            during the hold, close R tunnels per second (ERROR 0x11) and reconnect them
  --broker-pid PID     the broker process: its CPU (/proc) and RSS are reported, and SIGUSR1 makes
  --broker-log FILE    it log its counters in FILE: tunnel creations and tunnels held come from there
  --broker-agent URL   the same figures from a broker on another machine (a VM): URL of
                       bench/loadgen/broker-agent.js running beside it (http://IP:PORT); instead
                       of --broker-pid and --broker-log
  --tunnel-id-base N   local tunnel id of client i = N + i (default 1000)
  --ifname-prefix P    kernel interface names P<i> (default lg; --kernel only)
  --uuid-prefix P      uuid of client i = P-<i> (default loadgen)
  --progress S         progress line on stderr every S s (default 1, 0 = none)
  --no-teardown        at the end, leave the tunnels to their fate (default: close them all)
  --stop-broker SIG    after the hold, send SIG (TERM or KILL) to the broker instead of the
                       teardown and watch it for up to --stop-wait S s (default 90): time to exit,
                       most child processes (hooks) and largest RSS seen, ERRORs told to clients
  --spread             tick the clients in 25 slices of the 500 ms period (one every 20 ms)
                       instead of all together: their keepalives reach the broker one by one,
                       as a real fleet's do (default: all clients on one tick)
  --deadlines          tick each client at its own next deadline (one timer for the earliest of
                       a heap, as our client's driver), not on a shared tick: idle clients cost
                       their keepalives only (for thousands of clients); overrides --spread
  --read-ms MS         read the clients' sockets together at most every MS ms (one wake-up and
                       recvmmsg round for all that have something; default 0: as soon as one is
                       readable, all readable ones of that event-loop turn together); answers
                       wait up to MS ms, far below the protocol's 1 s slack; use it for
                       thousands of clients (at 10,000 the default fell behind: bench/README.md)
  --per-socket         one readiness callback and recvfrom per datagram, each socket on its own
                       (the load generator before the batched reader; for comparing its cost)
  --verbose            print the simulated clients' warnings and errors
  -h, --help           this text
`;

export interface LoadOptions {
  brokerIp: string;
  /** The broker address's family: every client socket is of it. */
  family: IpFamily;
  brokerPort: number;
  clients: number;
  rate: number;
  mode: Mode;
  kernel: boolean;
  /** LIMIT bandwidth_down per client (kbit/s), 0 = none. */
  limitKbps: number;
  sources: string[];
  upTimeoutS: number;
  durationS: number;
  /** Equal parts of the hold, each with its own CPU per minute (1: the hold as a whole). */
  windows: number;
  settleS: number;
  churn: number;
  brokerPid: number | null;
  brokerLog: string | null;
  /** http://IP:PORT of a broker-agent (broker-agent.ts), or null. */
  brokerAgent: string | null;
  tunnelIdBase: number;
  ifnamePrefix: string;
  uuidPrefix: string;
  progressS: number;
  teardown: boolean;
  verbose: boolean;
  /** Clients ticked in slices over the tick period, not all together. */
  spread: boolean;
  /** Each client ticked at its own next deadline (schedule.ts). */
  deadlines: boolean;
  /** The sockets read together at most every readMs (0: each event-loop turn). */
  readMs: number;
  /** One callback and recvfrom per datagram instead of the batched reader. */
  perSocket: boolean;
  stopSignal: 'SIGTERM' | 'SIGKILL' | null;
  stopWaitS: number;
}

export class OptionError extends Error {}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4(opt: string, v: string): string {
  const m = IPV4.exec(v);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new OptionError(`${opt}: '${v}' is not an IPv4 address`);
  return v;
}

/** "a.b.c.d,a.b.c.e-f" → every address (ranges in the last octet); IPv6 addresses and ranges
 *  in the last group ("2001:db8::10-1f", hex) are canonical text. */
export function parseSources(v: string): string[] {
  const out: string[] = [];
  for (const part of v.split(',')) {
    if (part.includes(':')) {
      out.push(...ipv6Range(part));
      continue;
    }
    const r = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})-(\d{1,3})$/.exec(part);
    if (!r) {
      out.push(ipv4('--source', part));
      continue;
    }
    const [lo, hi] = [Number(r[2]), Number(r[3])];
    if (lo > hi || hi > 255) throw new OptionError(`--source: '${part}' is not a range a.b.c.lo-hi with lo <= hi <= 255`);
    for (let i = lo; i <= hi; i++) out.push(ipv4('--source', `${r[1]}${i}`));
  }
  return out;
}

function ipv6(opt: string, v: string): string {
  const b = parseIpv6(v);
  if (!b) throw new OptionError(`${opt}: '${v}' is not an IPv6 address (no brackets, no zone id)`);
  return formatIpv6(b);
}

function ipv6Range(part: string): string[] {
  const r = /^(.*:)([0-9A-Fa-f]{1,4})-([0-9A-Fa-f]{1,4})$/.exec(part);
  if (!r) return [ipv6('--source', part)];
  const [lo, hi] = [parseInt(r[2], 16), parseInt(r[3], 16)];
  if (lo > hi || hi - lo >= 65536) throw new OptionError(`--source: '${part}' is not a range ...:lo-hi with lo <= hi`);
  const out: string[] = [];
  for (let i = lo; i <= hi; i++) out.push(ipv6('--source', `${r[1]}${i.toString(16)}`));
  return out;
}

/** "198.51.100.1:8942" or "[2001:db8::1]:8942" (no names), port 1..65535; errors name `opt`
 *  (--broker, --broker-agent, and broker-agent.ts's --listen). */
export function hostPort(opt: string, v: string): { ip: string; port: number } {
  const m = /^\[([^\]]*)\]:(\d+)$/.exec(v) ?? /^([^:[\]]+):(\d+)$/.exec(v);
  if (m) return { ip: v.startsWith('[') ? ipv6(opt, m[1]) : ipv4(opt, m[1]), port: num(`${opt} (port)`, m[2], 1, 65535, true) };
  if (/^[^[]*:.*:/.test(v)) {
    throw new OptionError(`${opt}: '${v}': an IPv6 address needs brackets around it, e.g. [2001:db8::1]:8942`);
  }
  throw new OptionError(`${opt}: '${v}' is not IP:PORT or [IPv6]:PORT`);
}

function num(opt: string, v: string | undefined, min: number, max: number, integer = false): number {
  if (v === undefined) throw new OptionError(`${opt} needs a value`);
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new OptionError(`${opt}: '${v}' is not ${integer ? 'an integer' : 'a number'} in ${min}..${max}`);
  }
  return n;
}

/** Options, or 'help'. Throws OptionError naming the option on bad input. */
export function parseLoadOptions(argv: string[]): LoadOptions | 'help' {
  const o: LoadOptions = {
    brokerIp: '', family: 4, brokerPort: 0, clients: 0, rate: 0, mode: 'ours', kernel: false, limitKbps: 0, sources: [],
    upTimeoutS: 60, durationS: 0, windows: 1, settleS: 0, churn: 0, brokerPid: null, brokerLog: null, brokerAgent: null, tunnelIdBase: 1000,
    ifnamePrefix: 'lg', uuidPrefix: 'loadgen', progressS: 1, teardown: true, verbose: false, spread: false, deadlines: false,
    readMs: 0, perSocket: false, stopSignal: null, stopWaitS: 90,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new OptionError(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '-h': case '--help': return 'help';
      case '--broker': {
        const b = hostPort('--broker', val());
        o.brokerIp = b.ip;
        o.family = ipFamily(b.ip) ?? 4;
        o.brokerPort = b.port;
        break;
      }
      case '--clients': o.clients = num(a, val(), 1, 20000, true); break;
      case '--rate': o.rate = num(a, val(), 0, 100000); break;
      case '--original': o.mode = 'original'; break;
      case '--kernel': o.kernel = true; break;
      case '--limit': o.limitKbps = num(a, val(), 1, 2 ** 32 - 1, true); break;
      case '--source': o.sources = parseSources(val()); break;
      case '--up-timeout': o.upTimeoutS = num(a, val(), 1, 3600); break;
      case '--duration': o.durationS = num(a, val(), 0, 3600); break;
      case '--settle': o.settleS = num(a, val(), 0, 3600); break;
      case '--windows': o.windows = num(a, val(), 1, 60, true); break;
      case '--churn': o.churn = num(a, val(), 0, 1000); break;
      case '--broker-pid': o.brokerPid = num(a, val(), 1, 2 ** 22, true); break;
      case '--broker-log': o.brokerLog = val(); break;
      case '--broker-agent': {
        const v = val();
        const m = /^http:\/\/([^/]+)\/?$/.exec(v);
        if (!m) throw new OptionError(`--broker-agent: '${v}' is not http://IP:PORT`);
        hostPort('--broker-agent', m[1]);
        o.brokerAgent = `http://${m[1]}`;
        break;
      }
      case '--tunnel-id-base': o.tunnelIdBase = num(a, val(), 1, 2 ** 32 - 20001, true); break;
      case '--ifname-prefix': {
        const v = val();
        if (!/^[a-z][a-z0-9]{0,7}$/.test(v)) throw new OptionError(`--ifname-prefix: '${v}' is not 1-8 lower-case letters/digits`);
        o.ifnamePrefix = v;
        break;
      }
      case '--uuid-prefix': o.uuidPrefix = val(); break;
      case '--progress': o.progressS = num(a, val(), 0, 3600); break;
      case '--no-teardown': o.teardown = false; break;
      case '--verbose': o.verbose = true; break;
      case '--spread': o.spread = true; break;
      case '--deadlines': o.deadlines = true; break;
      case '--read-ms': o.readMs = num(a, val(), 0, 1000, true); break;
      case '--per-socket': o.perSocket = true; break;
      case '--stop-broker': {
        const v = val().toUpperCase().replace(/^SIG/, '');
        if (v !== 'TERM' && v !== 'KILL') throw new OptionError(`--stop-broker: '${v}' is not TERM or KILL`);
        o.stopSignal = `SIG${v}`;
        break;
      }
      case '--stop-wait': o.stopWaitS = num(a, val(), 1, 3600); break;
      default: throw new OptionError(`unknown option '${a}' (see --help)`);
    }
  }
  if (!o.brokerIp) throw new OptionError('--broker IP:PORT is required');
  if (o.perSocket && o.readMs > 0) throw new OptionError('--read-ms reads the sockets together: it cannot go with --per-socket');
  if (!o.sources.length) o.sources = [o.family === 6 ? '::' : '0.0.0.0'];
  const other = o.sources.find((src) => ipFamily(src) !== o.family);
  if (other) throw new OptionError(`--source: '${other}' is not of the broker's address family (IPv${o.family}: ${o.brokerIp})`);
  if (!o.clients) throw new OptionError('--clients N is required');
  if ((o.brokerPid === null) !== (o.brokerLog === null)) throw new OptionError('--broker-pid and --broker-log go together');
  if (o.brokerAgent && o.brokerPid !== null) throw new OptionError('--broker-agent reads a broker elsewhere: it cannot go with --broker-pid');
  if (o.stopSignal && o.brokerPid === null && !o.brokerAgent) throw new OptionError('--stop-broker needs --broker-pid and --broker-log, or --broker-agent');
  if (o.churn > 0 && o.durationS === 0) throw new OptionError('--churn needs --duration (churn happens while holding)');
  if (o.windows > 1 && o.durationS === 0) throw new OptionError('--windows needs --duration (the windows split the hold)');
  return o;
}
