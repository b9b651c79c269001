/**
 * Loads the native addon exactly once per process, through node-gyp-build
 * (a matching file in prebuilds/, else build/Release). The ESM entry
 * re-exports the CommonJS build, so there is one copy of this module and of
 * the addon. If loading fails, the reason is kept: {@link nativeLoadError}.
 */
import path from 'node:path';

/** The shape of what native/addon.cc exports (see docs/internals.md). */
export interface NativeAddon {
  errorNames: string[];
  Engine: new (
    options: Record<string, unknown>,
    onBatch: (loop: number, batch: ArrayBuffer, records: number) => void,
  ) => NativeEngine;
  /** Test hook: runs the native decoder over chunks (test/codec.differential.test.ts). */
  decode(
    framing: number,
    maxFrame: number,
    role: number,
    chunks: Uint8Array[],
    stopEvery?: number,
  ): { messages: Array<{ type: number; flags: number; seq: number; payload: Buffer }>; error: string; midMessage: boolean };
  /** The native load generator (bench/). */
  runLoad(options: Record<string, unknown>, onProgress?: (report: Record<string, unknown>) => void): Promise<Record<string, unknown>>;
}

export interface NativeEngine {
  listen(host: string, port: number, backlog: number): number;
  submit(loop: number, commands: Uint8Array, byteLength: number): boolean;
  /** false: some loop's inbox is full and nothing was queued (retry later). */
  broadcast(bytes: Uint8Array): boolean;
  /** One shared copy to the members of `topic` in every loop, except (loop, slot, generation); loop 0xFFFFFFFF = nobody. false: some inbox is full, nothing queued. */
  publish(topic: Uint8Array, frame: Uint8Array, exceptLoop: number, exceptSlot: number, exceptGeneration: number): boolean;
  stopAccepting(): void;
  stats(): { loops: Array<Record<string, number>> };
  stop(): void;
  ref(): void;
  unref(): void;
}

/** Root of the package (holds binding.gyp, build/ and prebuilds/). */
export const packageRoot = path.join(__dirname, '..');

let loaded: NativeAddon | undefined;
let loadError: Error | undefined;
let tried = false;

/** The addon, or undefined when it cannot load here (see {@link nativeLoadError}). */
export function tryLoadNative(): NativeAddon | undefined {
  if (tried) return loaded;
  tried = true;
  try {
    if (process.env.EDGEPOLL_FORCE_NO_NATIVE === '1') {
      throw new Error('EDGEPOLL_FORCE_NO_NATIVE=1 is set');
    }
    if (process.platform !== 'linux') {
      throw new Error(`the native engine needs Linux (epoll); this is ${process.platform}`);
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = require('node-gyp-build') as (dir: string) => NativeAddon;
    loaded = load(packageRoot);
  } catch (error) {
    loadError = error instanceof Error ? error : new Error(String(error));
  }
  return loaded;
}

/** Why the addon did not load, or undefined if it loaded (or was not tried yet). */
export function nativeLoadError(): Error | undefined {
  tryLoadNative();
  return loadError;
}
