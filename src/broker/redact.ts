// log_ip_addresses=false: the core and the driver never put a client address into a log text,
// but some texts come from elsewhere: what a hook or tc prints, error messages of the addon or
// of Node, job queue names. RedactingLoop is the last line of defence: every log line written
// through it has its IPv4 and IPv6 addresses replaced by HIDDEN_IP, except the broker's own
// (listening) addresses, which operators need to see.
import { formatIpv6, parseIpv6 } from '../protocol/ip-address.js';
import type { DeadlineTimer, Loop, LogLevel } from '../runtime/loop.js';
import { listenAddresses } from './config.js';
import { HIDDEN_IP } from './hooks.js';

const IPV4 = /(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d]|\.\d)/g;
/** Candidates for IPv6 text: a run of hex digits, colons and dots (an IPv4 tail) with at least
 *  two colons, not inside a word. Each is checked by parsing (MAC addresses, times like 12:30:05
 *  are no addresses); a run that is no address may still end in one ("via:2001:db8::1"). */
const IPV6_CANDIDATE = /(?<![0-9A-Za-z_])[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*/g;

/** `text` with every IPv4 and IPv6 address not in `keep` replaced by HIDDEN_IP (IPv6 addresses
 *  are compared in canonical form, so keep holds canonical text). */
export function redactAddresses(text: string, keep: ReadonlySet<string>): string {
  const v6 = text.includes(':') ? text.replace(IPV6_CANDIDATE, (run) => redactRun(run, keep)) : text;
  return v6.replace(IPV4, (ip) => (keep.has(ip) ? ip : HIDDEN_IP));
}

/** Longest IPv6 text (with an IPv4 tail). */
const MAX_IPV6_TEXT = 45;

/** A candidate run: from its start and from after each ':' or '.', the longest IPv6 address
 *  there (so trailing dots, colons or a glued ":port" are dropped) is hidden unless kept; the
 *  rest of the run stays as it is. */
function redactRun(run: string, keep: ReadonlySet<string>): string {
  let out = '';
  let i = 0;
  while (i < run.length) {
    let end = Math.min(run.length, i + MAX_IPV6_TEXT);
    let bytes: Uint8Array | null = null;
    if (i === 0 || run[i - 1] === ':' || run[i - 1] === '.') {
      for (; end - i >= 2 && !(bytes = parseIpv6(run.slice(i, end))); end--);
    }
    if (bytes) {
      out += keep.has(formatIpv6(bytes)) ? run.slice(i, end) : HIDDEN_IP;
      i = end;
    } else {
      out += run[i++];
    }
  }
  return out;
}

export class RedactingLoop implements Loop {
  private readonly keep: ReadonlySet<string>;

  constructor(
    private readonly inner: Loop,
    keep: string[],
    /** The inner loop's level check, so that texts of disabled levels are not scanned. */
    private readonly enabled: (level: LogLevel) => boolean = () => true,
    /** Whether to redact now (log_ip_addresses can change with a reload). */
    private readonly active: () => boolean = () => true,
  ) {
    this.keep = new Set(keep);
  }

  log(level: LogLevel, message: string): void {
    if (!this.enabled(level)) return;
    this.inner.log(level, this.active() ? redactAddresses(message, this.keep) : message);
  }

  onReadable(fd: number, cb: (() => void) | null): void {
    this.inner.onReadable(fd, cb);
  }

  setTimer(ms: number, cb: () => void): unknown {
    return this.inner.setTimer(ms, cb);
  }

  cancelTimer(handle: unknown): void {
    this.inner.cancelTimer(handle);
  }

  now(): number {
    return this.inner.now();
  }

  turnNow(): number {
    return this.inner.turnNow ? this.inner.turnNow() : this.inner.now();
  }

  deadlineTimer(cb: () => void): DeadlineTimer | null {
    return this.inner.deadlineTimer?.(cb) ?? null;
  }

  onSignal(signal: number, cb: () => void): void {
    this.inner.onSignal(signal, cb);
  }

  print(text: string): void {
    this.inner.print(text);
  }

  exit(code: number): never {
    return this.inner.exit(code);
  }
}

/** The Loop the broker's driver and job runner log through: a RedactingLoop keeping the
 *  broker's own addresses, active while cfg.logIpAddresses is false (read at every line: a reload
 *  may switch it, and cfg is the object the reload updates). */
export function brokerLogLoop(loop: Loop, cfg: { logIpAddresses: boolean; address: string },
  enabled?: (level: LogLevel) => boolean): Loop {
  return new RedactingLoop(loop, listenAddresses(cfg), enabled, () => !cfg.logIpAddresses);
}
