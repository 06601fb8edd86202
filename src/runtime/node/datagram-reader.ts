// DatagramReader (src/runtime/datagram-batch.ts) on the Node addon: watchDatagrams sockets are
// read by the addon once per event-loop turn (recvmmsg), and one JS callback gets them all;
// sendBatch is sendmmsg on a connected socket, sendBatchTo on an unconnected one.
import { DatagramBatch, DEST_BYTES, DGRAM_PER_SOCKET, type DatagramReader, type DatagramSender } from '../datagram-batch.js';
import type { NodeNative } from './native.js';

/** Most datagrams and bytes one sendBatch call passes (TD_SEND_BATCH_MAX in td_core.h). */
const SEND_MAX = 64;
const SEND_BYTES = 128 * 1024;

export class NodeDatagramReader implements DatagramReader, DatagramSender {
  private readonly batch = new DatagramBatch();
  private readonly out = new Uint8Array(SEND_BYTES);
  private readonly lens = new Int32Array(SEND_MAX);
  private readonly dests = new Uint8Array(SEND_MAX * DEST_BYTES);

  /** deferMs: the least interval between reads of the sockets watched as deferred (0: none is). */
  constructor(private readonly native: Pick<NodeNative, 'datagramReader' | 'watchDatagrams' | 'unwatch' | 'sendBatch'>,
    readonly deferMs = 0) {}

  start(onBatch: (batch: DatagramBatch) => void): number {
    const b = this.batch;
    return this.native.datagramReader(b.buf, b.meta, b.slotBytes, DGRAM_PER_SOCKET, (count) => {
      b.count = count;
      onBatch(b);
    }, this.deferMs);
  }

  watch(fd: number, deferred = false): number {
    return this.native.watchDatagrams(fd, deferred);
  }

  unwatch(fd: number): void {
    this.native.unwatch(fd);
  }

  /** Copies what fits (SEND_MAX datagrams, SEND_BYTES) into the shared buffer: one native call. */
  sendBatch(fd: number, datagrams: readonly Uint8Array[]): number {
    const count = this.fill(datagrams);
    // 0 (a datagram larger than the buffer): the caller sends it alone
    return count === 0 ? 0 : this.native.sendBatch(fd, this.out, this.lens, count);
  }

  sendBatchTo(fd: number, datagrams: readonly Uint8Array[], dests: readonly Uint8Array[]): number {
    const count = this.fill(datagrams);
    for (let i = 0; i < count; i++) this.dests.set(dests[i], i * DEST_BYTES);
    return count === 0 ? 0 : this.native.sendBatch(fd, this.out, this.lens, count, this.dests);
  }

  /** Copies the datagrams that fit into out and lens; how many. */
  private fill(datagrams: readonly Uint8Array[]): number {
    let at = 0;
    let count = 0;
    for (const d of datagrams) {
      if (count === SEND_MAX || at + d.length > SEND_BYTES) break;
      this.out.set(d, at);
      this.lens[count++] = d.length;
      at += d.length;
    }
    return count;
  }
}

/** The addon's reader, or undefined for an older addon without datagramReader. */
export function nodeDatagramReader(native: Partial<NodeNative>, deferMs = 0): NodeDatagramReader | undefined {
  if (typeof native.datagramReader !== 'function' || typeof native.watchDatagrams !== 'function' ||
    typeof native.sendBatch !== 'function') return undefined;
  return new NodeDatagramReader(native as NodeNative, deferMs);
}
