// Generic netlink: genlmsghdr {cmd u8, version u8, reserved u16} after the nlmsghdr, and family
// id resolution through the controller (GENL_ID_CTRL).

import {
  AttrBuilder,
  type Attrs,
  type DecodeError,
  NLM_F_REQUEST,
  type NlMessage,
  concatBytes,
  decodeAttrs,
  decodeError,
  encodeMessage,
  isDecodeError,
} from './netlink.js';

export const NETLINK_GENERIC = 16;
export const GENL_HDRLEN = 4;
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;

export interface GenlRequest {
  familyId: number;
  cmd: number;
  version: number;
  flags: number;
  seq: number;
  pid?: number;
}

export function encodeGenl(r: GenlRequest, attrs: Uint8Array, littleEndian: boolean): Uint8Array {
  const genlhdr = Uint8Array.of(r.cmd & 0xff, r.version & 0xff, 0, 0);
  return encodeMessage(
    { type: r.familyId, flags: r.flags, seq: r.seq, pid: r.pid },
    concatBytes(genlhdr, attrs),
    littleEndian,
  );
}

export interface GenlMessage {
  familyId: number;
  cmd: number;
  version: number;
  attrs: Attrs;
}

export function decodeGenl(msg: NlMessage, littleEndian: boolean): GenlMessage | DecodeError {
  if (msg.payload.length < GENL_HDRLEN) {
    return decodeError(`generic netlink message too short (${msg.payload.length} bytes)`);
  }
  const attrs = decodeAttrs(msg.payload.subarray(GENL_HDRLEN), littleEndian);
  if (isDecodeError(attrs)) return attrs;
  return { familyId: msg.type, cmd: msg.payload[0]!, version: msg.payload[1]!, attrs };
}

/** CTRL_CMD_GETFAMILY {CTRL_ATTR_FAMILY_NAME}. Flags REQUEST only: the reply (NEWFAMILY) or an
 *  NLMSG_ERROR ends the exchange. genl version 0 as in the reference bytes (the controller
 *  ignores it). */
export function encodeGetFamily(name: string, seq: number, littleEndian: boolean): Uint8Array {
  const attrs = new AttrBuilder(littleEndian).string(CTRL_ATTR_FAMILY_NAME, name).finish();
  return encodeGenl(
    { familyId: GENL_ID_CTRL, cmd: CTRL_CMD_GETFAMILY, version: 0, flags: NLM_F_REQUEST, seq },
    attrs,
    littleEndian,
  );
}

/** Family id from the controller's reply. */
export function decodeFamilyId(msg: NlMessage, littleEndian: boolean): number | DecodeError {
  if (msg.type !== GENL_ID_CTRL) return decodeError(`family reply has type ${msg.type}, expected ${GENL_ID_CTRL}`);
  const g = decodeGenl(msg, littleEndian);
  if (isDecodeError(g)) return g;
  const id = g.attrs.u16(CTRL_ATTR_FAMILY_ID);
  if (id === undefined) return decodeError('family reply without a CTRL_ATTR_FAMILY_ID u16');
  return id;
}
