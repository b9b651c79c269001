/**
 * Loads the native addons exactly once per process: the engine through
 * node-gyp-build (build/Release, else a matching file in prebuilds/), and the
 * load generator, a separate addon that only bench loads (build/Release,
 * else prebuilds/<platform>-<arch>/loadgen/, matched with node-gyp-build's own
 * tag rules). The ESM entry re-exports the CommonJS build, so there is one
 * copy of this module and of each addon. If loading fails, the reason is
 * kept: {@link nativeLoadError}, {@link tryLoadLoadgen}.
 */
import fs from 'node:fs';
import path from 'node:path';

/** The shape of what native/addon.cc exports (see docs/internals.md). */
export interface NativeAddon {
  errorNames: string[];
  Engine: new (
    options: Record<string, unknown>,
    onBatch: (loop: number, batch: ArrayBuffer, records: number) => void,
  ) => NativeEngine;
  /** A listening socket no loop serves (a workers primary shares it); the fd is the caller's, CLOEXEC. */
  createListener(host: string, port: number, backlog: number, reusePort: boolean): { fd: number; port: number };
  /** Test hook: runs the native decoder over chunks (test/protocol/codec.differential.test.ts). */
  decode(
    framing: number,
    maxFrame: number,
    role: number,
    chunks: Uint8Array[],
    stopEvery?: number,
  ): { messages: Array<{ type: number; flags: number; seq: number; payload: Buffer }>; error: string; midMessage: boolean };
}

/** What native/loadgen/binding.cc exports (its own addon, edgepoll_loadgen.node). */
export interface LoadgenAddon {
  runLoad(options: Record<string, unknown>, onProgress?: (report: Record<string, unknown>) => void): Promise<Record<string, unknown>>;
}

export interface NativeEngine {
  /** With `path`: a Unix socket there (returns 0), host and port unused. */
  listen(host: string, port: number, backlog: number, path?: string): number;
  /** Adopts a listening socket (a dup per loop, EPOLLEXCLUSIVE); returns its port. The fd stays the caller's. */
  listen(fd: number): number;
  submit(loop: number, commands: Uint8Array, byteLength: number): boolean;
  /** false: some loop's inbox is full and nothing was queued (retry later). */
  broadcast(bytes: Uint8Array): boolean;
  /** One shared copy to the members of `topic` in every loop, except (loop, slot, generation); loop 0xFFFFFFFF = nobody. false: some inbox is full, nothing queued. */
  publish(topic: Uint8Array, frame: Uint8Array, exceptLoop: number, exceptSlot: number, exceptGeneration: number): boolean;
  stopAccepting(): void;
  /** One loop gives freed heap back to the OS soon (malloc_trim, off the JS thread). */
  trim(): void;
  stats(): { loops: Array<Record<string, number>> };
  stop(): void;
  ref(): void;
  unref(): void;
}

/** Root of the package (holds binding.gyp, build/ and prebuilds/). */
export const packageRoot = path.join(__dirname, '..', '..', '..');

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

/** The subset of node-gyp-build's exports used to pick the load generator's prebuild. */
interface NodeGypBuild {
  parseTags(file: string): { file: string } | undefined;
  matchTags(runtime: string, abi: string): (tags: { file: string } | undefined) => boolean;
  compareTags(runtime: string): (a: { file: string }, b: { file: string }) => number;
}

// binding.gyp's second target. node-gyp-build and prebuildify take the first
// *.node of build/Release in sorted order, so this name must sort after
// "edgepoll.node" (it does: '_' > '.'), and its prebuild lives in loadgen/.
const LOADGEN_FILE = 'edgepoll_loadgen.node';
let loadgen: { addon?: LoadgenAddon; error?: Error } | undefined;

/** The path of the load generator addon: a local build first (as node-gyp-build does), else the matching prebuild. */
function resolveLoadgen(): string {
  const built = path.join(packageRoot, 'build', 'Release', LOADGEN_FILE);
  if (!process.env.PREBUILDS_ONLY && fs.existsSync(built)) return built;
  const dir = path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}`, 'loadgen');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const gypBuild = require('node-gyp-build') as NodeGypBuild;
  const names = fs.existsSync(dir) ? fs.readdirSync(dir) : [];
  const found = names
    .map((name) => gypBuild.parseTags(name))
    .filter((tags): tags is { file: string } => gypBuild.matchTags('node', process.versions.modules)(tags))
    .sort(gypBuild.compareTags('node'))[0];
  if (!found) throw new Error(`no load generator build was found in ${built} or ${dir}`);
  return path.join(dir, found.file);
}

/** The load generator addon (bench only), or an error saying why it cannot load here. */
export function tryLoadLoadgen(): { addon?: LoadgenAddon; error?: Error } {
  if (loadgen) return loadgen;
  try {
    if (process.platform !== 'linux') throw new Error(`the load generator needs Linux (epoll); this is ${process.platform}`);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    loadgen = { addon: require(resolveLoadgen()) as LoadgenAddon };
  } catch (error) {
    loadgen = { error: error instanceof Error ? error : new Error(String(error)) };
  }
  return loadgen;
}
