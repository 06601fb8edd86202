// Hook jobs (spec §6.2): argument lists in the original order. Hooks of one tunnel share the
// queue "tunnel:<id>", so up / mtu-changed / pre-down / down never overtake each other, also
// when a freed id (and so the interface name) is reused by the next tunnel.
import type { Job } from './actions.js';

export type SessionHook = 'session.up' | 'session.pre-down' | 'session.down';

export interface SessionInfoForHooks {
  tunnelId: number;
  sessionId: number;
  ifname: string;
  mtu: number;
  clientIp: string;
  clientPort: number;
  port: number;
  uuid: string;
}

export const tunnelQueue = (tunnelId: number): string => `tunnel:${tunnelId}`;

/** tunnel_id session_id ifname mtu client_ip client_port local_port uuid broker_port */
export function sessionHookJob(name: SessionHook, path: string, s: SessionInfoForHooks, showIp: boolean): Job {
  const args = [
    String(s.tunnelId), String(s.sessionId), s.ifname, String(s.mtu), s.clientIp, String(s.clientPort),
    String(s.port), s.uuid, String(s.port),
  ];
  const logArgs = [...args];
  if (!showIp) logArgs[4] = HIDDEN_IP;
  return { queue: tunnelQueue(s.tunnelId), path, args, logArgs, label: `hook ${name} for tunnel ${s.tunnelId}` };
}

/** tunnel_id session_id ifname old_mtu new_mtu uuid */
export function mtuChangedHookJob(path: string, s: SessionInfoForHooks, oldMtu: number, newMtu: number): Job {
  const args = [String(s.tunnelId), String(s.sessionId), s.ifname, String(oldMtu), String(newMtu), s.uuid];
  return { queue: tunnelQueue(s.tunnelId), path, args, logArgs: args, label: `hook session.mtu-changed for tunnel ${s.tunnelId}` };
}

/** client_ip client_port uuid; queued per IP (per rate-limit key: an IPv6 client's prefix) so one
 *  noisy client cannot reorder others. The queue name may appear in logs (e.g. "queue full"):
 *  with showIp false it is an opaque hash of the key, salted per process (`salt`) so it cannot
 *  be looked up in a table of all IPv4 addresses. */
export function rateLimitHookJob(path: string, ip: string, port: number, uuid: string, showIp: boolean, salt = 0,
  key = ip): Job {
  const args = [ip, String(port), uuid];
  return {
    queue: showIp ? `ip:${key}` : `ip#${fnv1a(`${salt}/${key}`).toString(16).padStart(8, '0')}`,
    path, args, logArgs: showIp ? args : [HIDDEN_IP, args[1], args[2]],
    label: 'hook broker.connection-rate-limit',
  };
}

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

export const HIDDEN_IP = '<ip hidden>';
