/**
 * The native engine in N worker processes (`engine: 'native', workers: N`).
 *
 * **How it works.** As with `node:cluster` (and the `cluster` engine), your
 * script runs in the primary and in every worker; the primary runs no
 * handlers. The primary's `listen()` creates ONE listening socket and forks
 * the workers with its fd in their stdio (index 4); each worker's native
 * engine puts a dup of it in every loop's epoll with EPOLLEXCLUSIVE, so the
 * kernel hands each connection to one loop of one worker, and the primary
 * never touches a connection.
 *
 * Why one shared socket and not SO_REUSEPORT: a SO_REUSEPORT socket that
 * closes takes its accept queue with it (connections the kernel already
 * completed there are reset). Here the queue belongs to the one socket, which
 * the primary holds until the server closes: a worker that dies or retires
 * only stops taking from it (test/engines/workers/engine.native.workers.test.ts shows both).
 *
 * - Balance is the kernel's: EPOLLEXCLUSIVE wakes the first registered loop
 *   sleeping in epoll_wait, so an idle server puts most new connections on
 *   its first worker; they spread once loops are busy (README).
 * - A worker that dies is reported (`EWORKER_EXIT`) and replaced; its
 *   connections end, the others' do not notice.
 * - `maxConnections` counts all workers' connections: each new connection is
 *   admitted by the primary (one IPC round trip) before any handler sees it.
 * - `broadcast()` reaches every worker's connections (relayed by the
 *   primary); `stats()` and `server.connections` are summed over workers.
 * - `server.reload()` (SIGHUP with `edgepoll serve --workers N`) starts a new
 *   generation from the code on disk; once all of it listens, the old one
 *   stops accepting, sends GOAWAY spread over `goawaySpread`, drains within
 *   `shutdownTimeout` and exits.
 *
 * Files: native-workers-primary.ts (socket, forks, relays, sums, reload),
 * native-workers-worker.ts (a native engine on the inherited socket, plus IPC),
 * native-workers-env.ts (what the primary passes down); the IPC messages are
 * the cluster engine's (cluster-messages.ts).
 * Owns: the choice of side. Runs on: the JS thread of each process.
 */
import cluster from 'node:cluster';
import type { NativeAddon } from '../native/binding';
import type { Engine, EngineOptions, EngineSink } from '../engine';
import { NativeWorkersPrimary } from './primary';
import { NativeWorkerEngine } from './worker';

/** Builds the primary side in the primary, a worker side in workers. */
export function createNativeWorkersEngine(addon: NativeAddon, options: EngineOptions, sink: EngineSink): Engine {
  return cluster.isPrimary ? new NativeWorkersPrimary(addon, options, sink) : new NativeWorkerEngine(addon, options, sink);
}
