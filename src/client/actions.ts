// What the sans-IO client core asks its driver to do. `b` is the broker's index in the -b list.
// Actions marked "→" report back to the core (Client) with the named method.
import type { Family } from '../protocol/endpoint.js';
import type { LogLevel } from '../runtime/loop.js';

export type Action =
  /** Close b's sockets and find out where b is: resolve host:port (an address literal with a
   *  numeric port without the resolver) → Client.opened(b, gen, result). */
  | { a: 'open'; b: number; gen: number; host: string; port: string }
  /** New socket of family fam for b (bind -l or the family's wildcard, -I, PMTU probe mode),
   *  connected to ip:port → Client.connected(b, gen, fam, error). */
  | { a: 'connect'; b: number; gen: number; fam: Family; ip: string; port: number }
  /** Close b's socket of family fam, or all of b's sockets without fam. */
  | { a: 'close'; b: number; fam?: Family }
  /** On b's socket of family fam. quiet: errors are expected (oversized PMTU probes) and not
   *  worth a log line. Errno EINVAL (interface gone) → Client.sendFailed. */
  | { a: 'send'; b: number; fam: Family; data: Uint8Array; quiet?: boolean }
  /** Kernel tunnel + session on b's socket of family fam; on session failure delete the tunnel
   *  again → Client.setupDone(b, error). */
  | { a: 'setup'; b: number; fam: Family; tunnelId: number; peerTunnelId: number; sessionId: number; peerSessionId: number; ifname: string }
  /** Set ifname down if it exists, delete the sessions, delete the tunnel; errors are expected. */
  | { a: 'teardown'; tunnelId: number; sessionIds: number[]; ifname: string }
  /** Link MTU (rtnetlink) + SESSION_MODIFY → Client.mtuDone(b, mtu, oldMtu, error). */
  | { a: 'mtu'; b: number; tunnelId: number; sessionId: number; ifname: string; mtu: number }
  /** Spawn path with args (no shell), reap it later. */
  | { a: 'hook'; path: string; args: string[] }
  | { a: 'log'; level: LogLevel; msg: string }
  | { a: 'exit'; code: number };

/** One address of the broker (family absent: 4). */
export interface Address {
  ip: string;
  port: number;
  family?: Family;
}

/** Result of an 'open': the broker's addresses in the resolver's order, or why there are none. */
export type OpenResult = Address[] | string;
