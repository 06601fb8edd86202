// Netlink framing (nlmsghdr) and attributes (TLV), encoded and decoded in host byte order.
// The byte order is always an explicit parameter: the client runs on big-endian MIPS routers
// and the kernel expects netlink headers and attribute integers in the CPU's order.
// Plain Uint8Array/DataView only: this file also runs under QuickJS (no Buffer, no TextEncoder).
//
// Decoding never throws and never reads out of range: malformed input yields a DecodeError.

import { utf8Decode, utf8Encode } from '../utf8.js';

// Interface names are ASCII in practice, but never mangle what we are given.
export { utf8Decode, utf8Encode };

export const NLMSG_HDRLEN = 16;
export const NLA_HDRLEN = 4;

export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLMSG_OVERRUN = 4;

export const NLM_F_REQUEST = 0x0001;
export const NLM_F_MULTI = 0x0002;
export const NLM_F_ACK = 0x0004;
export const NLM_F_DUMP = 0x0300;

export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
export const NLA_TYPE_MASK = 0x3fff;

/** True when the running CPU stores integers little-endian. */
export function hostIsLittleEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
}

export function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Why a kernel reply could not be decoded. */
export interface DecodeError {
  readonly error: string;
}

export function decodeError(reason: string): DecodeError {
  return { error: reason };
}

export function isDecodeError(x: unknown): x is DecodeError {
  return typeof x === 'object' && x !== null && typeof (x as DecodeError).error === 'string';
}

function concat(parts: Uint8Array[]): Uint8Array {
  let len = 0;
  for (const p of parts) len += p.length;
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

// --- Encoding ---

/** Builds a list of attributes; each is {len u16 (unpadded, incl. header), type u16, data},
 *  zero-padded to 4 bytes. Integers are masked to their width. */
export class AttrBuilder {
  private readonly parts: Uint8Array[] = [];

  constructor(readonly littleEndian: boolean) {}

  bytes(type: number, data: Uint8Array): this {
    const len = NLA_HDRLEN + data.length;
    const a = new Uint8Array(align4(len));
    const v = new DataView(a.buffer);
    v.setUint16(0, len & 0xffff, this.littleEndian);
    v.setUint16(2, type & 0xffff, this.littleEndian);
    a.set(data, NLA_HDRLEN);
    this.parts.push(a);
    return this;
  }

  u8(type: number, value: number): this {
    return this.bytes(type, Uint8Array.of(value & 0xff));
  }

  u16(type: number, value: number): this {
    const d = new Uint8Array(2);
    new DataView(d.buffer).setUint16(0, value & 0xffff, this.littleEndian);
    return this.bytes(type, d);
  }

  u32(type: number, value: number): this {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, value >>> 0, this.littleEndian);
    return this.bytes(type, d);
  }

  /** NUL-terminated string (the length counts the NUL). */
  string(type: number, value: string): this {
    const s = utf8Encode(value);
    const d = new Uint8Array(s.length + 1);
    d.set(s);
    return this.bytes(type, d);
  }

  nested(type: number, build: (inner: AttrBuilder) => void): this {
    const inner = new AttrBuilder(this.littleEndian);
    build(inner);
    return this.bytes(type | NLA_F_NESTED, inner.finish());
  }

  finish(): Uint8Array {
    return concat(this.parts);
  }
}

export interface NlHeader {
  type: number;
  flags: number;
  seq: number;
  /** Sender port id; 0 lets the kernel accept it from any bound socket. */
  pid?: number;
}

/** nlmsghdr {len u32, type u16, flags u16, seq u32, pid u32} + payload (padded to 4). */
export function encodeMessage(h: NlHeader, payload: Uint8Array, littleEndian: boolean): Uint8Array {
  const len = NLMSG_HDRLEN + payload.length;
  const out = new Uint8Array(align4(len));
  const v = new DataView(out.buffer);
  v.setUint32(0, len, littleEndian);
  v.setUint16(4, h.type & 0xffff, littleEndian);
  v.setUint16(6, h.flags & 0xffff, littleEndian);
  v.setUint32(8, h.seq >>> 0, littleEndian);
  v.setUint32(12, (h.pid ?? 0) >>> 0, littleEndian);
  out.set(payload, NLMSG_HDRLEN);
  return out;
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  return concat(parts);
}

// --- Decoding ---

export interface NlMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Bytes after the 16-byte header, up to nlmsg_len (a view into the datagram). */
  payload: Uint8Array;
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** Splits one datagram into its messages. Rejects lengths that are too small or run past the
 *  datagram, and trailing bytes that cannot hold a header. */
export function decodeMessages(buf: Uint8Array, littleEndian: boolean): NlMessage[] | DecodeError {
  if (buf.length === 0) return decodeError('empty netlink datagram');
  const v = view(buf);
  const out: NlMessage[] = [];
  let off = 0;
  while (off < buf.length) {
    if (buf.length - off < NLMSG_HDRLEN) {
      return decodeError(`truncated netlink header at offset ${off} (${buf.length - off} bytes left)`);
    }
    const len = v.getUint32(off, littleEndian);
    if (len < NLMSG_HDRLEN || len > buf.length - off) {
      return decodeError(`bad netlink message length ${len} at offset ${off} of ${buf.length}`);
    }
    out.push({
      type: v.getUint16(off + 4, littleEndian),
      flags: v.getUint16(off + 6, littleEndian),
      seq: v.getUint32(off + 8, littleEndian),
      pid: v.getUint32(off + 12, littleEndian),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

export interface Attr {
  /** Type without the NESTED/NET_BYTEORDER flag bits. */
  type: number;
  nested: boolean;
  data: Uint8Array;
}

/** A decoded attribute list with typed, length-checked getters. A getter returns undefined
 *  when the attribute is absent or its size does not fit the type. The first occurrence wins. */
export class Attrs {
  constructor(
    readonly list: Attr[],
    readonly littleEndian: boolean,
  ) {}

  get(type: number): Uint8Array | undefined {
    for (const a of this.list) if (a.type === type) return a.data;
    return undefined;
  }

  has(type: number): boolean {
    return this.get(type) !== undefined;
  }

  u8(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length === 1 ? d[0] : undefined;
  }

  u16(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length === 2 ? view(d).getUint16(0, this.littleEndian) : undefined;
  }

  u32(type: number): number | undefined {
    const d = this.get(type);
    return d && d.length === 4 ? view(d).getUint32(0, this.littleEndian) : undefined;
  }

  /** String up to the first NUL (or the whole attribute if there is none). */
  string(type: number): string | undefined {
    const d = this.get(type);
    if (!d) return undefined;
    const nul = d.indexOf(0);
    return utf8Decode(nul >= 0 ? d.subarray(0, nul) : d);
  }

  nested(type: number): Attrs | DecodeError | undefined {
    const d = this.get(type);
    return d ? decodeAttrs(d, this.littleEndian) : undefined;
  }
}

/** Parses a run of attributes. Up to 3 trailing bytes are tolerated (like the kernel's nla_ok). */
export function decodeAttrs(buf: Uint8Array, littleEndian: boolean): Attrs | DecodeError {
  const v = view(buf);
  const list: Attr[] = [];
  let off = 0;
  while (buf.length - off >= NLA_HDRLEN) {
    const len = v.getUint16(off, littleEndian);
    if (len < NLA_HDRLEN || len > buf.length - off) {
      return decodeError(`bad attribute length ${len} at offset ${off} of ${buf.length}`);
    }
    const rawType = v.getUint16(off + 2, littleEndian);
    list.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      data: buf.subarray(off + NLA_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return new Attrs(list, littleEndian);
}

/** NLMSG_ERROR payload: int error (0 = ACK, else -errno) followed by the offending header.
 *  Returns 0 or a negative errno. */
export function decodeErrorMessage(msg: NlMessage, littleEndian: boolean): number | DecodeError {
  if (msg.type !== NLMSG_ERROR) return decodeError(`not an NLMSG_ERROR (type ${msg.type})`);
  if (msg.payload.length < 4) return decodeError(`NLMSG_ERROR payload too short (${msg.payload.length} bytes)`);
  const err = view(msg.payload).getInt32(0, littleEndian);
  if (err > 0) return decodeError(`NLMSG_ERROR with positive error ${err}`);
  return err;
}

/** NLMSG_DONE may carry an int: a dump that failed midway reports its -errno there. */
export function decodeDoneMessage(msg: NlMessage, littleEndian: boolean): number {
  if (msg.payload.length < 4) return 0;
  const err = view(msg.payload).getInt32(0, littleEndian);
  return err < 0 ? err : 0;
}
