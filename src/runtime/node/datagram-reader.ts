// DatagramReader (src/runtime/datagram-batch.ts) on the Node addon: watchDatagrams sockets are
// read by the addon once per event-loop turn (recvmmsg), and one JS callback gets them all.
import { DatagramBatch, DGRAM_PER_SOCKET, type DatagramReader } from '../datagram-batch.js';
import type { NodeNative } from './native.js';

export class NodeDatagramReader implements DatagramReader {
  private readonly batch = new DatagramBatch();

  constructor(private readonly native: Pick<NodeNative, 'datagramReader' | 'watchDatagrams' | 'unwatch'>) {}

  start(onBatch: (batch: DatagramBatch) => void): number {
    const b = this.batch;
    return this.native.datagramReader(b.buf, b.meta, b.slotBytes, DGRAM_PER_SOCKET, (count) => {
      b.count = count;
      onBatch(b);
    });
  }

  watch(fd: number): number {
    return this.native.watchDatagrams(fd);
  }

  unwatch(fd: number): void {
    this.native.unwatch(fd);
  }
}

/** The addon's reader, or undefined for an older addon without datagramReader. */
export function nodeDatagramReader(native: Partial<NodeNative>): NodeDatagramReader | undefined {
  if (typeof native.datagramReader !== 'function' || typeof native.watchDatagrams !== 'function') return undefined;
  return new NodeDatagramReader(native as NodeNative);
}
