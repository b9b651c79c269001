/**
 * The native workers engine's primary side (the model is described in
 * native-workers.ts): creates the one listening socket, forks generations of
 * workers that inherit it, resolves listen() when the first generation
 * listens, relays broadcasts, sums stats and connection counts, admits
 * connections under the global maxConnections, replaces workers that die,
 * reloads (a new generation, then the old one retired) and drains.
 * Holds the listening socket until the server closes; accepts nothing.
 * The bookkeeping it shares with the cluster engine's primary is in
 * ../cluster/worker-pool.ts; generations, the socket, reload and nudge are here.
 * Owns: the listening fd, the workers. Runs on: the primary's JS thread.
 */
import cluster, { type Worker } from 'node:cluster';
import fs from 'node:fs';
import net from 'node:net';
import type { NativeAddon } from '../native/binding';
import { EdgepollError } from '../../errors';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import {
  EXIT_GRACE,
  REFORK_DELAY,
  REFORK_DELAY_MAX,
  isClusterMessage,
  sumStats,
  type ClusterMessage,
} from '../cluster/messages';
import { ConnectionlessPrimary, WorkerPool, sendToWorker, type WorkerSlot } from '../cluster/worker-pool';
import { WORKERS_ENV, WORKERS_FD } from './env';


/** How long a new generation may take to listen before the reload gives up (ms). */
export const START_TIMEOUT = 30_000;

interface WorkerState extends WorkerSlot {
  generation: number;
  /** Told to drain (reload or shutdown): its exit is not a crash. */
  retiring: boolean;
}

/** A generation being started: resolves when all its workers listen. */
interface Starting {
  generation: number;
  resolve: () => void;
  reject: (error: EdgepollError) => void;
}

/** The primary: one socket, generations of workers; holds no connection. */
export class NativeWorkersPrimary extends ConnectionlessPrimary implements Engine {
  readonly kind = 'native' as const;
  protected readonly pool: WorkerPool<WorkerState>;
  private readonly workers: Map<number, WorkerState>;
  private fd = -1;
  private address: ListenAddress | undefined;
  private generation = 0;
  /** The generation that serves (the last one that started completely). */
  private serving = 0;
  private starting: Starting | undefined;
  private reloading: Promise<void> | undefined;
  private draining = false;
  private allStopped = false;
  private stopping = false;
  private crashes = 0;
  private readonly exitWaiters: Array<{ generation: number | undefined; resolve: () => void }> = [];
  private killTimer: NodeJS.Timeout | undefined;
  private readonly count: number;
  private readonly shutdownTimeout: number;

  constructor(
    private readonly addon: NativeAddon,
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    super();
    this.count = options.nativeWorkers ?? 1;
    this.shutdownTimeout = options.shutdownTimeout ?? 5000;
    this.pool = new WorkerPool(options, () => this.stats());
    this.workers = this.pool.workers;
  }

  /** Creates the socket, forks the first generation; resolves when every worker listens on it. */
  async listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    if (this.address || this.fd >= 0) throw new EdgepollError('ESERVER_ALREADY_LISTENING');
    if (path !== undefined) throw new EdgepollError('EINVALID_OPTION', 'native workers listen on TCP only (no Unix socket path)');
    let listener: { fd: number; port: number };
    try {
      listener = this.addon.createListener(host, port, backlog, false);
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'EIO';
      throw new EdgepollError(code, `listen ${host}:${port}: ${code}`, { cause: error });
    }
    this.fd = listener.fd;
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
    try {
      await this.startGeneration(host);
    } catch (error) {
      await this.shutdown();
      throw error;
    }
    this.address = { host, port: listener.port };
    return this.address;
  }

  private startGeneration(host: string): Promise<void> {
    const generation = ++this.generation;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new EdgepollError('ERELOAD_FAILED', `generation ${generation}: workers not listening after ${START_TIMEOUT} ms`)), START_TIMEOUT);
      timer.unref();
      const fail = (error: EdgepollError): void => {
        if (this.starting?.generation !== generation) return;
        clearTimeout(timer);
        this.starting = undefined;
        // The failed generation goes; whatever served before keeps serving.
        for (const state of this.workers.values()) {
          if (state.generation !== generation) continue;
          state.retiring = true;
          state.worker.process.kill('SIGKILL');
        }
        reject(error);
      };
      this.starting = {
        generation,
        resolve: () => {
          clearTimeout(timer);
          this.starting = undefined;
          this.serving = generation;
          resolve();
        },
        reject: fail,
      };
      for (let i = 0; i < this.count; i++) this.fork(generation, host);
    });
  }

  private fork(generation: number, host: string): void {
    // The socket rides at stdio index WORKERS_FD; settings are restored so that other cluster users do not inherit it.
    cluster.setupPrimary({ serialization: 'advanced', stdio: ['inherit', 'inherit', 'inherit', 'ipc', this.fd] });
    const worker = cluster.fork({
      [WORKERS_ENV.fd]: String(WORKERS_FD),
      [WORKERS_ENV.host]: host,
      [WORKERS_ENV.generation]: String(generation),
    });
    cluster.setupPrimary({ stdio: undefined });
    this.pool.add({ worker, generation, listening: false, connections: 0, admitted: 0, stopped: false, retiring: false });
  }

  private readonly onMessage = (worker: Worker, message: unknown): void => {
    if (!isClusterMessage(message)) return;
    const state = this.workers.get(worker.id);
    if (!state || this.pool.handle(worker, state, message)) return;
    switch (message.edgepoll) {
      case 'listening':
        state.listening = true;
        this.crashes = 0;
        if (this.draining || this.stopping || state.retiring) {
          this.send(worker, { edgepoll: 'drain' });
          break;
        }
        if (this.starting?.generation === state.generation) {
          const all = [...this.workers.values()].filter((w) => w.generation === state.generation);
          if (all.length === this.count && all.every((w) => w.listening)) this.starting.resolve();
        }
        break;
      case 'listen-error': {
        const error = new EdgepollError('ERELOAD_FAILED', `a worker of generation ${state.generation} could not listen: ${message.code}: ${message.message}`);
        if (this.starting?.generation === state.generation) this.starting.reject(error);
        else this.sink.error(error);
        break;
      }
      case 'stopped':
        state.stopped = true;
        if (!this.draining) {
          // A retiring worker (reload) stopped accepting: see nudge().
          this.nudge();
          break;
        }
        if (this.allStopped) this.send(worker, { edgepoll: 'all-stopped' });
        else this.checkAllStopped();
        break;
      default:
        break;
    }
  };

  private readonly onExit = (worker: Worker, code: number | null, signal: string | null): void => {
    const state = this.pool.remove(worker);
    if (!state) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (this.starting?.generation === state.generation && !state.listening && !state.retiring) {
      this.starting.reject(new EdgepollError('ERELOAD_FAILED', `a worker of generation ${state.generation} exited (${how}) before it was listening`));
    } else if (!this.draining && !this.stopping && !state.retiring && !worker.exitedAfterDisconnect) {
      // Its connections ended with it; the socket's queue stays for the others and the replacement.
      this.sink.error(new EdgepollError('EWORKER_EXIT', `native worker ${worker.process.pid} exited (${how}); starting another`));
      const delay = Math.min(REFORK_DELAY_MAX, REFORK_DELAY * 2 ** this.crashes++);
      setTimeout(() => {
        // A generation retired meanwhile (a reload) is not topped up again.
        if (!this.draining && !this.stopping && this.fd >= 0 && state.generation >= this.serving) {
          this.fork(state.generation, this.address?.host ?? '127.0.0.1');
        }
      }, delay).unref();
    }
    this.nudge();
    this.checkAllStopped();
    for (let i = this.exitWaiters.length - 1; i >= 0; i--) {
      const waiter = this.exitWaiters[i];
      const left = [...this.workers.values()].some((w) => waiter.generation === undefined || w.generation <= waiter.generation);
      if (!left) {
        this.exitWaiters.splice(i, 1);
        waiter.resolve();
      }
    }
    if (this.workers.size === 0 && this.killTimer) clearTimeout(this.killTimer);
  };

  /**
   * EPOLLEXCLUSIVE wakes one waiter per new connection. A worker woken that
   * then stops accepting (a retire) or dies before its accept leaves the
   * connection queued with nobody woken for it until the next one arrives.
   * One connection made here (closed at once) wakes a serving loop, which
   * accepts until the queue is empty. It shows as one more `accepted`.
   */
  private nudge(): void {
    if (this.fd < 0 || !this.address || this.draining || this.stopping) return;
    const host = this.address.host === '0.0.0.0' ? '127.0.0.1' : this.address.host === '::' ? '::1' : this.address.host;
    const socket = net.connect({ port: this.address.port, host });
    socket.setTimeout(1000, () => socket.destroy());
    socket.on('connect', () => socket.end());
    socket.on('error', () => socket.destroy());
    socket.unref();
  }

  /** Shutdown: GOAWAY goes out once no worker accepts any more (see the worker's stopAccepting). */
  private checkAllStopped(): void {
    if (!this.draining || this.allStopped) return;
    for (const state of this.workers.values()) if (state.listening && !state.stopped) return;
    this.allStopped = true;
    this.pool.sendAll({ edgepoll: 'all-stopped' });
  }

  private send(worker: Worker, message: ClusterMessage): void {
    sendToWorker(worker, message);
  }

  /** Resolves when no worker of `generation` or older (undefined: none at all) is left. */
  private exited(generation?: number): Promise<void> {
    const left = [...this.workers.values()].some((w) => generation === undefined || w.generation <= generation);
    if (!left) return Promise.resolve();
    return new Promise((resolve) => this.exitWaiters.push({ generation, resolve }));
  }

  /**
   * A new generation (the script run again from disk); once all of it listens
   * on the socket, the old one stops accepting, sends GOAWAY (spread over
   * goawaySpread), drains within shutdownTimeout and exits. Nothing is ever
   * refused: the socket and its accept queue stay open throughout. Resolves
   * when the old generation is gone; rejects with ERELOAD_FAILED (the old
   * generation still serving) when the new one does not start.
   */
  reload(): Promise<void> {
    if (!this.address || this.draining || this.stopping) {
      return Promise.reject(new EdgepollError('ERELOAD_FAILED', 'the server is not serving (reload needs a listening native workers server)'));
    }
    // A reload asked for during another follows it (a new deploy may have landed since).
    const previous = this.reloading ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => this.reloadOnce());
    this.reloading = next;
    void next.finally(() => {
      if (this.reloading === next) this.reloading = undefined;
    }).catch(() => undefined);
    return next;
  }

  private async reloadOnce(): Promise<void> {
    const old = this.generation;
    await this.startGeneration(this.address!.host);
    const retiring: WorkerState[] = [];
    for (const state of this.workers.values()) {
      if (state.generation > old) continue;
      state.retiring = true;
      retiring.push(state);
      this.send(state.worker, { edgepoll: 'drain', retire: true });
    }
    const timer = setTimeout(() => {
      for (const state of retiring) if (this.workers.has(state.worker.id)) state.worker.process.kill('SIGKILL');
    }, this.shutdownTimeout + EXIT_GRACE);
    timer.unref();
    await this.exited(old);
    clearTimeout(timer);
  }

  /** Tells every worker to drain and closes the primary's socket; resolves when all have exited. */
  stopAccepting(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.closeSocket();
      for (const state of this.workers.values()) {
        state.retiring = true;
        this.send(state.worker, { edgepoll: 'drain' });
      }
      this.killTimer = setTimeout(() => this.killAll('SIGKILL'), this.shutdownTimeout + EXIT_GRACE);
      this.killTimer.unref();
    }
    return this.exited();
  }

  private closeSocket(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }

  stats(): Promise<EngineStats> {
    return this.pool.collectCounts((entries) => {
      const total = sumStats(entries);
      // Which generation each worker belongs to (a reload runs two for a while).
      for (const loop of total.loops) loop.generation = this.workers.get(loop.worker)?.generation ?? 0;
      return { ...total, engine: 'native' };
    });
  }

  private killAll(signal: NodeJS.Signals): void {
    this.pool.killAll(signal);
  }

  async shutdown(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.closeSocket();
      for (const state of this.workers.values()) state.retiring = true;
      if (this.killTimer) clearTimeout(this.killTimer);
      this.killTimer = this.pool.terminateAll(EXIT_GRACE);
    }
    await this.exited();
    cluster.off('message', this.onMessage);
    cluster.off('exit', this.onExit);
  }
}
