// rtnetlink (NETLINK_ROUTE) link messages addressed by interface name: ifinfomsg with index 0
// plus IFLA_IFNAME. rtnl_setlink/rtnl_getlink look the device up by IFLA_IFNAME when
// ifi_index is 0 (long-standing kernel behaviour, also in 4.x), so no index lookup is needed.

import {
  AttrBuilder,
  type DecodeError,
  NLM_F_ACK,
  NLM_F_REQUEST,
  type NlMessage,
  concatBytes,
  decodeAttrs,
  decodeError,
  encodeMessage,
  isDecodeError,
} from './netlink.js';

export const NETLINK_ROUTE = 0;
export const RTM_NEWLINK = 16;
export const RTM_GETLINK = 18;
export const RTM_SETLINK = 19;
export const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;
export const IFF_LOWER_UP = 0x10000;
export const IFINFOMSG_LEN = 16;
export const AF_UNSPEC = 0;

export interface IfInfo {
  family?: number;
  type?: number;
  index: number;
  flags: number;
  change: number;
}

/** struct ifinfomsg {family u8, pad u8, type u16, index s32, flags u32, change u32}. */
export function encodeIfinfomsg(i: IfInfo, le: boolean): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_LEN);
  const v = new DataView(b.buffer);
  v.setUint8(0, i.family ?? AF_UNSPEC);
  v.setUint16(2, i.type ?? 0, le);
  v.setInt32(4, i.index | 0, le);
  v.setUint32(8, i.flags >>> 0, le);
  v.setUint32(12, i.change >>> 0, le);
  return b;
}

function linkRequest(type: number, flags: number, seq: number, info: IfInfo, attrs: AttrBuilder, le: boolean) {
  return encodeMessage({ type, flags, seq }, concatBytes(encodeIfinfomsg(info, le), attrs.finish()), le);
}

/** RTM_SETLINK {IFLA_IFNAME, IFLA_MTU u32}, acknowledged. */
export function encodeSetLinkMtu(ifname: string, mtu: number, seq: number, le: boolean): Uint8Array {
  const a = new AttrBuilder(le).string(IFLA_IFNAME, ifname).u32(IFLA_MTU, mtu);
  return linkRequest(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, { index: 0, flags: 0, change: 0 }, a, le);
}

/** RTM_SETLINK with ifi_change = IFF_UP so only the UP bit is touched. */
export function encodeSetLinkUp(ifname: string, up: boolean, seq: number, le: boolean): Uint8Array {
  const a = new AttrBuilder(le).string(IFLA_IFNAME, ifname);
  const info = { index: 0, flags: up ? IFF_UP : 0, change: IFF_UP };
  return linkRequest(RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, seq, info, a, le);
}

/** RTM_GETLINK by name; the kernel answers with one RTM_NEWLINK or an NLMSG_ERROR. */
export function encodeGetLink(ifname: string, seq: number, le: boolean): Uint8Array {
  const a = new AttrBuilder(le).string(IFLA_IFNAME, ifname);
  return linkRequest(RTM_GETLINK, NLM_F_REQUEST, seq, { index: 0, flags: 0, change: 0 }, a, le);
}

export interface LinkInfo {
  ifindex: number;
  ifname: string;
  flags: number;
  up: boolean;
  mtu: number;
}

export function decodeLink(msg: NlMessage, le: boolean): LinkInfo | DecodeError {
  if (msg.type !== RTM_NEWLINK) return decodeError(`link reply has type ${msg.type}, expected RTM_NEWLINK`);
  if (msg.payload.length < IFINFOMSG_LEN) {
    return decodeError(`link reply too short (${msg.payload.length} bytes)`);
  }
  const v = new DataView(msg.payload.buffer, msg.payload.byteOffset, IFINFOMSG_LEN);
  const attrs = decodeAttrs(msg.payload.subarray(IFINFOMSG_LEN), le);
  if (isDecodeError(attrs)) return attrs;
  const mtu = attrs.u32(IFLA_MTU);
  if (mtu === undefined) return decodeError('link reply without IFLA_MTU');
  const flags = v.getUint32(8, le);
  return {
    ifindex: v.getInt32(4, le),
    ifname: attrs.string(IFLA_IFNAME) ?? '',
    flags,
    up: (flags & IFF_UP) !== 0,
    mtu,
  };
}
