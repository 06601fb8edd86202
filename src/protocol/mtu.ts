// The tunnel MTU formula, shared by the client (src/client/context.ts) and the broker
// (src/broker/tunnel.ts computeMtu), as both original programs compute it (spec §4.1 "Applying
// MTU", §4.2): the smaller of what this side measured and what the other side notified, never
// below 1280 (IPv6 minimum), no upper clamp. A measured path MTU (the IP size of the largest
// acknowledged probe) becomes a tunnel MTU by subtracting the encapsulation overhead of the
// underlay family: 54 bytes over IPv4 (the original's only case), 74 over IPv6.
//
// Worked example, a 1400-byte path: over IPv4 the 1400 probe (UDP payload 1372) is the largest
// that gets through, tunnel MTU 1400 − 54 = 1346; over IPv6 the same probe carries a UDP payload
// of 1352, the ACK says 1352, 1352 + 48 = 1400, tunnel MTU 1400 − 74 = 1326. Both ends measure
// the same path and notify each other, so both end at 1326.
import {
  brokerProbeSizes, brokerProbeSizesIpv6, clientProbeSizes, clientProbeSizesIpv6, IPV4_UDP_OVERHEAD,
  IPV6_UDP_OVERHEAD, MTU_MIN, TUNNEL_OVERHEAD, TUNNEL_OVERHEAD_IPV6,
} from './constants.js';

/** IP version of the underlay (the UDP socket the tunnel runs on). */
export type UnderlayFamily = 4 | 6;

/** IP + UDP header bytes: probe size (IP bytes) − this = the probe's UDP payload length, and a
 *  PMTUD_ACK value (UDP payload length as received) + this = the IP size that got through. */
export function ipUdpOverhead(family: UnderlayFamily = 4): number {
  return family === 6 ? IPV6_UDP_OVERHEAD : IPV4_UDP_OVERHEAD;
}

/** IP + UDP + L2TPv3 + Ethernet header bytes: path MTU − this = tunnel MTU. */
export function tunnelOverhead(family: UnderlayFamily = 4): number {
  return family === 6 ? TUNNEL_OVERHEAD_IPV6 : TUNNEL_OVERHEAD;
}

/** The tunnel MTU that fits a path MTU (IP bytes) of this underlay family. */
export function pathToTunnelMtu(pathMtu: number, family: UnderlayFamily = 4): number {
  return pathMtu - tunnelOverhead(family);
}

/** Probe sizes (IP bytes) of the client's rounds and the broker's sequence for this underlay:
 *  over IPv6 the 1280-byte minimum link MTU is added, so a minimum-MTU path still answers. */
export function clientProbeSizesFor(family: UnderlayFamily = 4): readonly number[] {
  return family === 6 ? clientProbeSizesIpv6 : clientProbeSizes;
}
export function brokerProbeSizesFor(family: UnderlayFamily = 4): readonly number[] {
  return family === 6 ? brokerProbeSizesIpv6 : brokerProbeSizes;
}

/** own: this side's tunnel MTU (pathToTunnelMtu of the measured path MTU), null when not
 *  measured; peer: the other side's PMTU_NTFY value, null (or 0) when none arrived. Returns null
 *  only when neither is known. */
export function tunnelMtu(own: number, peer: number | null): number;
export function tunnelMtu(own: number | null, peer: number | null): number | null;
export function tunnelMtu(own: number | null, peer: number | null): number | null {
  const known = [own, peer].filter((v): v is number => v !== null && v > 0);
  if (!known.length) return null;
  return Math.max(MTU_MIN, Math.min(...known));
}
