// log_ip_addresses=false: the core and the driver never put a client address into a log text,
// but some texts come from elsewhere: what a hook or tc prints, error messages of the addon or
// of Node, job queue names. RedactingLoop is the last line of defence: every log line written
// through it has its IPv4 addresses replaced by HIDDEN_IP, except the broker's own (listening)
// addresses, which operators need to see.
import type { Loop, LogLevel } from '../runtime/loop.js';
import { HIDDEN_IP } from './hooks.js';

const IPV4 = /(?<![\d.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?![\d]|\.\d)/g;

/** `text` with every IPv4 address not in `keep` replaced by HIDDEN_IP. */
export function redactAddresses(text: string, keep: ReadonlySet<string>): string {
  return text.replace(IPV4, (ip) => (keep.has(ip) ? ip : HIDDEN_IP));
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
 *  broker's own address, active while cfg.logIpAddresses is false (read at every line: a reload
 *  may switch it, and cfg is the object the reload updates). */
export function brokerLogLoop(loop: Loop, cfg: { logIpAddresses: boolean; address: string },
  enabled?: (level: LogLevel) => boolean): Loop {
  return new RedactingLoop(loop, [cfg.address], enabled, () => !cfg.logIpAddresses);
}
