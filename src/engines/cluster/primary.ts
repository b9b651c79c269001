/**
 * The cluster engine's primary side (the model is described in cluster.ts):
 * forks the workers, resolves listen() when all listen, relays broadcasts,
 * sums stats and connection counts, admits connections under a global
 * maxConnections, drains and replaces workers. Holds no connection itself.
 * The bookkeeping it shares with the native workers' primary is in
 * worker-pool.ts; what is here is the cluster engine's own: forking, the
 * listen handshake, drain and the re-fork policy.
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
  isClusterMessage,
  sumStats,
  type ClusterMessage,
} from './messages';
import { ConnectionlessPrimary, WorkerPool, sendToWorker, type WorkerSlot } from './worker-pool';

/** The primary: forks, relays, aggregates; holds no connection. */
export class PrimaryEngine extends ConnectionlessPrimary implements Engine {
  readonly kind = 'cluster' as const;
  protected readonly pool: WorkerPool<WorkerSlot>;
  private readonly workers: Map<number, WorkerSlot>;
  private address: ListenAddress | undefined;
  private starting: { resolve: (a: { host: string; port: number }) => void; reject: (e: Error) => void } | undefined;
  private draining = false;
  private allStopped = false;
  private stopping = false;
  private crashes = 0;
  private readonly exitWaiters: Array<() => void> = [];
  private killTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    super();
    this.pool = new WorkerPool(options, () => this.stats());
    this.workers = this.pool.workers;
  }

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
    this.pool.add({ worker, listening: false, connections: 0, admitted: 0, stopped: false });
  }

  private readonly onMessage = (worker: Worker, message: unknown): void => {
    if (!isClusterMessage(message)) return;
    const state = this.workers.get(worker.id);
    if (!state || this.pool.handle(worker, state, message)) return;
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
      case 'stopped':
        state.stopped = true;
        if (this.allStopped) this.send(worker, { edgepoll: 'all-stopped' });
        else this.checkAllStopped();
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
    if (!this.pool.remove(worker)) return;
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
    this.pool.sendAll({ edgepoll: 'all-stopped' });
  }

  private failStart(error: Error): void {
    const starting = this.starting;
    this.starting = undefined;
    void this.shutdown();
    starting?.reject(error);
  }

  private send(worker: Worker, message: ClusterMessage): void {
    sendToWorker(worker, message);
  }

  private allExited(): Promise<void> {
    if (this.workers.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  /** Tells every worker to drain; resolves when all have exited. */
  stopAccepting(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.pool.sendAll({ edgepoll: 'drain' });
      const drainTimeout = (this.options as { drainTimeout?: number }).drainTimeout ?? 5000;
      this.killTimer = setTimeout(() => this.killAll('SIGKILL'), drainTimeout + EXIT_GRACE);
      this.killTimer.unref();
    }
    return this.allExited();
  }

  stats(): Promise<EngineStats> {
    return this.pool.collectCounts(sumStats);
  }

  private killAll(signal: NodeJS.Signals): void {
    this.pool.killAll(signal);
  }

  async shutdown(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      if (this.killTimer) clearTimeout(this.killTimer);
      this.killTimer = this.pool.terminateAll(EXIT_GRACE);
    }
    await this.allExited();
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
    cluster.off('disconnect', this.onDisconnect);
  }
}
