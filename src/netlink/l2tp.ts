// L2TP generic-netlink commands (Linux uapi linux/l2tp.h; spec §5.1–§5.3). Attribute order
// follows the reference byte vectors of spec §5.4.

import { decodeGenl, encodeGenl } from './genl.js';
import {
  AttrBuilder,
  type DecodeError,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  type NlMessage,
  decodeError,
  isDecodeError,
} from './netlink.js';

export const L2TP_GENL_NAME = 'l2tp';
export const L2TP_GENL_VERSION = 1;

export const L2TP_CMD = {
  TUNNEL_CREATE: 1,
  TUNNEL_DELETE: 2,
  TUNNEL_MODIFY: 3,
  TUNNEL_GET: 4,
  SESSION_CREATE: 5,
  SESSION_DELETE: 6,
  SESSION_MODIFY: 7,
  SESSION_GET: 8,
} as const;

export const L2TP_ATTR = {
  PW_TYPE: 1, // u16
  ENCAP_TYPE: 2, // u16
  PROTO_VERSION: 7, // u8
  IFNAME: 8, // NUL-terminated string
  CONN_ID: 9, // u32
  PEER_CONN_ID: 10, // u32
  SESSION_ID: 11, // u32
  PEER_SESSION_ID: 12, // u32
  FD: 23, // u32
  UDP_SPORT: 26, // u16
  UDP_DPORT: 27, // u16
  MTU: 28, // u16
} as const;

export const L2TP_ENCAPTYPE_UDP = 0;
export const L2TP_PWTYPE_ETH = 5;
export const L2TP_PROTO_VERSION_3 = 3;

/** Commands wait for the kernel's ACK; dumps additionally set NLM_F_DUMP. */
const CMD_FLAGS = NLM_F_REQUEST | NLM_F_ACK;
const DUMP_FLAGS = NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP;

function l2tpMessage(
  familyId: number,
  cmd: number,
  flags: number,
  seq: number,
  attrs: AttrBuilder,
  littleEndian: boolean,
): Uint8Array {
  return encodeGenl({ familyId, cmd, version: L2TP_GENL_VERSION, flags, seq }, attrs.finish(), littleEndian);
}

export interface TunnelCreate {
  tunnelId: number;
  peerTunnelId: number;
  /** Connected UDP socket that becomes the tunnel's encapsulation socket. */
  fd: number;
}

/** The same message for an IPv4 and an IPv6 socket. The address attributes (IP_SADDR/DADDR,
 *  IP6_SADDR/DADDR, UDP_SPORT/DPORT) are read only for unmanaged tunnels, whose socket the kernel
 *  creates: l2tp_nl_cmd_tunnel_create() takes L2TP_ATTR_FD when present and skips the address
 *  attributes; l2tp_tunnel_register() then looks the socket up by fd (sockfd_lookup),
 *  l2tp_validate_socket() accepts PF_INET and PF_INET6 UDP sockets, and the addresses, ports and
 *  family come from the connected socket itself (the kernel transmits with ip_queue_xmit or
 *  inet6_csk_xmit by the socket's family). Checked against Linux 6.1 net/l2tp/l2tp_netlink.c
 *  and l2tp_core.c; docs/architecture.md "Kernel tunnels over IPv6". */
export function encodeTunnelCreate(familyId: number, seq: number, t: TunnelCreate, le: boolean): Uint8Array {
  const a = new AttrBuilder(le)
    .u32(L2TP_ATTR.CONN_ID, t.tunnelId)
    .u32(L2TP_ATTR.PEER_CONN_ID, t.peerTunnelId)
    .u8(L2TP_ATTR.PROTO_VERSION, L2TP_PROTO_VERSION_3)
    .u16(L2TP_ATTR.ENCAP_TYPE, L2TP_ENCAPTYPE_UDP)
    .u32(L2TP_ATTR.FD, t.fd);
  return l2tpMessage(familyId, L2TP_CMD.TUNNEL_CREATE, CMD_FLAGS, seq, a, le);
}

export function encodeTunnelDelete(familyId: number, seq: number, tunnelId: number, le: boolean): Uint8Array {
  const a = new AttrBuilder(le).u32(L2TP_ATTR.CONN_ID, tunnelId);
  return l2tpMessage(familyId, L2TP_CMD.TUNNEL_DELETE, CMD_FLAGS, seq, a, le);
}

export interface SessionCreate {
  tunnelId: number;
  sessionId: number;
  peerSessionId: number;
  ifname: string;
}

export function encodeSessionCreate(familyId: number, seq: number, s: SessionCreate, le: boolean): Uint8Array {
  const a = new AttrBuilder(le)
    .u32(L2TP_ATTR.CONN_ID, s.tunnelId)
    .u32(L2TP_ATTR.SESSION_ID, s.sessionId)
    .u32(L2TP_ATTR.PEER_SESSION_ID, s.peerSessionId)
    .u16(L2TP_ATTR.PW_TYPE, L2TP_PWTYPE_ETH)
    .string(L2TP_ATTR.IFNAME, s.ifname);
  return l2tpMessage(familyId, L2TP_CMD.SESSION_CREATE, CMD_FLAGS, seq, a, le);
}

export function encodeSessionDelete(
  familyId: number,
  seq: number,
  tunnelId: number,
  sessionId: number,
  le: boolean,
): Uint8Array {
  const a = new AttrBuilder(le).u32(L2TP_ATTR.CONN_ID, tunnelId).u32(L2TP_ATTR.SESSION_ID, sessionId);
  return l2tpMessage(familyId, L2TP_CMD.SESSION_DELETE, CMD_FLAGS, seq, a, le);
}

/** SESSION_MODIFY {MTU}: kernels ≥ 4.17 ignore L2TP_ATTR_MTU (the netdev MTU is what counts),
 *  it is sent for older kernels only. */
export function encodeSessionModifyMtu(
  familyId: number,
  seq: number,
  tunnelId: number,
  sessionId: number,
  mtu: number,
  le: boolean,
): Uint8Array {
  const a = new AttrBuilder(le)
    .u32(L2TP_ATTR.CONN_ID, tunnelId)
    .u32(L2TP_ATTR.SESSION_ID, sessionId)
    .u16(L2TP_ATTR.MTU, mtu);
  return l2tpMessage(familyId, L2TP_CMD.SESSION_MODIFY, CMD_FLAGS, seq, a, le);
}

export function encodeTunnelDump(familyId: number, seq: number, le: boolean): Uint8Array {
  return l2tpMessage(familyId, L2TP_CMD.TUNNEL_GET, DUMP_FLAGS, seq, new AttrBuilder(le), le);
}

export function encodeSessionDump(familyId: number, seq: number, le: boolean): Uint8Array {
  return l2tpMessage(familyId, L2TP_CMD.SESSION_GET, DUMP_FLAGS, seq, new AttrBuilder(le), le);
}

export interface TunnelInfo {
  tunnelId: number;
  peerTunnelId?: number;
  protoVersion?: number;
  encapType?: number;
  /** Local/peer UDP ports (host order), when the kernel reports them. */
  localPort?: number;
  peerPort?: number;
}

export interface SessionInfo {
  tunnelId: number;
  sessionId: number;
  peerTunnelId?: number;
  peerSessionId?: number;
  pwType?: number;
  ifname?: string;
}

/** One TUNNEL_GET dump entry; CONN_ID is required. */
export function decodeTunnelInfo(msg: NlMessage, le: boolean): TunnelInfo | DecodeError {
  const g = decodeGenl(msg, le);
  if (isDecodeError(g)) return g;
  const tunnelId = g.attrs.u32(L2TP_ATTR.CONN_ID);
  if (tunnelId === undefined) return decodeError('L2TP tunnel entry without CONN_ID');
  const t: TunnelInfo = { tunnelId };
  const peer = g.attrs.u32(L2TP_ATTR.PEER_CONN_ID);
  if (peer !== undefined) t.peerTunnelId = peer;
  const ver = g.attrs.u8(L2TP_ATTR.PROTO_VERSION);
  if (ver !== undefined) t.protoVersion = ver;
  const encap = g.attrs.u16(L2TP_ATTR.ENCAP_TYPE);
  if (encap !== undefined) t.encapType = encap;
  const sport = g.attrs.u16(L2TP_ATTR.UDP_SPORT);
  if (sport !== undefined) t.localPort = sport;
  const dport = g.attrs.u16(L2TP_ATTR.UDP_DPORT);
  if (dport !== undefined) t.peerPort = dport;
  return t;
}

/** One SESSION_GET dump entry; CONN_ID and SESSION_ID are required. */
export function decodeSessionInfo(msg: NlMessage, le: boolean): SessionInfo | DecodeError {
  const g = decodeGenl(msg, le);
  if (isDecodeError(g)) return g;
  const tunnelId = g.attrs.u32(L2TP_ATTR.CONN_ID);
  const sessionId = g.attrs.u32(L2TP_ATTR.SESSION_ID);
  if (tunnelId === undefined || sessionId === undefined) {
    return decodeError('L2TP session entry without CONN_ID/SESSION_ID');
  }
  const s: SessionInfo = { tunnelId, sessionId };
  const peerT = g.attrs.u32(L2TP_ATTR.PEER_CONN_ID);
  if (peerT !== undefined) s.peerTunnelId = peerT;
  const peerS = g.attrs.u32(L2TP_ATTR.PEER_SESSION_ID);
  if (peerS !== undefined) s.peerSessionId = peerS;
  const pw = g.attrs.u16(L2TP_ATTR.PW_TYPE);
  if (pw !== undefined) s.pwType = pw;
  const ifname = g.attrs.string(L2TP_ATTR.IFNAME);
  if (ifname !== undefined) s.ifname = ifname;
  return s;
}
