/**
 * The primary-side bookkeeping both worker-process engines share (the cluster
 * engine's primary.ts and the native workers' workers/primary.ts): the worker
 * table, the global maxConnections ledger, counts requests, broadcast relay,
 * connection sums, ref/unref, the IPC messages they answer alike, and
 * ConnectionlessPrimary (the Engine calls a primary has no connection for). Each
 * primary keeps what differs: forking, listening, drain, crash and exit policy.
 * Owns: the worker table and its ledgers (not the workers' lifecycle).
 * Runs on: the primary's JS thread.
 */
import type { Worker } from 'node:cluster';
import type { EngineStats } from '../engine';
import type { ClusterMessage, WorkerCounts } from './messages';
import { STATS_TIMEOUT } from './messages';

/** What the primary knows of one worker; each engine adds its own fields. */
export interface WorkerSlot {
  worker: Worker;
  listening: boolean;
  connections: number;
  /** Connections this worker holds under the global maxConnections. */
  admitted: number;
  /** The worker closed its listener while draining. */
  stopped: boolean;
}

export type CountsEntry = { worker: number; pid: number; counts: WorkerCounts };

export function sendToWorker(worker: Worker, message: ClusterMessage): void {
  if (!worker.isConnected()) return;
  worker.send(message, undefined, () => {
    // A worker that just died cannot take it; its exit is handled in onExit.
  });
}

function unrefWorker(worker: Worker): void {
  worker.process.unref();
  (worker.process as { channel?: { unref(): void } }).channel?.unref();
}

export class WorkerPool<S extends WorkerSlot> {
  readonly workers = new Map<number, S>();
  /** Connections admitted under maxConnections, all workers together. */
  private admitted = 0;
  private nextRequest = 1;
  private readonly pending = new Map<number, { want: Set<number>; got: CountsEntry[]; done: () => void }>();
  private referenced = true;

  constructor(
    private readonly options: { maxConnections: number },
    /** The primary's stats(), for a worker that asks for everyone's. */
    private readonly stats: () => Promise<EngineStats>,
  ) {}

  add(state: S): void {
    this.workers.set(state.worker.id, state);
    if (!this.referenced) unrefWorker(state.worker);
  }

  /** Forgets an exited worker: its admissions and its part in pending counts requests. */
  remove(worker: Worker): S | undefined {
    const state = this.workers.get(worker.id);
    if (!state) return undefined;
    this.workers.delete(worker.id);
    this.admitted -= state.admitted;
    for (const request of this.pending.values()) {
      if (request.want.delete(worker.id) && request.want.size === 0) request.done();
    }
    return state;
  }

  /** The messages both primaries answer the same way; false for any other. */
  handle(worker: Worker, state: S, message: ClusterMessage): boolean {
    switch (message.edgepoll) {
      case 'count':
        state.connections = message.connections;
        return true;
      case 'admit?': {
        const admitted = this.admitted < this.options.maxConnections;
        if (admitted) {
          this.admitted++;
          state.admitted++;
        }
        sendToWorker(worker, { edgepoll: 'admit', request: message.request, admitted });
        return true;
      }
      case 'release':
        if (state.admitted > 0) {
          state.admitted--;
          this.admitted--;
        }
        return true;
      case 'broadcast':
        for (const other of this.workers.values()) {
          if (other.worker !== worker && other.listening) sendToWorker(other.worker, message);
        }
        return true;
      case 'counts': {
        const request = this.pending.get(message.request);
        if (!request || !request.want.delete(worker.id)) return true;
        request.got.push({ worker: worker.id, pid: worker.process.pid ?? 0, counts: message.counts });
        if (request.want.size === 0) request.done();
        return true;
      }
      case 'stats?':
        void this.stats().then((stats) => sendToWorker(worker, { edgepoll: 'stats', request: message.request, stats }));
        return true;
      default:
        return false;
    }
  }

  /** Every listening worker's counts (bounded by STATS_TIMEOUT), sorted by worker id, handed to `finish`. */
  collectCounts(finish: (entries: CountsEntry[]) => EngineStats): Promise<EngineStats> {
    const request = this.nextRequest++;
    const want = new Set<number>();
    for (const state of this.workers.values()) if (state.listening && state.worker.isConnected()) want.add(state.worker.id);
    return new Promise((resolve) => {
      const entry = {
        want,
        got: [] as CountsEntry[],
        done: () => {
          clearTimeout(timer);
          this.pending.delete(request);
          entry.got.sort((a, b) => a.worker - b.worker);
          resolve(finish(entry.got));
        },
      };
      const timer = setTimeout(entry.done, STATS_TIMEOUT);
      this.pending.set(request, entry);
      if (want.size === 0) entry.done();
      for (const id of want) sendToWorker(this.workers.get(id)!.worker, { edgepoll: 'counts?', request });
    });
  }

  /** To every listening worker; IPC queues in the primary, the workers' engines apply their receivers' bounds. */
  broadcast(bytes: Uint8Array): void {
    const message: ClusterMessage = { edgepoll: 'broadcast', bytes };
    for (const state of this.workers.values()) if (state.listening) sendToWorker(state.worker, message);
  }

  sendAll(message: ClusterMessage): void {
    for (const state of this.workers.values()) sendToWorker(state.worker, message);
  }

  killAll(signal: NodeJS.Signals): void {
    for (const state of this.workers.values()) state.worker.process.kill(signal);
  }

  /**
   * Asks every worker to exit (IPC disconnect, then SIGTERM: a deliberate exit,
   * not a crash to replace). Returns the unref'd timer that SIGKILLs what is
   * left after `graceMs`, or undefined when there is no worker.
   */
  terminateAll(graceMs: number): NodeJS.Timeout | undefined {
    for (const state of this.workers.values()) {
      if (state.worker.isConnected()) state.worker.disconnect();
      state.worker.process.kill('SIGTERM');
    }
    if (this.workers.size === 0) return undefined;
    const timer = setTimeout(() => this.killAll('SIGKILL'), graceMs);
    timer.unref();
    return timer;
  }

  ref(): void {
    this.referenced = true;
    for (const state of this.workers.values()) {
      state.worker.process.ref();
      (state.worker.process as { channel?: { ref(): void } }).channel?.ref();
    }
  }

  unref(): void {
    this.referenced = false;
    for (const state of this.workers.values()) unrefWorker(state.worker);
  }

  connectionCount(): number {
    let total = 0;
    for (const state of this.workers.values()) total += state.connections;
    return total;
  }
}

const noIds: ReadonlySet<number> = new Set();

/**
 * What both primaries answer alike as Engines: they hold no connection, so the
 * per-connection calls have nothing to act on; broadcasts, ref/unref and the
 * connection count go to the pool.
 */
export abstract class ConnectionlessPrimary {
  protected abstract readonly pool: WorkerPool<WorkerSlot>;

  write(): boolean {
    return false;
  }
  sendFrame(): boolean {
    return false;
  }
  bufferedAmount(): number {
    return 0;
  }
  end(): void {}
  destroy(): void {}
  close(): void {}
  flush(): void {}
  subscribe(): void {}
  unsubscribe(): void {}
  /** Topics reach the workers through the server's bus (the workers' IPC bus, src/bus/cluster-ipc.ts, or an external one). */
  publish(): boolean {
    return true;
  }
  backlogged(): ReadonlySet<number> {
    return noIds;
  }

  /**
   * On an external bus the primary is a node of its own and the workers get
   * its broadcasts (and what it takes from the bus) through the bus (each
   * worker is a node): relaying them as well would deliver them twice.
   */
  broadcastLocal(): void {}

  broadcast(bytes: Uint8Array): boolean {
    this.pool.broadcast(bytes);
    return true;
  }

  ref(): void {
    this.pool.ref();
  }

  unref(): void {
    this.pool.unref();
  }

  connectionCount(): number {
    return this.pool.connectionCount();
  }
}
