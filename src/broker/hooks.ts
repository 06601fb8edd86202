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

/** client_ip client_port uuid; queued per IP so one noisy client cannot reorder others. */
export function rateLimitHookJob(path: string, ip: string, port: number, uuid: string, showIp: boolean): Job {
  const args = [ip, String(port), uuid];
  return {
    queue: `ip:${ip}`, path, args, logArgs: showIp ? args : [HIDDEN_IP, args[1], args[2]],
    label: 'hook broker.connection-rate-limit',
  };
}

export const HIDDEN_IP = '<ip hidden>';
