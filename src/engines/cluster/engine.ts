/**
 * The `cluster` engine: the `node:cluster` model, behind the same
 * {@link Engine} interface.
 *
 * **How it works.** Your script runs in every process, exactly as with
 * `node:cluster`. In the primary, `listen()` forks `workers` workers (default:
 * the available cores) running the same script with the same arguments
 * (`cluster.isWorker` tells them apart); each worker creates the same server, whose
 * `listen()` goes through `node:cluster`'s shared listening handle (so every
 * worker gets the same port, `port: 0` included). The primary resolves once
 * every worker reports that it listens, and holds no connection itself: the
 * primary accepts and hands each connection to a worker (round-robin on Linux).
 * Inside a worker, connections are served by the {@link createNetEngine | net engine}.
 *
 * - `broadcast()` in a worker reaches that worker's connections and, relayed
 *   by the primary, every other worker's: every connection gets it once.
 *   `broadcast()` in the primary reaches every worker's connections.
 * - With an external `bus` (server.ts), every worker and the primary are
 *   nodes of it: a publish, sendTo or broadcast made in the primary (the
 *   user's script runs there too) reaches the workers through the bus.
 * - `stats()` anywhere returns the sum over all workers (one `loops` entry per
 *   worker); `connectionCount()` in the primary is the sum of what workers
 *   report (coalesced, at most every 50 ms).
 * - Graceful close of the primary's server (or SIGTERM/SIGINT through the CLI)
 *   tells every worker to drain: each worker's server runs its own graceful
 *   shutdown (GOAWAY, requests in flight answered, drain, exit). The primary's
 *   close resolves when every worker has exited.
 * - `maxConnections` counts all workers' connections: with a limit set, a
 *   worker asks the primary (one IPC round trip) before serving a connection.
 * - A worker that dies unexpectedly is reported as an `'error'`
 *   (`EWORKER_EXIT`) and replaced, unless the server is shutting down.
 * - On 2 cores `node:cluster` gains little and halves the connection-accept
 *   rate (the primary accepts every connection); prefer `native` or `net`
 *   there. IPC uses the `advanced` serialization (bytes travel as bytes).
 *
 * Files: cluster-primary.ts (forks, relays, sums), cluster-worker.ts (a net
 * engine plus IPC), cluster-messages.ts (the IPC protocol).
 * Owns: the choice of side. Does not own: sockets (the workers' net engines do).
 * Runs on: the JS thread of each process.
 */
import cluster from 'node:cluster';
import { PrimaryEngine } from './primary';
import { WorkerEngine } from './worker';
import type { Engine, EngineOptions, EngineSink } from '../engine';

/** Builds the cluster engine: the primary side in the primary, a worker side in workers (see the file comment). */
export function createClusterEngine(options: EngineOptions, sink: EngineSink): Engine {
  return cluster.isPrimary ? new PrimaryEngine(options, sink) : new WorkerEngine(options, sink);
}

