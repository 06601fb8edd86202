// Batched datagram reception: the runtime reads every readable datagram socket of one event-loop
// turn itself (recvmmsg in qjs-native/td_core.c, td_recv_batch) and hands the broker driver one
// batch, instead of one callback per socket and one native call per datagram plus one more that
// only returns EAGAIN (docs/performance.md "Broker idle"). Runtime-neutral: the Node binding is
// src/runtime/node/datagram-reader.ts; test doubles fill a DatagramBatch by hand.
import { formatIpv6, ipv4Number } from '../ip-text.js';

/** Int32 words per datagram in the meta array (TD_DGRAM_META in qjs-native/td_napi.c):
 *  fd, length or -errno, flags (bit 0: truncated) | family << 8, port, address (16 bytes),
 *  ms it waited in the socket's receive queue (-1: unknown). */
export const DGRAM_META_WORDS = 9;
/** Bytes of one datagram's slot. No Tunneldigger message is longer than a 1500-byte PMTU probe
 *  (1472 bytes of UDP payload); a longer datagram arrives cut and flagged as truncated. */
export const DGRAM_SLOT_BYTES = 2048;
/** Datagrams one batch holds (the buffer is DGRAM_SLOTS × DGRAM_SLOT_BYTES = 512 KiB). */
export const DGRAM_SLOTS = 256;
/** Datagrams read from one socket per loop turn (fairness between the listener and tunnels). */
export const DGRAM_PER_SOCKET = 64;

/** A batch of received datagrams, views over the reader's shared buffers: valid only during the
 *  callback (the next batch overwrites them); the data of datagram i is a view, not a copy. */
export class DatagramBatch {
  count = 0;
  private readonly metaBytes: Uint8Array;

  constructor(
    readonly buf: Uint8Array = new Uint8Array(DGRAM_SLOTS * DGRAM_SLOT_BYTES),
    readonly meta: Int32Array = new Int32Array(DGRAM_SLOTS * DGRAM_META_WORDS),
    readonly slotBytes: number = DGRAM_SLOT_BYTES,
  ) {
    this.metaBytes = new Uint8Array(meta.buffer, meta.byteOffset, meta.byteLength);
  }

  get capacity(): number {
    return Math.min(Math.floor(this.meta.length / DGRAM_META_WORDS), Math.floor(this.buf.length / this.slotBytes));
  }

  fd(i: number): number {
    return this.meta[i * DGRAM_META_WORDS];
  }

  /** The datagram's length, or -errno for a socket error reported in its place. */
  result(i: number): number {
    return this.meta[i * DGRAM_META_WORDS + 1];
  }

  truncated(i: number): boolean {
    return (this.meta[i * DGRAM_META_WORDS + 2] & 1) !== 0;
  }

  /** 4, 6, or 0 when the source address is unknown. */
  family(i: number): number {
    return (this.meta[i * DGRAM_META_WORDS + 2] >> 8) & 0xff;
  }

  port(i: number): number {
    return this.meta[i * DGRAM_META_WORDS + 3];
  }

  /** How long datagram i waited in its socket's receive queue before this batch read it (ms,
   *  from the kernel's receive timestamp: setRxTimestamps), -1 when unknown. */
  queuedMs(i: number): number {
    return this.meta[i * DGRAM_META_WORDS + 8];
  }

  data(i: number): Uint8Array {
    const at = i * this.slotBytes;
    return this.buf.subarray(at, at + this.result(i));
  }

  /** The IPv4 source as a number (a.b.c.d = a·2²⁴ + ...), NaN for another family. */
  ipv4(i: number): number {
    if (this.family(i) !== 4) return NaN;
    const o = (i * DGRAM_META_WORDS + 4) * 4;
    const b = this.metaBytes;
    return b[o] * 0x100_0000 + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
  }

  /** The source address as text (as inet_ntop writes it), '' when unknown. */
  ip(i: number): string {
    const o = (i * DGRAM_META_WORDS + 4) * 4;
    const b = this.metaBytes;
    const family = this.family(i);
    if (family === 4) return `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`;
    if (family === 6) return formatIpv6(b.subarray(o, o + 16));
    return '';
  }

  /** Appends a datagram (test doubles and fallbacks); false when the batch is full. */
  push(fd: number, data: Uint8Array | number, from?: { ip: string; port: number }, queuedMs = -1): boolean {
    const i = this.count;
    if (i >= this.capacity) return false;
    const m = i * DGRAM_META_WORDS;
    this.meta.fill(0, m, m + DGRAM_META_WORDS);
    this.meta[m] = fd;
    this.meta[m + 8] = queuedMs;
    if (typeof data === 'number') {
      this.meta[m + 1] = data;
    } else {
      const n = Math.min(data.length, this.slotBytes);
      this.buf.set(data.subarray(0, n), i * this.slotBytes);
      this.meta[m + 1] = n;
      this.meta[m + 2] = data.length > this.slotBytes ? 1 : 0;
    }
    const v4 = from ? ipv4Number(from.ip) : NaN;
    if (from && !Number.isNaN(v4)) {
      this.meta[m + 2] |= 4 << 8;
      this.meta[m + 3] = from.port;
      const o = (m + 4) * 4;
      this.metaBytes[o] = v4 >>> 24;
      this.metaBytes[o + 1] = (v4 >>> 16) & 0xff;
      this.metaBytes[o + 2] = (v4 >>> 8) & 0xff;
      this.metaBytes[o + 3] = v4 & 0xff;
    }
    this.count++;
    return true;
  }
}

/** What the broker driver needs of a runtime's batched reader. */
export interface DatagramReader {
  /** How long a socket watched as deferred may wait to be read (0 or absent: none waits). */
  readonly deferMs?: number;
  /** Sets the callback that receives every batch; 0 or -errno. */
  start(onBatch: (batch: DatagramBatch) => void): number;
  /** Reads fd's datagrams into the batches from now on; 0 or -errno. deferred: its datagrams
   *  may wait a little (the runtime's read interval) to be read together with other sockets'. */
  watch(fd: number, deferred?: boolean): number;
  unwatch(fd: number): void;
}

/** Batched sending on a connected socket (the same runtime's sendmmsg). */
export interface DatagramSender {
  /** Sends datagrams in order; returns how many went out (fewer when the next one failed: the
   *  caller sends that one alone to learn its error), or -errno when the first failed. */
  sendBatch(fd: number, datagrams: readonly Uint8Array[]): number;
  /** The same on an unconnected socket, datagram i to dests[i] (DEST_BYTES each, packDestination). */
  sendBatchTo?(fd: number, datagrams: readonly Uint8Array[], dests: readonly Uint8Array[]): number;
}

/** Bytes of one packed destination (TD_DEST_BYTES in qjs-native/td_core.h). */
export const DEST_BYTES = 20;

/** A destination for sendBatchTo: family (4 or 6), 0, port (network order), address bytes (4
 *  or 16); null when the address is neither family's. */
export function packDestination(address: Uint8Array | null, port: number): Uint8Array | null {
  if (!address || (address.length !== 4 && address.length !== 16)) return null;
  const out = new Uint8Array(DEST_BYTES);
  out[0] = address.length === 4 ? 4 : 6;
  out[2] = (port >> 8) & 0xff;
  out[3] = port & 0xff;
  out.set(address, 4);
  return out;
}

/** One datagram handed to a HandedDatagramReader: fd, data or -errno, source, ms it waited in
 *  the receive queue (default -1: unknown). */
export type HandedDatagram = readonly [fd: number, data: Uint8Array | number, from?: { ip: string; port: number }, queuedMs?: number];

/** A DatagramReader that is handed its datagrams instead of reading sockets (simulations and
 *  test doubles): turn() delivers what one event-loop turn read, of the watched fds only. */
export class HandedDatagramReader implements DatagramReader {
  readonly watched = new Set<number>();
  private onBatch: ((b: DatagramBatch) => void) | null = null;

  constructor(private readonly batch: DatagramBatch = new DatagramBatch()) {}

  start(onBatch: (b: DatagramBatch) => void): number {
    this.onBatch = onBatch;
    return 0;
  }

  watch(fd: number): number {
    this.watched.add(fd);
    return 0;
  }

  unwatch(fd: number): void {
    this.watched.delete(fd);
  }

  /** What a turn read; nothing happens before start(). */
  turn(items: readonly HandedDatagram[]): void {
    this.batch.count = 0;
    for (const [fd, data, from, queuedMs] of items) if (this.watched.has(fd)) this.batch.push(fd, data, from, queuedMs);
    this.onBatch?.(this.batch);
  }
}
