// The control protocol of `tunneldigger-broker ctl` (sans-IO): one request line in, one JSON
// reply line out. The runtime (src/main/broker/control-server.ts) owns the Unix socket; this file
// parses the command, acts on BrokerCore and says what to answer and what to execute.
//   request:  "<command> [arg]\n"   (at most MAX_REQUEST bytes)
//   reply:    {"ok":true,"text":"human text","data":{...}} or {"ok":false,"error":"why"}
import { FEATURE_UNIQUE_SESSION_ID } from '../protocol/constants.js';
import type { Action } from './actions.js';
import type { BrokerCore } from './broker.js';
import type { BrokerConfig } from './config.js';

export const MAX_REQUEST = 1024;
export const DEFAULT_SOCKET_DIR = '/run/tunneldigger-broker';
export const COMMANDS = ['status', 'tunnels', 'drain', 'undrain', 'close', 'reload'] as const;

export type ControlReply = { ok: true; text: string; data?: unknown } | { ok: false; error: string };

/** [control] socket, or /run/tunneldigger-broker/<config file name without .cfg>.sock. */
export function controlSocketPath(cfg: Pick<BrokerConfig, 'controlSocket'>, configPath = 'broker.cfg'): string {
  if (cfg.controlSocket) return cfg.controlSocket;
  const base = configPath.split('/').pop()!.replace(/\.(cfg|conf|ini)$/, '') || 'broker';
  return `${DEFAULT_SOCKET_DIR}/${base}.sock`;
}

export interface TunnelRow {
  id: number;
  uuid: string;
  /** "ip:port", or "<ip hidden>:port" when log_ip_addresses=false. */
  endpoint: string;
  port: number;
  mtu: number;
  ageS: number;
  lastKeepaliveS: number;
  limitKbps: number;
  features: string[];
  interface: string;
}

/** What the runtime does for `reload` (re-reads the file): a text for the reply, or an error. */
export type Reloader = () => ControlReply;

export function handleControl(core: BrokerCore, request: string, now: number, reload: Reloader): { reply: ControlReply; actions: Action[] } {
  const words = request.trim().split(/\s+/).filter((w) => w !== '');
  const none = (reply: ControlReply): { reply: ControlReply; actions: Action[] } => ({ reply, actions: [] });
  const bad = (error: string) => none({ ok: false, error });
  if (words.length === 0) return bad(`empty command; commands: ${COMMANDS.join(', ')}`);
  const [cmd, ...args] = words;
  const argc = (n: number, usage: string): boolean => args.length === n || (bad(usage), false);
  switch (cmd) {
    case 'status': {
      if (args.length) return bad('usage: status');
      return none({ ok: true, text: statusText(core), data: statusData(core) });
    }
    case 'tunnels': {
      if (args.length > 1 || (args.length === 1 && args[0] !== '--json')) return bad('usage: tunnels [--json]');
      const rows = tunnelRows(core, now);
      return none({ ok: true, text: tunnelTable(rows), data: rows });
    }
    case 'drain':
    case 'undrain': {
      if (args.length) return bad(`usage: ${cmd}`);
      const on = cmd === 'drain';
      const was = core.draining;
      core.draining = on;
      const text = on === was ? `already ${on ? 'draining' : 'admitting'}` :
        on ? `draining: new tunnels are refused, ${core.tunnelCount} tunnels stay` : 'admitting new tunnels again';
      return {
        reply: { ok: true, text, data: { draining: on } },
        actions: on === was ? [] : [{ type: 'log', level: 'info', message: `ctl ${cmd}: ${text}` }],
      };
    }
    case 'close': {
      if (!argc(1, 'usage: close <tunnel-id|uuid>')) return bad('usage: close <tunnel-id|uuid>');
      const tunnel = core.findTunnel(args[0]);
      if (!tunnel || tunnel.state !== 'up') return bad(`no tunnel with id or uuid "${clip(args[0])}"`);
      const id = tunnel.tunnelId;
      return { reply: { ok: true, text: `closed tunnel ${id} (uuid ${tunnel.uuid})`, data: { closed: id } }, actions: core.closeTunnel(tunnel, now) };
    }
    case 'reload':
      if (args.length) return bad('usage: reload');
      return none(reload());
    default:
      return bad(`unknown command "${clip(cmd)}"; commands: ${COMMANDS.join(', ')}`);
  }
}

function clip(s: string): string {
  const t = s.replace(/[\u0000-\u001f\u007f]/g, '?');
  return t.length > 64 ? `${t.slice(0, 64)}...` : t;
}

export function statusData(core: BrokerCore): Record<string, unknown> {
  const cfg = core.cfg;
  return {
    tunnels: core.tunnelCount, maxTunnels: cfg.maxTunnels, idsFree: core.idsFree, draining: core.draining,
    ports: cfg.ports, address: cfg.address, interface: cfg.interface,
    uniqueSessionIdsRequired: core.uniqueSessionIdsRequired, counters: core.counters.snapshot(),
  };
}

function statusText(core: BrokerCore): string {
  const cfg = core.cfg;
  return [
    `tunnels: ${core.tunnelCount}/${cfg.maxTunnels} (${core.idsFree} ids free)${core.draining ? ', DRAINING (new tunnels refused)' : ''}`,
    `listening: ${cfg.address} ports ${cfg.ports.join(',')} on ${cfg.interface}`,
    `pmtu: ${cfg.pmtu ? `fixed ${cfg.pmtu}` : 'automatic'}; rate limit ${cfg.connectionRateLimit} s; ` +
      `per IP ${cfg.perIpCount ? `${cfg.perIpCount} in ${cfg.perIpTime} s` : 'off'}`,
    core.counters.line(),
  ].join('\n');
}

export function tunnelRows(core: BrokerCore, now: number): TunnelRow[] {
  return core.tunnelList().filter((t) => t.state === 'up').map((t) => ({
    id: t.tunnelId, uuid: t.uuid, endpoint: core.showEndpoint(t.endpoint), port: t.port, mtu: t.mtu,
    ageS: Math.round((now - t.createdAt) / 1000), lastKeepaliveS: Math.round((now - t.lastAlive) / 1000),
    limitKbps: t.limitKbps, features: (t.features & FEATURE_UNIQUE_SESSION_ID) !== 0 ? ['unique-session-id'] : [],
    interface: t.ifname,
  }));
}

function tunnelTable(rows: TunnelRow[]): string {
  const head = ['ID', 'UUID', 'ENDPOINT', 'PORT', 'MTU', 'AGE', 'IDLE', 'LIMIT', 'FEATURES'];
  const body = rows.map((r) => [
    String(r.id), r.uuid, r.endpoint, String(r.port), String(r.mtu), `${r.ageS}s`, `${r.lastKeepaliveS}s`,
    r.limitKbps ? `${r.limitKbps}kbit` : '-', r.features.join(',') || '-',
  ]);
  const all = [head, ...body];
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i].length)));
  return all.map((row) => row.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}
