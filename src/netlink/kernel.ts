// Synchronous netlink executor over the Native interface: encodes a request, sends it, reads
// until the reply carrying the same sequence number, and returns 0 / typed results or -errno.
// Nothing here throws; callers log the errno (strerror) and clean up. The C side only moves
// bytes (netlinkSocket/netlinkSend/netlinkRecv with a 2 s receive timeout). request() encodes an
// ACK-only operation without sending it: the broker's netlink worker (worker.ts) sends those from
// a thread of the C core, so the kernel's slow calls do not stop the event loop.

import type { Native } from '../native.js';
import { NETLINK_GENERIC, decodeFamilyId, encodeGetFamily } from './genl.js';
import {
  L2TP_GENL_NAME,
  type SessionCreate,
  type SessionInfo,
  type TunnelCreate,
  type TunnelInfo,
  decodeSessionInfo,
  decodeTunnelInfo,
  encodeSessionCreate,
  encodeSessionDelete,
  encodeSessionDump,
  encodeSessionModifyMtu,
  encodeTunnelCreate,
  encodeTunnelDelete,
  encodeTunnelDump,
} from './l2tp.js';
import {
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  NLMSG_OVERRUN,
  type DecodeError,
  type NlMessage,
  decodeDoneMessage,
  decodeErrorMessage,
  decodeMessages,
  hostIsLittleEndian,
  isDecodeError,
  utf8Encode,
} from './netlink.js';
import { type LinkInfo, NETLINK_ROUTE, decodeLink, encodeGetLink, encodeSetLinkMtu, encodeSetLinkUp } from './rtnl.js';

export type { LinkInfo, SessionCreate, SessionInfo, TunnelCreate, TunnelInfo };

export interface KernelOptions {
  /** Byte order of the kernel (= this CPU); detected when omitted. */
  littleEndian?: boolean;
  /** Receive buffer per datagram; dumps are sized by the kernel to fit (≤ 32 KiB). */
  recvBufferSize?: number;
}

type Mode = 'ack' | 'reply' | 'dump';

/** The operations answered by their ACK alone (NetlinkKernel.request). */
export type AckOp =
  | { op: 'createTunnel'; tunnel: TunnelCreate }
  | { op: 'deleteTunnel'; tunnelId: number }
  | { op: 'createSession'; session: SessionCreate }
  | { op: 'deleteSession'; tunnelId: number; sessionId: number }
  | { op: 'setSessionMtu'; tunnelId: number; sessionId: number; mtu: number }
  | { op: 'setLinkMtu'; ifname: string; mtu: number }
  | { op: 'setLinkUp'; ifname: string; up: boolean };

/** An encoded request: send `data` on `fd`; its ACK carries `seq`. */
export interface AckRequest {
  fd: number;
  seq: number;
  data: Uint8Array;
}

/** Datagrams in a row without anything for our sequence number before giving up. */
const MAX_UNRELATED_DATAGRAMS = 64;
const IFNAMSIZ = 16;
/** Requests per datagram in deleteTunnels: their ACKs (one skb each, ~1 KiB of receive buffer
 *  accounting) fit the socket's default receive buffer (~208 KiB) with room to spare. */
export const PIPELINE_DEPTH = 64;

export class NetlinkKernel {
  readonly littleEndian: boolean;
  /** What was wrong with the last malformed or unexpected kernel reply (for logs). */
  lastProblem = '';
  private readonly buf: Uint8Array;
  private genlFd = -1;
  private routeFd = -1;
  private seq = 0;
  private l2tpFamily = -1;

  constructor(
    private readonly native: Native,
    opts: KernelOptions = {},
  ) {
    this.littleEndian = opts.littleEndian ?? hostIsLittleEndian();
    this.buf = new Uint8Array(opts.recvBufferSize ?? 32768);
  }

  /** L2TP generic-netlink family id (cached), or -errno (-ENOENT: l2tp modules not loaded). */
  resolveL2tpFamily(): number {
    if (this.l2tpFamily >= 0) return this.l2tpFamily;
    const fd = this.socket(NETLINK_GENERIC);
    if (fd < 0) return fd;
    const seq = this.nextSeq();
    const r = this.transact(fd, encodeGetFamily(L2TP_GENL_NAME, seq, this.littleEndian), seq, 'reply');
    if (typeof r === 'number') return r;
    const id = decodeFamilyId(r[0]!, this.littleEndian);
    if (isDecodeError(id)) return this.malformed(id.error);
    this.l2tpFamily = id;
    return id;
  }

  createTunnel(t: TunnelCreate): number {
    return this.ack(this.request({ op: 'createTunnel', tunnel: t }));
  }

  deleteTunnel(tunnelId: number): number {
    return this.ack(this.request({ op: 'deleteTunnel', tunnelId }));
  }

  createSession(s: SessionCreate): number {
    return this.ack(this.request({ op: 'createSession', session: s }));
  }

  deleteSession(tunnelId: number, sessionId: number): number {
    return this.ack(this.request({ op: 'deleteSession', tunnelId, sessionId }));
  }

  /** SESSION_MODIFY {MTU}. Kernels ≥ 4.17 ignore it; callers ignore the result. */
  setSessionMtu(tunnelId: number, sessionId: number, mtu: number): number {
    return this.ack(this.request({ op: 'setSessionMtu', tunnelId, sessionId, mtu }));
  }

  /** An operation answered by its ACK alone, encoded for this executor's sockets (the L2TP
   *  family resolved, the socket opened, a sequence number taken): what to send where, or
   *  -errno (an invalid argument, lastProblem says which). The synchronous methods send it and
   *  wait; a NetlinkWorker (worker.ts) has its own executor and sends it from its thread. */
  request(op: AckOp): AckRequest | number {
    switch (op.op) {
      case 'createTunnel': {
        const t = op.tunnel;
        if (!isU32(t.tunnelId) || !isU32(t.peerTunnelId) || !isU32(t.fd)) return this.invalid('tunnel/fd id');
        return this.l2tpRequest((fam, seq, le) => encodeTunnelCreate(fam, seq, t, le));
      }
      case 'deleteTunnel':
        if (!isU32(op.tunnelId)) return this.invalid('tunnel id');
        return this.l2tpRequest((fam, seq, le) => encodeTunnelDelete(fam, seq, op.tunnelId, le));
      case 'createSession': {
        const s = op.session;
        if (!isU32(s.tunnelId) || !isU32(s.sessionId) || !isU32(s.peerSessionId)) return this.invalid('session ids');
        if (!validIfname(s.ifname)) return this.invalid(`interface name "${s.ifname}"`);
        return this.l2tpRequest((fam, seq, le) => encodeSessionCreate(fam, seq, s, le));
      }
      case 'deleteSession':
        if (!isU32(op.tunnelId) || !isU32(op.sessionId)) return this.invalid('session ids');
        return this.l2tpRequest((fam, seq, le) => encodeSessionDelete(fam, seq, op.tunnelId, op.sessionId, le));
      case 'setSessionMtu':
        if (!isU32(op.tunnelId) || !isU32(op.sessionId) || !isInt(op.mtu, 0, 0xffff)) return this.invalid('session ids/mtu');
        return this.l2tpRequest((fam, seq, le) => encodeSessionModifyMtu(fam, seq, op.tunnelId, op.sessionId, op.mtu, le));
      case 'setLinkMtu':
        if (!validIfname(op.ifname)) return this.invalid(`interface name "${op.ifname}"`);
        if (!isU32(op.mtu)) return this.invalid('mtu');
        return this.routeRequest((seq, le) => encodeSetLinkMtu(op.ifname, op.mtu, seq, le));
      case 'setLinkUp':
        if (!validIfname(op.ifname)) return this.invalid(`interface name "${op.ifname}"`);
        return this.routeRequest((seq, le) => encodeSetLinkUp(op.ifname, op.up, seq, le));
    }
  }

  /** The result of an ACK datagram read for request `seq`: 0 or -errno. */
  ackResult(reply: Uint8Array, seq: number): number {
    const msgs = decodeMessages(reply, this.littleEndian);
    if (isDecodeError(msgs)) return this.malformed(msgs.error);
    for (const m of msgs) {
      if (m.seq !== seq || m.type !== NLMSG_ERROR) continue;
      const e = decodeErrorMessage(m, this.littleEndian);
      return isDecodeError(e) ? this.malformed(e.error) : e;
    }
    this.lastProblem = `the reply datagram holds no ACK for request ${seq}`;
    return -this.native.errno.EAGAIN;
  }

  listTunnels(): TunnelInfo[] | number {
    return this.l2tpDump<TunnelInfo>(encodeTunnelDump, decodeTunnelInfo);
  }

  listSessions(): SessionInfo[] | number {
    return this.l2tpDump<SessionInfo>(encodeSessionDump, decodeSessionInfo);
  }

  setLinkMtu(ifname: string, mtu: number): number {
    return this.ack(this.request({ op: 'setLinkMtu', ifname, mtu }));
  }

  setLinkUp(ifname: string, up: boolean): number {
    return this.ack(this.request({ op: 'setLinkUp', ifname, up }));
  }

  /** Link state by name, or -errno (-ENODEV when there is no such interface). */
  getLink(ifname: string): LinkInfo | number {
    if (!validIfname(ifname)) return this.invalid(`interface name "${ifname}"`);
    const fd = this.socket(NETLINK_ROUTE);
    if (fd < 0) return fd;
    const seq = this.nextSeq();
    const r = this.transact(fd, encodeGetLink(ifname, seq, this.littleEndian), seq, 'reply');
    if (typeof r === 'number') return r;
    const link = decodeLink(r[0]!, this.littleEndian);
    return isDecodeError(link) ? this.malformed(link.error) : link;
  }

  /** TUNNEL_DELETE for many tunnels, pipelined: up to PIPELINE_DEPTH requests per sendmsg
   *  (the kernel runs them in turn), then their ACKs. Each kernel tunnel closes its sessions in
   *  the kernel's l2tp workqueue, so this returns long before the interfaces are gone (poll
   *  listTunnels for that). One result per id, in order: 0 or -errno. */
  deleteTunnels(tunnelIds: number[]): number[] {
    const results = tunnelIds.map((id) => (isU32(id) ? 1 : this.invalid('tunnel id')));
    const family = this.resolveL2tpFamily();
    if (family < 0) return results.map((r) => (r === 1 ? family : r));
    for (let at = 0; at < tunnelIds.length; at += PIPELINE_DEPTH) {
      const seqs = new Map<number, number>();
      const parts: Uint8Array[] = [];
      for (let i = at; i < Math.min(at + PIPELINE_DEPTH, tunnelIds.length); i++) {
        if (results[i] !== 1) continue;
        const seq = this.nextSeq();
        seqs.set(seq, i);
        parts.push(encodeTunnelDelete(family, seq, tunnelIds[i], this.littleEndian));
      }
      if (parts.length === 0) continue;
      const failed = this.pipeline(this.genlFd, parts, seqs, results);
      if (failed < 0) for (const i of seqs.values()) if (results[i] === 1) results[i] = failed;
    }
    return results;
  }

  close(): void {
    if (this.genlFd >= 0) this.native.close(this.genlFd);
    if (this.routeFd >= 0) this.native.close(this.routeFd);
    this.genlFd = this.routeFd = -1;
  }

  // --- internals ---

  private l2tpRequest(build: (family: number, seq: number, le: boolean) => Uint8Array): AckRequest | number {
    const family = this.resolveL2tpFamily();
    if (family < 0) return family;
    const seq = this.nextSeq();
    return { fd: this.genlFd, seq, data: build(family, seq, this.littleEndian) };
  }

  private ack(r: AckRequest | number): number {
    if (typeof r === 'number') return r;
    const m = this.transact(r.fd, r.data, r.seq, 'ack');
    return typeof m === 'number' ? m : 0;
  }

  private l2tpDump<T>(
    build: (family: number, seq: number, le: boolean) => Uint8Array,
    decode: (m: NlMessage, le: boolean) => T | DecodeError,
  ): T[] | number {
    const family = this.resolveL2tpFamily();
    if (family < 0) return family;
    const seq = this.nextSeq();
    const r = this.transact(this.genlFd, build(family, seq, this.littleEndian), seq, 'dump');
    if (typeof r === 'number') return r;
    const out: T[] = [];
    for (const m of r) {
      const item = decode(m, this.littleEndian);
      if (isDecodeError(item)) return this.malformed(item.error);
      out.push(item);
    }
    return out;
  }

  /** Sends the requests in one datagram, then reads until every seq in `seqs` (seq → index in
   *  `results`) has its ACK, storing 0 / -errno there. Returns 0, or -errno when the send or a
   *  receive failed (the requests without an answer keep the value 1). */
  private pipeline(fd: number, parts: Uint8Array[], seqs: Map<number, number>, results: number[]): number {
    const { errno } = this.native;
    const request = new Uint8Array(parts.reduce((n, p) => n + align4(p.length), 0));
    let o = 0;
    for (const p of parts) {
      request.set(p, o);
      o += align4(p.length);
    }
    const sent = this.native.netlinkSend(fd, request);
    if (sent < 0) return sent;
    let waiting = seqs.size;
    let unrelated = 0;
    while (waiting > 0) {
      const msgs = this.receive(fd);
      if (typeof msgs === 'number') return msgs;
      let related = false;
      for (const m of msgs) {
        const i = seqs.get(m.seq);
        if (i === undefined || results[i] !== 1) continue;
        if (m.type === NLMSG_OVERRUN) return -errno.ENOBUFS;
        if (m.type !== NLMSG_ERROR) continue;
        related = true;
        const e = decodeErrorMessage(m, this.littleEndian);
        results[i] = isDecodeError(e) ? this.malformed(e.error) : e;
        waiting--;
      }
      if (related) unrelated = 0;
      else if (++unrelated > MAX_UNRELATED_DATAGRAMS) {
        this.lastProblem = `no reply for ${waiting} of ${seqs.size} pipelined requests among ${unrelated} datagrams`;
        return -errno.EAGAIN;
      }
    }
    return 0;
  }

  private routeRequest(build: (seq: number, le: boolean) => Uint8Array): AckRequest | number {
    const fd = this.socket(NETLINK_ROUTE);
    if (fd < 0) return fd;
    const seq = this.nextSeq();
    return { fd, seq, data: build(seq, this.littleEndian) };
  }

  private socket(protocol: number): number {
    const current = protocol === NETLINK_ROUTE ? this.routeFd : this.genlFd;
    if (current >= 0) return current;
    const fd = this.native.netlinkSocket(protocol);
    if (fd < 0) return fd;
    if (protocol === NETLINK_ROUTE) this.routeFd = fd;
    else this.genlFd = fd;
    return fd;
  }

  private nextSeq(): number {
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    return this.seq;
  }

  private invalid(what: string): number {
    this.lastProblem = `invalid ${what}`;
    return -this.native.errno.EINVAL;
  }

  private malformed(reason: string): number {
    this.lastProblem = `malformed kernel reply: ${reason}`;
    return -this.native.errno.EINVAL;
  }

  /** One datagram from the socket, decoded (EINTR retried; the messages point into the
   *  receive buffer), or -errno. */
  private receive(fd: number): NlMessage[] | number {
    for (;;) {
      const n = this.native.netlinkRecv(fd, this.buf);
      if (n === -this.native.errno.EINTR) continue;
      if (n < 0) return n;
      if (n > this.buf.length) return this.malformed(`datagram of ${n} bytes exceeds the ${this.buf.length}-byte buffer`);
      const msgs = decodeMessages(this.buf.subarray(0, n), this.littleEndian);
      return isDecodeError(msgs) ? this.malformed(msgs.error) : msgs;
    }
  }

  /** Sends one request and reads its answer. Replies with another sequence number (answers
   *  to requests that timed out earlier, late ACKs after a dump) are skipped.
   *  'ack': [] after the ACK. 'reply': the first non-control message. 'dump': all messages up
   *  to NLMSG_DONE (copied, the receive buffer is reused). */
  private transact(fd: number, request: Uint8Array, seq: number, mode: Mode): NlMessage[] | number {
    const { errno } = this.native;
    const sent = this.native.netlinkSend(fd, request);
    if (sent < 0) return sent;
    const collected: NlMessage[] = [];
    let unrelated = 0;
    for (;;) {
      const msgs = this.receive(fd);
      if (typeof msgs === 'number') return msgs;
      let related = false;
      for (const m of msgs) {
        if (m.seq !== seq) continue;
        related = true;
        if (m.type === NLMSG_ERROR) {
          const e = decodeErrorMessage(m, this.littleEndian);
          if (isDecodeError(e)) return this.malformed(e.error);
          if (e < 0) return e;
          if (mode === 'reply') return this.malformed('ACK without the expected reply');
          return mode === 'dump' ? collected : [];
        }
        if (m.type === NLMSG_DONE) {
          const e = decodeDoneMessage(m, this.littleEndian);
          if (e < 0) return e;
          if (mode === 'dump') return collected;
          continue;
        }
        if (m.type === NLMSG_NOOP) continue;
        if (m.type === NLMSG_OVERRUN) return -errno.ENOBUFS;
        if (mode === 'reply') return [m];
        if (mode === 'dump') collected.push({ ...m, payload: m.payload.slice() });
      }
      if (related) unrelated = 0;
      else if (++unrelated > MAX_UNRELATED_DATAGRAMS) {
        this.lastProblem = `no reply for request ${seq} among ${unrelated} datagrams`;
        return -errno.EAGAIN;
      }
    }
  }
}

function isInt(x: number, min: number, max: number): boolean {
  return Number.isInteger(x) && x >= min && x <= max;
}

function isU32(x: number): boolean {
  return isInt(x, 0, 0xffffffff);
}

/** 1..15 bytes (IFNAMSIZ incl. NUL), no NUL, '/' or whitespace (the kernel's dev_valid_name). */
function validIfname(name: string): boolean {
  if (typeof name !== 'string' || name === '.' || name === '..') return false;
  const b = utf8Encode(name);
  if (b.length === 0 || b.length >= IFNAMSIZ) return false;
  for (const c of b) if (c === 0 || c === 0x2f || c === 0x3a || c === 0x20 || (c >= 9 && c <= 13)) return false;
  return true;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}
