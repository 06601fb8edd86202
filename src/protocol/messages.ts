// Control-message codec (spec §2). Parsing is liberal where the original peers are (optional
// trailing fields, ignored padding) and strict about lengths: every read is bounds-checked,
// and a malformed datagram yields a ParseError value, never an exception.
import {
  HEADER_SIZE, MAGIC1, MAGIC2, MIN_PACKET_SIZE, MessageType, PROTOCOL_VERSION, RELIABLE_BIT,
  LIMIT_TYPE_BANDWIDTH_DOWN,
} from './constants.js';
import { ipUdpOverhead, type UnderlayFamily } from './mtu.js';

export interface Frame {
  type: number;
  /** Exactly `length` bytes after the header (padding excluded). */
  payload: Uint8Array;
  /** Size of the whole datagram, padding included (PMTUD_ACK reports it). */
  datagramLength: number;
}

export type ParseError = 'short' | 'magic' | 'version' | 'length';

/** Checks the 6-byte header without allocating: null when parseFrame would accept it (the
 *  type is then datagram[4]). A client's KEEPALIVE needs nothing more. */
export function frameError(datagram: Uint8Array): ParseError | null {
  if (datagram.length < HEADER_SIZE) return 'short';
  if (datagram[0] !== MAGIC1 || ((datagram[1] << 8) | datagram[2]) !== MAGIC2) return 'magic';
  if (datagram[3] !== PROTOCOL_VERSION) return 'version';
  if (HEADER_SIZE + datagram[5] > datagram.length) return 'length';
  return null;
}

/** Parses the 6-byte header. Rejects datagrams whose declared payload exceeds the datagram. */
export function parseFrame(datagram: Uint8Array): Frame | ParseError {
  const error = frameError(datagram);
  if (error !== null) return error;
  const length = datagram[5];
  return {
    type: datagram[4],
    payload: datagram.subarray(HEADER_SIZE, HEADER_SIZE + length),
    datagramLength: datagram.length,
  };
}

export function isFrame(x: Frame | ParseError): x is Frame {
  return typeof x !== 'string';
}

export function isReliable(type: number): boolean {
  return (type & RELIABLE_BIT) !== 0;
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** Builds header + payload; unreliable messages are zero-padded to MIN_PACKET_SIZE. */
export function encodeMessage(type: number, payload: Uint8Array | number[] = []): Uint8Array {
  const length = payload.length;
  if (length > 255) throw new RangeError(`control payload too long: ${length}`);
  // NOINLINE: terser would paste isReliable here as a function expression called in place, a
  // closure that QuickJS allocates at every call (this runs for every keepalive)
  const padded = /*@__NOINLINE__*/ isReliable(type) ? HEADER_SIZE + length : Math.max(HEADER_SIZE + length, MIN_PACKET_SIZE);
  const out = new Uint8Array(padded);
  out[0] = MAGIC1;
  out[1] = MAGIC2 >> 8;
  out[2] = MAGIC2 & 0xff;
  out[3] = PROTOCOL_VERSION;
  out[4] = type;
  out[5] = length;
  out.set(payload, HEADER_SIZE);
  return out;
}

function u16(value: number): number[] {
  return [(value >>> 8) & 0xff, value & 0xff];
}

function u32(value: number): number[] {
  return [(value >>> 24) & 0xff, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff];
}

/** ASCII filler the original client sends; only its length matters (anti-amplification). */
const COOKIE_FILLER = [0x58, 0x58, 0x58, 0x58, 0x58, 0x58, 0x58, 0x58]; // "XXXXXXXX"
const USAGE_FILLER = [0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55]; // "UUUUUUUU"

export const encodeCookieRequest = (): Uint8Array => encodeMessage(MessageType.COOKIE, COOKIE_FILLER);
export const encodeCookieReply = (cookie: Uint8Array): Uint8Array => encodeMessage(MessageType.COOKIE, cookie);
export const encodeUsageRequest = (features: number): Uint8Array =>
  encodeMessage(MessageType.USAGE, [...USAGE_FILLER, ...u32(features)]);
export const encodeUsageReply = (usage: number): Uint8Array => encodeMessage(MessageType.USAGE, u16(usage));

/** UUIDs longer than 255 bytes are truncated, as the original client does. */
export function encodePrepare(cookie: Uint8Array, uuid: Uint8Array, tunnelId: number, features: number): Uint8Array {
  const id = uuid.subarray(0, Math.min(uuid.length, 255 - 8 - 1 - 8));
  return encodeMessage(MessageType.PREPARE, [...cookie, id.length, ...id, ...u32(tunnelId), ...u32(features)]);
}

/** The features word is included whenever non-zero (also on retransmits; see spec §2.4.4). */
export function encodeTunnel(tunnelId: number, features: number): Uint8Array {
  return encodeMessage(MessageType.TUNNEL, features ? [...u32(tunnelId), ...u32(features)] : u32(tunnelId));
}

/** reason undefined = empty ERROR (broker refusing a PREPARE). */
export const encodeError = (reason?: number): Uint8Array =>
  encodeMessage(MessageType.ERROR, reason === undefined ? [] : [reason & 0xff]);
export const encodeClientKeepalive = (seq: number): Uint8Array => encodeMessage(MessageType.KEEPALIVE, u32(seq));
export const encodeBrokerKeepalive = (seq: number): Uint8Array => encodeMessage(MessageType.KEEPALIVE, u16(seq & 0xffff));
export const encodePmtuAck = (udpPayloadLength: number): Uint8Array => encodeMessage(MessageType.PMTUD_ACK, u16(udpPayloadLength));
export const encodePmtuNotify = (tunnelMtu: number): Uint8Array => encodeMessage(MessageType.PMTU_NTFY, u16(tunnelMtu));
export const encodeRelAck = (seq: number): Uint8Array => encodeMessage(MessageType.REL_ACK, u16(seq));
export const encodeLimitBandwidthDown = (seq: number, kbps: number): Uint8Array =>
  encodeMessage(MessageType.LIMIT, [...u16(seq), LIMIT_TYPE_BANDWIDTH_DOWN, 4, ...u32(kbps)]);

/** PMTU probe for an IP packet of probeSize bytes: header with length 0, zero-filled so the UDP
 *  payload is probeSize − 28 bytes (IPv4 underlay) or − 48 (IPv6). */
export function encodePmtuProbe(probeSize: number, family: UnderlayFamily = 4): Uint8Array {
  const out = new Uint8Array(Math.max(probeSize - ipUdpOverhead(family), HEADER_SIZE));
  out.set([MAGIC1, MAGIC2 >> 8, MAGIC2 & 0xff, PROTOCOL_VERSION, MessageType.PMTUD, 0]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Payload decoding. Each returns null when the payload is too short for the mandatory part.

function readU16(p: Uint8Array, at: number): number {
  return (p[at] << 8) | p[at + 1];
}

function readU32(p: Uint8Array, at: number): number {
  return ((p[at] << 24) | (p[at + 1] << 16) | (p[at + 2] << 8) | p[at + 3]) >>> 0;
}

/** u16 payload (USAGE reply, PMTUD_ACK, PMTU_NTFY, REL_ACK, broker KEEPALIVE). */
export function decodeU16(payload: Uint8Array): number | null {
  return payload.length >= 2 ? readU16(payload, 0) : null;
}

export function decodeCookieReply(payload: Uint8Array): Uint8Array | null {
  return payload.length === 8 ? payload.slice(0, 8) : null;
}

/** USAGE/COOKIE request: at least 8 filler bytes (anti-amplification); USAGE may add features. */
export function decodeFillerRequest(payload: Uint8Array): { features: number } | null {
  if (payload.length < 8) return null;
  return { features: payload.length >= 12 ? readU32(payload, 8) : 0 };
}

export interface Prepare {
  cookie: Uint8Array;
  uuid: Uint8Array;
  /** Absent in clients before 2016: the original broker then assumes 1. */
  tunnelId: number;
  /** Absent in clients before Nov 2017: 0. */
  features: number;
}

export function decodePrepare(payload: Uint8Array): Prepare | null {
  if (payload.length < 9) return null;
  const uuidLength = payload[8];
  const uuidEnd = 9 + uuidLength;
  if (uuidEnd > payload.length) return null;
  const hasTunnelId = payload.length >= uuidEnd + 4;
  const hasFeatures = payload.length >= uuidEnd + 8;
  return {
    cookie: payload.slice(0, 8),
    uuid: payload.slice(9, uuidEnd),
    tunnelId: hasTunnelId ? readU32(payload, uuidEnd) : 1,
    features: hasFeatures ? readU32(payload, uuidEnd + 4) : 0,
  };
}

export function decodeTunnel(payload: Uint8Array): { tunnelId: number; features: number } | null {
  if (payload.length < 4) return null;
  return { tunnelId: readU32(payload, 0), features: payload.length >= 8 ? readU32(payload, 4) : 0 };
}

/** ERROR: empty (refusal) or one reason byte. */
export function decodeError(payload: Uint8Array): { reason: number | undefined } {
  return { reason: payload.length >= 1 ? payload[0] : undefined };
}

export interface Limit {
  seq: number;
  limitType: number;
  config: Uint8Array;
  /** Bandwidth in kbit/s when limitType is BANDWIDTH_DOWN with a 4-byte config. */
  bandwidthKbps: number | null;
}

export function decodeLimit(payload: Uint8Array): Limit | null {
  if (payload.length < 4) return null;
  const configLength = payload[3];
  if (4 + configLength > payload.length) return null;
  const config = payload.slice(4, 4 + configLength);
  const bandwidthKbps = payload[2] === LIMIT_TYPE_BANDWIDTH_DOWN && configLength === 4 ? readU32(config, 0) : null;
  return { seq: readU16(payload, 0), limitType: payload[2], config, bandwidthKbps };
}

/** The reliable sequence number: the first two payload bytes of any reliable message. */
export function decodeReliableSeq(payload: Uint8Array): number | null {
  return decodeU16(payload);
}

// UUIDs are raw bytes on the wire; the broker decodes them as UTF-8.
export { utf8Decode, utf8Encode } from '../utf8.js';
