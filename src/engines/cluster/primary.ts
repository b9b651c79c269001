/**
 * The cluster engine's primary side (the model is described in cluster.ts):
 * forks the workers, resolves listen() when all listen, relays broadcasts,
 * sums stats and connection counts, admits connections under a global
 * maxConnections, drains and replaces workers. Holds no connection itself.
 * Owns: the workers. Does not own: sockets. Runs on: the primary's JS thread.
 */
import cluster, { type Worker } from 'node:cluster';
import os from 'node:os';
import { EdgepollError } from '../../errors';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import {
  DISCONNECT_GRACE,
  EXIT_GRACE,
  REFORK_DELAY,
  REFORK_DELAY_MAX,
  STATS_TIMEOUT,
  isClusterMessage,
  sumStats,
  type ClusterMessage,
  type WorkerCounts,
} from './messages';

interface WorkerState {
  worker: Worker;
  listening: boolean;
  connections: number;
  /** Connections this worker holds under the global maxConnections. */
  admitted: number;
  /** The worker closed its listener while draining. */
  stopped: boolean;
}

/** The primary: forks, relays, aggregates; holds no connection. */
const noIds: ReadonlySet<number> = new Set();

export class PrimaryEngine implements Engine {
  readonly kind = 'cluster' as const;
  private readonly workers = new Map<number, WorkerState>();
  private address: ListenAddress | undefined;
  private starting: { resolve: (a: { host: string; port: number }) => void; reject: (e: Error) => void } | undefined;
  private draining = false;
  private allStopped = false;
  private stopping = false;
  private crashes = 0;
  /** Connections admitted under maxConnections, all workers together. */
  private admitted = 0;
  private nextRequest = 1;
  private readonly pending = new Map<number, { want: Set<number>; got: Array<{ worker: number; pid: number; counts: WorkerCounts }>; done: () => void }>();
  private readonly exitWaiters: Array<() => void> = [];
  private killTimer: NodeJS.Timeout | undefined;
  private referenced = true;

  constructor(
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
  ) {}

  /** Forks the workers; they listen on (host, port) themselves when they run the script's listen(). */
  listen(_host: string, _port: number, _backlog: number, _path?: string): Promise<ListenAddress> {
    if (this.starting || this.address) return Promise.reject(new EdgepollError('ESERVER_ALREADY_LISTENING'));
    cluster.setupPrimary({ serialization: 'advanced' });
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
    cluster.on('disconnect', this.onDisconnect);
    return new Promise((resolve, reject) => {
      this.starting = { resolve, reject };
      const asked = this.options.workers;
      const count = Number.isInteger(asked) && asked > 0 ? asked : Math.max(1, os.availableParallelism());
      for (let i = 0; i < count; i++) this.fork();
    });
  }

  private fork(): void {
    const worker = cluster.fork();
    this.workers.set(worker.id, { worker, listening: false, connections: 0, admitted: 0, stopped: false });
    if (!this.referenced) this.unrefWorker(worker);
  }

  private readonly onMessage = (worker: Worker, message: unknown): void => {
    if (!isClusterMessage(message)) return;
    const state = this.workers.get(worker.id);
    if (!state) return;
    switch (message.edgepoll) {
      case 'listening':
        state.listening = true;
        this.crashes = 0;
        if (this.draining || this.stopping) this.send(worker, { edgepoll: 'drain' });
        if (this.starting) {
          if (this.address && (this.address.port !== message.port || this.address.path !== message.path)) {
            const where = (a: { port: number; path?: string }): string => a.path ?? String(a.port);
            this.failStart(new EdgepollError('EIO', `cluster workers listen on different addresses (${where(this.address)}, ${where(message)})`));
            return;
          }
          this.address ??= message.path !== undefined ? { host: message.host, port: message.port, path: message.path } : { host: message.host, port: message.port };
          if ([...this.workers.values()].every((w) => w.listening)) {
            const starting = this.starting;
            this.starting = undefined;
            starting.resolve(this.address);
          }
        }
        break;
      case 'listen-error':
        if (this.starting) this.failStart(new EdgepollError(message.code, message.message));
        else this.sink.error(new EdgepollError(message.code, `a cluster worker could not listen: ${message.message}`));
        break;
      case 'count':
        state.connections = message.connections;
        break;
      case 'admit?': {
        const admitted = this.admitted < this.options.maxConnections;
        if (admitted) {
          this.admitted++;
          state.admitted++;
        }
        this.send(worker, { edgepoll: 'admit', request: message.request, admitted });
        break;
      }
      case 'stopped':
        state.stopped = true;
        if (this.allStopped) this.send(worker, { edgepoll: 'all-stopped' });
        else this.checkAllStopped();
        break;
      case 'release':
        if (state.admitted > 0) {
          state.admitted--;
          this.admitted--;
        }
        break;
      case 'broadcast':
        for (const other of this.workers.values()) {
          if (other.worker !== worker && other.listening) this.send(other.worker, message);
        }
        break;
      case 'counts': {
        const request = this.pending.get(message.request);
        if (!request || !request.want.delete(worker.id)) break;
        request.got.push({ worker: worker.id, pid: worker.process.pid ?? 0, counts: message.counts });
        if (request.want.size === 0) request.done();
        break;
      }
      case 'stats?':
        void this.stats().then((stats) => this.send(worker, { edgepoll: 'stats', request: message.request, stats }));
        break;
      default:
        break;
    }
  };

  /**
   * A draining worker disconnects once its server has closed every
   * connection; a timer or socket of the application must not keep it (and
   * the shutdown) alive past drainTimeout + 1 s: SIGTERM after a short grace
   * (the CLI and fixtures exit 0 on it), SIGKILL later (killTimer).
   */
  private readonly onDisconnect = (worker: Worker): void => {
    if (!this.draining && !this.stopping) return;
    if (!this.workers.has(worker.id)) return;
    setTimeout(() => {
      if (worker.process.exitCode === null && worker.process.signalCode === null) worker.process.kill('SIGTERM');
    }, DISCONNECT_GRACE).unref();
  };

  private readonly onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    const state = this.workers.get(worker.id);
    if (!state) return;
    this.workers.delete(worker.id);
    this.admitted -= state.admitted;
    for (const request of this.pending.values()) {
      if (request.want.delete(worker.id) && request.want.size === 0) request.done();
    }
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.starting && !this.stopping) {
      this.failStart(new EdgepollError('EWORKER_EXIT', `a cluster worker exited (${how}) before it was listening`));
    } else if (!this.draining && !this.stopping && !worker.exitedAfterDisconnect) {
      this.sink.error(new EdgepollError('EWORKER_EXIT', `cluster worker ${worker.process.pid} exited (${how}); starting another`));
      const delay = Math.min(REFORK_DELAY_MAX, REFORK_DELAY * 2 ** this.crashes++);
      setTimeout(() => {
        if (!this.draining && !this.stopping) this.fork();
      }, delay).unref();
    }
    this.checkAllStopped();
    if (this.workers.size === 0) {
      if (this.killTimer) clearTimeout(this.killTimer);
      for (const resolve of this.exitWaiters.splice(0)) resolve();
    }
  };

  /**
   * While draining, a worker's stopAccepting waits until every worker has
   * closed its listener: the shared listening socket (held by node:cluster in
   * this process) closes only when the last one does, and GOAWAY must not go
   * out while new connections could still be accepted.
   */
  private checkAllStopped(): void {
    if (!this.draining || this.allStopped) return;
    for (const state of this.workers.values()) if (state.listening && !state.stopped) return;
    this.allStopped = true;
    for (const state of this.workers.values()) this.send(state.worker, { edgepoll: 'all-stopped' });
  }

  private failStart(error: Error): void {
    const starting = this.starting;
    this.starting = undefined;
    void this.shutdown();
    starting?.reject(error);
  }

  private send(worker: Worker, message: ClusterMessage): void {
    if (!worker.isConnected()) return;
    worker.send(message, undefined, () => {
      // A worker that just died cannot take it; its exit is handled in onExit.
    });
  }

  private allExited(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  // The primary holds no connection: these have nothing to act on.
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
  publish(): boolean {
    return true;
  }
  backlogged(): ReadonlySet<number> {
    return noIds;
  }

  /**
   * On an external bus the primary is a node of its own with no connection:
   * a broadcast it makes or takes from the bus reaches the workers through
   * the bus (each worker is a node), never through the relay as well.
   */
  broadcastLocal(): void {}

  broadcast(bytes: Uint8Array): boolean {
    const message: ClusterMessage = { edgepoll: 'broadcast', bytes };
    for (const state of this.workers.values()) if (state.listening) this.send(state.worker, message);
    // IPC queues in the primary; the workers' engines apply their receivers' bounds.
    return true;
  }

  /** Tells every worker to drain; resolves when all have exited. */
  stopAccepting(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      for (const state of this.workers.values()) this.send(state.worker, { edgepoll: 'drain' });
      const drainTimeout = (this.options as { drainTimeout?: number }).drainTimeout ?? 5000;
      this.killTimer = setTimeout(() => this.killAll('SIGKILL'), drainTimeout + EXIT_GRACE);
      this.killTimer.unref();
    }
    return this.allExited();
  }

  stats(): Promise<EngineStats> {
    const request = this.nextRequest++;
    const want = new Set<number>();
    for (const state of this.workers.values()) if (state.listening && state.worker.isConnected()) want.add(state.worker.id);
    return new Promise((resolve) => {
      const entry = {
        want,
        got: [] as Array<{ worker: number; pid: number; counts: WorkerCounts }>,
        done: () => {
          clearTimeout(timer);
          this.pending.delete(request);
          entry.got.sort((a, b) => a.worker - b.worker);
          resolve(sumStats(entry.got));
        },
      };
      const timer = setTimeout(entry.done, STATS_TIMEOUT);
      this.pending.set(request, entry);
      if (want.size === 0) entry.done();
      for (const id of want) this.send(this.workers.get(id)!.worker, { edgepoll: 'counts?', request });
    });
  }

  private killAll(signal: NodeJS.Signals): void {
    for (const state of this.workers.values()) state.worker.process.kill(signal);
  }

  async shutdown(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      for (const state of this.workers.values()) {
        if (state.worker.isConnected()) state.worker.disconnect();
        state.worker.process.kill('SIGTERM');
      }
      if (this.workers.size > 0) {
        if (this.killTimer) clearTimeout(this.killTimer);
        this.killTimer = setTimeout(() => this.killAll('SIGKILL'), EXIT_GRACE);
        this.killTimer.unref();
      }
    }
    await this.allExited();
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
    cluster.off('disconnect', this.onDisconnect);
  }

  private unrefWorker(worker: Worker): void {
    worker.process.unref();
    (worker.process as { channel?: { unref(): void } }).channel?.unref();
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
    for (const state of this.workers.values()) this.unrefWorker(state.worker);
  }

  connectionCount(): number {
    let total = 0;
    for (const state of this.workers.values()) total += state.connections;
    return total;
  }
}
