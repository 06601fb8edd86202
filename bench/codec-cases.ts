// The codec benchmark cases, runtime-neutral: control messages (src/protocol/messages.ts), broker
// cookies (src/protocol/cookie.ts, only when the runtime provides HMAC-SHA1) and the netlink
// requests a tunnel setup sends (src/netlink/l2tp.ts). Node runs them from codec.ts, QuickJS from
// the rollup bundle of codec-qjs.ts. Every case is self-checked once before it is timed.
import { MessageType } from '../src/protocol/constants.js';
import { CookieJar, type Mac } from '../src/protocol/cookie.js';
import * as m from '../src/protocol/messages.js';
import { encodeSessionCreate, encodeTunnelCreate } from '../src/netlink/l2tp.js';
import { NLMSG_ERROR, decodeErrorMessage, decodeMessages, encodeMessage, isDecodeError } from '../src/netlink/netlink.js';
import { type Case, check } from './harness.js';

const CLIENT_IP = '198.51.100.7';
const CLIENT_PORT = 40000;
const UUID = m.utf8Encode('d4:3d:7e:aa:bb:cc');
const FAMILY_ID = 0x1d;
const LE = true; // x86 host order; the MIPS router encodes big-endian with the same code

function frame(datagram: Uint8Array): m.Frame {
  const f = m.parseFrame(datagram);
  if (!m.isFrame(f)) throw new Error(`benchmark: sample datagram does not parse (${f})`);
  return f;
}

/** Cases that exist on both runtimes (no crypto). */
export function codecCases(): Case[] {
  const cookie = Uint8Array.of(0, 3, 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02);
  const prepareDgram = m.encodePrepare(cookie, UUID, 1, 1);
  const tunnelDgram = m.encodeTunnel(100, 1);
  const usageDgram = m.encodeUsageRequest(1);
  const keepaliveDgram = m.encodeClientKeepalive(7);
  const cookieReplyDgram = m.encodeCookieReply(cookie);
  const ackDgram = encodeMessage({ type: NLMSG_ERROR, flags: 0, seq: 5 }, new Uint8Array(4 + 16), LE);

  // self-checks: what is timed must produce the right answer
  const p = m.decodePrepare(frame(prepareDgram).payload);
  check(p !== null && p.tunnelId === 1 && p.features === 1 && p.uuid.length === UUID.length, 'PREPARE round trip');
  const t = m.decodeTunnel(frame(tunnelDgram).payload);
  check(t !== null && t.tunnelId === 100 && t.features === 1, 'TUNNEL round trip');
  check(m.decodeFillerRequest(frame(usageDgram).payload)?.features === 1, 'USAGE request round trip');
  check(frame(keepaliveDgram).type === MessageType.KEEPALIVE, 'KEEPALIVE type');
  check(m.decodeCookieReply(frame(cookieReplyDgram).payload)?.[7] === 0x02, 'COOKIE reply round trip');
  check(m.encodePmtuProbe(1500).length === 1472, 'PMTU probe size');
  const acks = decodeMessages(ackDgram, LE);
  check(!isDecodeError(acks) && acks.length === 1 && decodeErrorMessage(acks[0], LE) === 0, 'netlink ACK');

  let seq = 0;
  return [
    { name: 'parse+decode PREPARE', run: () => m.decodePrepare(frame(prepareDgram).payload)!.tunnelId },
    { name: 'parse+decode TUNNEL', run: () => m.decodeTunnel(frame(tunnelDgram).payload)!.tunnelId },
    { name: 'parse+decode USAGE request', run: () => m.decodeFillerRequest(frame(usageDgram).payload)!.features },
    { name: 'parse KEEPALIVE', run: () => frame(keepaliveDgram).type },
    { name: 'parse+decode COOKIE reply', run: () => m.decodeCookieReply(frame(cookieReplyDgram).payload)![7] },
    { name: 'encode USAGE request', run: () => m.encodeUsageRequest(++seq & 1).length },
    { name: 'encode COOKIE request', run: () => m.encodeCookieRequest().length },
    { name: 'encode PREPARE', run: () => m.encodePrepare(cookie, UUID, ++seq, 1).length },
    { name: 'encode TUNNEL', run: () => m.encodeTunnel(++seq, 1).length },
    { name: 'encode COOKIE reply', run: () => m.encodeCookieReply(cookie).length },
    { name: 'encode client KEEPALIVE', run: () => m.encodeClientKeepalive(++seq).length },
    { name: 'encode PMTU probe 1500', run: () => m.encodePmtuProbe(1500).length },
    {
      name: 'netlink TUNNEL_CREATE encode',
      run: () => encodeTunnelCreate(FAMILY_ID, ++seq, { tunnelId: 100, peerTunnelId: 1, fd: 7 }, LE).length,
    },
    {
      name: 'netlink SESSION_CREATE encode',
      run: () => encodeSessionCreate(FAMILY_ID, ++seq, { tunnelId: 100, sessionId: 1, peerSessionId: 1, ifname: 'l2tp100-100' }, LE).length,
    },
    {
      name: 'netlink ACK decode',
      run: () => {
        const msgs = decodeMessages(ackDgram, LE);
        if (isDecodeError(msgs)) return -1;
        const err = decodeErrorMessage(msgs[0], LE);
        return typeof err === 'number' ? err : -1;
      },
    },
  ];
}

/** Broker cookie cases; `mac` is node:crypto HMAC-SHA1 on the broker. */
export function cookieCases(mac: Mac): Case[] {
  const jar = new CookieJar(Uint8Array.from({ length: 32 }, (_, i) => i), mac, 0);
  const now = 3 * 64_000 + 5;
  const good = jar.issue(CLIENT_IP, CLIENT_PORT, now);
  check(jar.verify(good, CLIENT_IP, CLIENT_PORT, now), 'cookie verifies');
  check(!jar.verify(good, CLIENT_IP, CLIENT_PORT + 1, now), 'cookie bound to the port');
  let port = 1024;
  return [
    { name: 'cookie issue (HMAC-SHA1)', run: () => jar.issue(CLIENT_IP, (port = (port + 1) & 0xffff), now)[2] },
    { name: 'cookie verify (HMAC-SHA1)', run: () => (jar.verify(good, CLIENT_IP, CLIENT_PORT, now) ? 1 : 0) },
  ];
}

/** Operations one broker handshake (USAGE, COOKIE, PREPARE -> TUNNEL + netlink setup) costs,
 *  by case name: used to turn per-op costs into a per-handshake codec cost. */
export const HANDSHAKE_MIX: Record<string, number> = {
  'parse+decode USAGE request': 2, // USAGE and COOKIE requests carry the same filler payload
  'parse+decode PREPARE': 1,
  'encode COOKIE reply': 2, // cookie reply and the (same-sized) usage reply
  'encode TUNNEL': 1,
  'cookie issue (HMAC-SHA1)': 1,
  'cookie verify (HMAC-SHA1)': 1,
  'netlink TUNNEL_CREATE encode': 1,
  'netlink SESSION_CREATE encode': 1,
  'netlink ACK decode': 2,
};

/** Codec operations of one client handshake (USAGE, COOKIE, PREPARE out; USAGE, COOKIE, TUNNEL
 *  replies in; TUNNEL_CREATE + SESSION_CREATE with their ACKs). The USAGE reply (u16 payload)
 *  is counted as a KEEPALIVE parse: same header path, same payload size. */
export const CLIENT_HANDSHAKE_MIX: Record<string, number> = {
  'encode USAGE request': 1,
  'encode COOKIE request': 1,
  'encode PREPARE': 1,
  'parse KEEPALIVE': 1,
  'parse+decode COOKIE reply': 1,
  'parse+decode TUNNEL': 1,
  'netlink TUNNEL_CREATE encode': 1,
  'netlink SESSION_CREATE encode': 1,
  'netlink ACK decode': 2,
};
