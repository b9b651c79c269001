/**
 * Chooses the engine for a server: `auto` means native when the addon loads,
 * else `net` with one warning on standard error (or to the `logger` option) (the load error stays
 * available from {@link nativeLoadError}).
 */
import { nativeLoadError, tryLoadNative } from './native/binding';
import { EdgepollError } from '../errors';
import type { EngineName } from '../server/options';
import { warn, type Logger } from '../server/logger';
import { createClusterEngine } from './cluster/engine';
import type { Engine, EngineOptions, EngineSink } from './engine';
import { createNativeEngine } from './native/engine';
import { createNativeWorkersEngine } from './workers/engine';
import { createNetEngine } from './net/engine';

let warned = false;

/** The engine that `auto` (or an explicit name) resolves to here. */
export function resolveEngineName(requested: EngineName, logger?: Logger): 'native' | 'net' | 'cluster' {
  if (requested !== 'auto') return requested;
  if (tryLoadNative()) return 'native';
  if (!warned) {
    warned = true;
    warn(
      logger,
      `the native engine is unavailable (${nativeLoadError()?.message.trim() ?? 'unknown reason'}); using the node:net engine`,
      'EDGEPOLL_NATIVE_UNAVAILABLE',
    );
  }
  return 'net';
}

/** Builds the engine. */
export function createEngine(name: 'native' | 'net' | 'cluster', options: EngineOptions, sink: EngineSink): Engine {
  switch (name) {
    case 'native': {
      const addon = tryLoadNative();
      if (!addon) {
        const cause = nativeLoadError();
        throw new EdgepollError(
          'ENATIVE_UNAVAILABLE',
          `the native engine cannot load: ${cause?.message ?? 'unknown reason'} (use engine 'net' or 'auto')`,
          { cause },
        );
      }
      if ((options.nativeWorkers ?? 0) > 0) return createNativeWorkersEngine(addon, options, sink);
      return createNativeEngine(addon, options, sink);
    }
    case 'net': {
      return createNetEngine(options, sink);
    }
    case 'cluster': {
      return createClusterEngine(options, sink);
    }
  }
}
