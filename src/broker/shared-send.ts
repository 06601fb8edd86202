// Keepalives through the listener (docs/performance.md "Keepalives in one sendmmsg"): a tunnel's
// socket is bound to the address and port of the listener its PREPARE came in on and connected
// to the client, so a datagram sent on the listener to the client's endpoint has the same
// source, destination and payload on the wire. Sent that way, the keepalives of one tick (the
// timer's, or a deferred read's with the deadlines due before the next read) for many tunnels
// go to the kernel in one sendmmsg instead of one send per tunnel.
import type { Endpoint } from '../native.js';
import { packDestination } from '../runtime/datagram-batch.js';
import { parseIpv4, parseIpv6 } from '../protocol/ip-address.js';

/** Where a tunnel's shared sends go: the listener's fd, the client as a packed destination
 *  (sendBatchTo) and as an Endpoint (a datagram sent alone). */
export interface SharedRoute {
  fd: number;
  dest: Uint8Array;
  to: Endpoint;
}

/** The route through the listener bound to `listenAddress`, or undefined when that would not be
 *  the same datagram: a wildcard listener (0.0.0.0, ::) leaves the source address to each send's
 *  route lookup, the tunnel socket fixed it at connect; or an address we cannot pack. */
export function sharedRoute(listenAddress: string, listenerFd: number | undefined, client: Endpoint): SharedRoute | undefined {
  if (listenerFd === undefined) return undefined;
  const local = parseIpv4(listenAddress) ?? parseIpv6(listenAddress);
  if (!local || local.every((b) => b === 0)) return undefined;
  const peer = local.length === 4 ? parseIpv4(client.ip) : parseIpv6(client.ip);
  const dest = packDestination(peer, client.port);
  return dest ? { fd: listenerFd, dest, to: client } : undefined;
}
