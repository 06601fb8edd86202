// What the sans-IO client core asks its driver to do. `b` is the broker's index in the -b list.
// Actions marked "→" report back to the core (Client) with the named method.
import type { LogLevel } from '../runtime/loop.js';

export type Action =
  /** Close b's socket, open a new one (bind -l/-I, PMTU probe mode), resolve host:port and
   *  connect → Client.opened(b, gen, result). */
  | { a: 'open'; b: number; gen: number; host: string; port: string }
  | { a: 'close'; b: number }
  /** quiet: errors are expected (oversized PMTU probes) and not worth a log line. Errno EINVAL
   *  (interface gone) → Client.sendFailed. */
  | { a: 'send'; b: number; data: Uint8Array; quiet?: boolean }
  /** Kernel tunnel + session on b's socket; on session failure delete the tunnel again
   *  → Client.setupDone(b, error). */
  | { a: 'setup'; b: number; tunnelId: number; peerTunnelId: number; sessionId: number; peerSessionId: number; ifname: string }
  /** Set ifname down if it exists, delete the sessions, delete the tunnel; errors are expected. */
  | { a: 'teardown'; tunnelId: number; sessionIds: number[]; ifname: string }
  /** Link MTU (rtnetlink) + SESSION_MODIFY → Client.mtuDone(b, mtu, oldMtu, error). */
  | { a: 'mtu'; b: number; tunnelId: number; sessionId: number; ifname: string; mtu: number }
  /** Spawn path with args (no shell), reap it later. */
  | { a: 'hook'; path: string; args: string[] }
  | { a: 'log'; level: LogLevel; msg: string }
  | { a: 'exit'; code: number };

/** Result of an 'open': where the socket got connected to, or why it could not be. */
export type OpenResult = { ip: string; port: number } | string;
