// Loads the Node-API build of the C core (build/node/tdnative.node, made by mk/native.mk).
// TD_NATIVE_ADDON overrides the path (installed layouts, tests against another build).
import { createRequire } from 'node:module';
import type { LoopClock } from './loop.js';
import { fileURLToPath } from 'node:url';
import type { Native, NetlinkWorkerNative } from '../../native.js';

/** NetlinkWorkerNative: the netlink thread (qjs-native/td_nl_worker.h), src/netlink/worker.ts. */
export interface NodeNative extends Native, LoopClock, NetlinkWorkerNative {
  /** Calls cb from the Node event loop whenever fd is readable (uv_poll). Replaces an earlier
   *  callback for the same fd. Returns 0 or -errno (e.g. -EPERM for a regular file).
   *  An exception thrown by cb becomes a process 'uncaughtException'. close(fd) unwatches. */
  watch(fd: number, cb: () => void): number;
  /** Stops watching fd (no-op when not watched). */
  unwatch(fd: number): void;
  /** Sets (or replaces) the reader of the watchDatagrams sockets: once per event-loop turn in
   *  which some were readable, the addon reads them (recvmmsg, at most perFd datagrams each, as
   *  many as fit) into `buf` (slots of slotSize bytes) and `meta` (DGRAM_META_WORDS words per
   *  datagram, src/runtime/datagram-batch.ts) and calls cb(count). deferMs (default 0): the
   *  least interval between two reads of the deferred sockets (0: none is deferred). 0 or -EINVAL. */
  datagramReader(buf: Uint8Array, meta: Int32Array, slotSize: number, perFd: number, cb: (count: number) => void, deferMs?: number): number;
  /** Like watch(fd), but fd's datagrams go to the datagramReader callback (set it first,
   *  else -EINVAL). deferred: fd is read with the other deferred sockets, at most every deferMs
   *  after the first readiness (one wake-up for all of them), instead of when it is readable.
   *  unwatch(fd) and close(fd) stop it. 0 or -errno. */
  watchDatagrams(fd: number, deferred?: boolean): number;
  /** sendmmsg on a connected socket: the first `count` datagrams, lens[i] bytes each, one after
   *  the other in buf. How many were sent (fewer: the next one failed; sent alone it gives the
   *  error), or -errno when the first failed. With dests (count × 20 bytes: family, 0, port,
   *  address; datagram-batch.ts packDestination): sendmmsg on an unconnected socket, datagram i to
   *  destination i. */
  sendBatch(fd: number, buf: Uint8Array, lens: Int32Array, count: number, dests?: Uint8Array): number;
}

// This file runs from build/js/src/runtime/node/, four levels below build/.
const defaultPath = fileURLToPath(new URL('../../../../node/tdnative.node', import.meta.url));

function load(): NodeNative {
  const path = process.env.TD_NATIVE_ADDON ?? defaultPath;
  try {
    return createRequire(import.meta.url)(path) as NodeNative;
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    throw new Error(`cannot load the native addon ${path} (${why}); build it with 'make build/node/tdnative.node'`);
  }
}

export const native: NodeNative = load();
export default native;
