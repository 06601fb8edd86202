// The tunnel MTU formula, shared by the client (src/client/context.ts) and the broker
// (src/broker/tunnel.ts computeMtu), as both original programs compute it (spec §4.1 "Applying
// MTU", §4.2): the smaller of what this side measured and what the other side notified, never
// below 1280 (IPv6 minimum), no upper clamp.
import { MTU_MIN } from './constants.js';

/** own: this side's tunnel MTU (path MTU − 54), null when not measured; peer: the other side's
 *  PMTU_NTFY value, null (or 0) when none arrived. Returns null only when neither is known. */
export function tunnelMtu(own: number, peer: number | null): number;
export function tunnelMtu(own: number | null, peer: number | null): number | null;
export function tunnelMtu(own: number | null, peer: number | null): number | null {
  const known = [own, peer].filter((v): v is number => v !== null && v > 0);
  if (!known.length) return null;
  return Math.max(MTU_MIN, Math.min(...known));
}
