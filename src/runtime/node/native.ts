// Loads the Node-API build of the C core (build/node/tdnative.node, made by mk/native.mk).
// TD_NATIVE_ADDON overrides the path (installed layouts, tests against another build).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Native } from '../../native.js';

export interface NodeNative extends Native {
  /** Calls cb from the Node event loop whenever fd is readable (uv_poll). Replaces an earlier
   *  callback for the same fd. Returns 0 or -errno (e.g. -EPERM for a regular file).
   *  An exception thrown by cb becomes a process 'uncaughtException'. close(fd) unwatches. */
  watch(fd: number, cb: () => void): number;
  /** Stops watching fd (no-op when not watched). */
  unwatch(fd: number): void;
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
