/**
 * The IPC protocol between the cluster engine's primary and its workers
 * (see cluster.ts for the model), and the stats sum both sides use.
 * Owns: message shapes and timing constants. Runs on: any process's JS thread.
 */
import type { EngineStats } from '../engine';
import type { NetCounters } from '../net/engine';
import { mergeSnapshots, type MetricsSnapshot } from '../../server/metrics';

/** What a worker reports: its net engine's counters, the server's, and its metrics snapshot. */
export type WorkerCounts = NetCounters & { metrics?: MetricsSnapshot } & Record<string, unknown>;

/** Workers report their connection count at most this often (ms). */
export const COUNT_INTERVAL = 50;
/** How long a stats request waits for the other processes (ms). */
export const STATS_TIMEOUT = 2000;
/** How long a draining worker waits for the others to close their listeners (ms). */
export const STOP_TIMEOUT = 1000;
/** Beyond the drain timeout, how long the primary waits before killing a worker that does not exit (ms). */
export const EXIT_GRACE = 5000;
/** A draining worker that disconnected gets this long (ms) to exit by itself before SIGTERM. */
export const DISCONNECT_GRACE = 200;
/** Re-fork delay after an unexpected exit, doubled per consecutive crash up to the cap (ms). */
export const REFORK_DELAY = 100;
export const REFORK_DELAY_MAX = 5000;

/** Messages between primary and workers; `edgepoll` names the kind. */
export type ClusterMessage =
  | { edgepoll: 'listening'; host: string; port: number; path?: string }
  | { edgepoll: 'listen-error'; code: string; message: string }
  | { edgepoll: 'count'; connections: number }
  | { edgepoll: 'broadcast'; bytes: Uint8Array }
  /** `retire`: a native workers reload; the new generation accepts, so do not wait for the others to stop. */
  | { edgepoll: 'drain'; retire?: boolean }
  | { edgepoll: 'stopped' }
  | { edgepoll: 'all-stopped' }
  | { edgepoll: 'admit?'; request: number }
  | { edgepoll: 'admit'; request: number; admitted: boolean }
  | { edgepoll: 'release' }
  | { edgepoll: 'counts?'; request: number }
  | { edgepoll: 'counts'; request: number; counts: WorkerCounts }
  | { edgepoll: 'stats?'; request: number }
  | { edgepoll: 'stats'; request: number; stats: EngineStats };

export function isClusterMessage(message: unknown): message is ClusterMessage {
  return typeof message === 'object' && message !== null && typeof (message as { edgepoll?: unknown }).edgepoll === 'string';
}

/** Engine counters that only make sense per loop (kept out of the top-level sums). */
const perLoopOnly = new Set(['ringFull', 'backpressure']);

export function sumStats(entries: Array<{ worker: number; pid: number; counts: WorkerCounts }>): EngineStats {
  const total: EngineStats = { engine: 'cluster', connections: 0, accepted: 0, rejected: 0, protocolErrors: 0, loops: [] };
  const app: Record<string, number> = {};
  const snapshots: MetricsSnapshot[] = [];
  // Topics are counted once however many workers have subscribers to them (one space, docs/PROTOCOL.md section 6).
  const topics = new Set<string>();
  let named = false;
  for (const { worker, pid, counts: all } of entries) {
    const { topicNames, metrics, ...counts } = all as WorkerCounts & { topicNames?: unknown };
    if (metrics) snapshots.push(metrics);
    if (Array.isArray(topicNames)) {
      named = true;
      for (const name of topicNames) topics.add(String(name));
    }
    for (const [key, value] of Object.entries(counts)) {
      if (!(key in total) && !perLoopOnly.has(key) && typeof value === 'number') app[key] = (app[key] ?? 0) + value;
    }
    total.connections += counts.connections;
    total.accepted += counts.accepted;
    total.rejected += counts.rejected;
    total.protocolErrors += counts.protocolErrors;
    total.loops.push({ worker, pid, ...(counts as Record<string, number>) });
  }
  if (named) app.topics = topics.size;
  total.app = app;
  total.metrics = mergeSnapshots(snapshots);
  return total;
}

