/**
 * The `cluster` engine: the `node:cluster` model, behind the same
 * {@link Engine} interface.
 *
 * **How it works.** Your script runs in every process, exactly as with
 * `node:cluster`. In the primary, `listen()` forks `workers` workers (default:
 * the available cores) running the same script with the same arguments and
 * `EDGEPOLL_CLUSTER_WORKER=1`; each worker creates the same server, whose
 * `listen()` goes through `node:cluster`'s shared listening handle (so every
 * worker gets the same port, `port: 0` included). The primary resolves once
 * every worker reports that it listens, and holds no connection itself: the
 * primary accepts and hands each connection to a worker (round-robin on Linux).
 * Inside a worker, connections are served by the {@link createNetEngine | net engine}.
 *
 * - `broadcast()` in a worker reaches that worker's connections and, relayed
 *   by the primary, every other worker's: every connection gets it once.
 *   `broadcast()` in the primary reaches every worker's connections.
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
 * Owns: the workers (primary side) and the IPC protocol between primary and
 * workers. Does not own: sockets (the workers' net engines do).
 * Runs on: the JS thread of each process.
 */
import cluster, { type Worker } from 'node:cluster';
import { EdgepollError } from '../errors';
import { HEADER_SIZE } from '../protocol';
import type { Engine, EngineOptions, EngineSink, EngineStats } from './engine';
import { createNetEngine, type Admission, type NetCounters, type NetEngineInstance } from './net';

/** Workers report their connection count at most this often (ms). */
const COUNT_INTERVAL = 50;
/** How long a stats request waits for the other processes (ms). */
const STATS_TIMEOUT = 2000;
/** How long a draining worker waits for the others to close their listeners (ms). */
const STOP_TIMEOUT = 1000;
/** Beyond the drain timeout, how long the primary waits before killing a worker that does not exit (ms). */
const EXIT_GRACE = 5000;
/** Re-fork delay after an unexpected exit, doubled per consecutive crash up to the cap (ms). */
const REFORK_DELAY = 100;
const REFORK_DELAY_MAX = 5000;

/** Messages between primary and workers; `edgepoll` names the kind. */
type ClusterMessage =
  | { edgepoll: 'listening'; host: string; port: number }
  | { edgepoll: 'listen-error'; code: string; message: string }
  | { edgepoll: 'count'; connections: number }
  | { edgepoll: 'broadcast'; bytes: Uint8Array }
  | { edgepoll: 'drain' }
  | { edgepoll: 'stopped' }
  | { edgepoll: 'all-stopped' }
  | { edgepoll: 'admit?'; request: number }
  | { edgepoll: 'admit'; request: number; admitted: boolean }
  | { edgepoll: 'release' }
  | { edgepoll: 'counts?'; request: number }
  | { edgepoll: 'counts'; request: number; counts: NetCounters }
  | { edgepoll: 'stats?'; request: number }
  | { edgepoll: 'stats'; request: number; stats: EngineStats };

function isClusterMessage(message: unknown): message is ClusterMessage {
  return typeof message === 'object' && message !== null && typeof (message as { edgepoll?: unknown }).edgepoll === 'string';
}

function sumStats(entries: Array<{ worker: number; pid: number; counts: NetCounters }>): EngineStats {
  const total: EngineStats = { engine: 'cluster', connections: 0, accepted: 0, rejected: 0, protocolErrors: 0, loops: [] };
  for (const { worker, pid, counts } of entries) {
    total.connections += counts.connections;
    total.accepted += counts.accepted;
    total.rejected += counts.rejected;
    total.protocolErrors += counts.protocolErrors;
    total.loops.push({ worker, pid, ...counts });
  }
  return total;
}

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
class PrimaryEngine implements Engine {
  readonly kind = 'cluster' as const;
  private readonly workers = new Map<number, WorkerState>();
  private address: { host: string; port: number } | undefined;
  private starting: { resolve: (a: { host: string; port: number }) => void; reject: (e: Error) => void } | undefined;
  private draining = false;
  private allStopped = false;
  private stopping = false;
  private crashes = 0;
  /** Connections admitted under maxConnections, all workers together. */
  private admitted = 0;
  private nextRequest = 1;
  private readonly pending = new Map<number, { want: Set<number>; got: Array<{ worker: number; pid: number; counts: NetCounters }>; done: () => void }>();
  private readonly exitWaiters: Array<() => void> = [];
  private killTimer: NodeJS.Timeout | undefined;
  private referenced = true;

  constructor(
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
  ) {}

  /** Forks the workers; they listen on (host, port) themselves when they run the script's listen(). */
  listen(_host: string, _port: number, _backlog: number): Promise<{ host: string; port: number }> {
    if (this.starting || this.address) return Promise.reject(new EdgepollError('ESERVER_ALREADY_LISTENING'));
    cluster.setupPrimary({ serialization: 'advanced' });
    cluster.on('message', this.onMessage);
    cluster.on('exit', this.onExit);
    return new Promise((resolve, reject) => {
      this.starting = { resolve, reject };
      const count = Math.max(1, this.options.workers);
      for (let i = 0; i < count; i++) this.fork();
    });
  }

  private fork(): void {
    const worker = cluster.fork({ EDGEPOLL_CLUSTER_WORKER: '1' });
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
          if (this.address && this.address.port !== message.port) {
            this.failStart(new EdgepollError('EIO', `cluster workers listen on different ports (${this.address.port}, ${message.port})`));
            return;
          }
          this.address ??= { host: message.host, port: message.port };
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

  broadcast(bytes: Uint8Array): void {
    const message: ClusterMessage = { edgepoll: 'broadcast', bytes };
    for (const state of this.workers.values()) if (state.listening) this.send(state.worker, message);
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
        got: [] as Array<{ worker: number; pid: number; counts: NetCounters }>,
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

/** A worker: a net engine on the shared port, plus the IPC to the primary. */
class WorkerEngine implements Engine {
  readonly kind = 'cluster' as const;
  private readonly local: NetEngineInstance;
  private countTimer: NodeJS.Timeout | undefined;
  private nextRequest = 1;
  private readonly pending = new Map<number, (stats: EngineStats) => void>();
  private readonly admissions = new Map<number, (admitted: boolean) => void>();
  private readonly stoppedWaiters: Array<() => void> = [];
  private drainRequested = false;
  private closed = false;
  private readonly frameFraming: boolean;

  constructor(
    options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    this.frameFraming = options.framing === 'frame';
    const relay: EngineSink = {
      open: (id, address, port) => {
        sink.open(id, address, port);
        this.countChanged();
      },
      message: sink.message.bind(sink),
      data: sink.data.bind(sink),
      drain: sink.drain.bind(sink),
      end: sink.end.bind(sink),
      close: (id, code, reason) => {
        sink.close(id, code, reason);
        this.countChanged();
      },
      error: sink.error.bind(sink),
      batchEnd: sink.batchEnd.bind(sink),
      requestClose: sink.requestClose.bind(sink),
    };
    // maxConnections counts every worker's connections: the primary admits each one.
    const admission: Admission = {
      admit: (answer) => {
        if (!process.connected) return answer(false);
        const request = this.nextRequest++;
        this.admissions.set(request, answer);
        this.post({ edgepoll: 'admit?', request });
      },
      release: () => this.post({ edgepoll: 'release' }),
    };
    this.local = createNetEngine(options, relay, admission);
    process.on('message', this.onMessage);
  }

  private post(message: ClusterMessage): void {
    if (!process.connected || !process.send) return;
    process.send(message, undefined, undefined, () => {
      // The primary is gone; node:cluster ends this worker on 'disconnect'.
    });
  }

  private countChanged(): void {
    if (this.countTimer) return;
    this.countTimer = setTimeout(() => {
      this.countTimer = undefined;
      this.post({ edgepoll: 'count', connections: this.local.connectionCount() });
    }, COUNT_INTERVAL);
    this.countTimer.unref();
  }

  private readonly onMessage = (message: unknown): void => {
    if (!isClusterMessage(message)) return;
    switch (message.edgepoll) {
      case 'drain':
        this.drainRequested = true;
        this.sink.requestClose();
        break;
      case 'all-stopped':
        for (const resolve of this.stoppedWaiters.splice(0)) resolve();
        break;
      case 'broadcast':
        this.local.broadcast(message.bytes);
        break;
      case 'counts?':
        this.post({ edgepoll: 'counts', request: message.request, counts: this.local.counts() });
        break;
      case 'admit': {
        const answer = this.admissions.get(message.request);
        this.admissions.delete(message.request);
        answer?.(message.admitted);
        break;
      }
      case 'stats': {
        const resolve = this.pending.get(message.request);
        this.pending.delete(message.request);
        resolve?.(message.stats);
        break;
      }
      default:
        break;
    }
  };

  async listen(host: string, port: number, backlog: number): Promise<{ host: string; port: number }> {
    try {
      const address = await this.local.listen(host, port, backlog);
      this.post({ edgepoll: 'listening', host: address.host, port: address.port });
      return address;
    } catch (error) {
      const e = error as EdgepollError;
      this.post({ edgepoll: 'listen-error', code: String(e.code ?? 'EIO'), message: e.message });
      throw error;
    }
  }

  write(id: number, bytes: Uint8Array): boolean {
    return this.local.write(id, bytes);
  }
  sendFrame(id: number, flags: number, type: number, seq: number, payload: Uint8Array): boolean {
    return this.local.sendFrame(id, flags, type, seq, payload);
  }
  bufferedAmount(id: number): number {
    return this.local.bufferedAmount(id);
  }
  end(id: number): void {
    this.local.end(id);
  }
  destroy(id: number): void {
    this.local.destroy(id);
  }
  close(id: number, code: Parameters<Engine['close']>[1], reason?: string): void {
    this.local.close(id, code, reason);
  }
  flush(): void {
    this.local.flush();
  }

  /**
   * Local broadcast, relayed to the other workers through the primary. A
   * control frame (type 0xFFxx: the GOAWAY of this worker's own graceful
   * shutdown) stays local: it is about this worker's connections only.
   */
  broadcast(bytes: Uint8Array): void {
    this.local.broadcast(bytes);
    if (this.frameFraming && bytes.length >= HEADER_SIZE && bytes[2] === 0xff) return;
    this.post({ edgepoll: 'broadcast', bytes });
  }

  /** All workers' counters, summed by the primary (this worker's own if the primary does not answer). */
  stats(): Promise<EngineStats> {
    const local = (): EngineStats => sumStats([{ worker: cluster.worker?.id ?? 0, pid: process.pid, counts: this.local.counts() }]);
    if (!process.connected) return Promise.resolve(local());
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(request);
        resolve(local());
      }, STATS_TIMEOUT);
      this.pending.set(request, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.post({ edgepoll: 'stats?', request });
    });
  }

  /**
   * Closes this worker's listener. When the primary asked for the drain, also
   * waits (bounded) until every worker has, so that the shared port is closed.
   */
  async stopAccepting(): Promise<void> {
    await this.local.stopAccepting();
    if (!this.drainRequested || !process.connected) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT);
      timer.unref();
      this.stoppedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      // Sent after node:cluster's own 'close' message for the listener, on the same channel.
      this.post({ edgepoll: 'stopped' });
    });
  }

  /** Destroys what is left, tells the primary, and lets this worker exit (IPC disconnected). */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const answer of this.admissions.values()) answer(false);
    this.admissions.clear();
    await this.local.shutdown();
    if (this.countTimer) clearTimeout(this.countTimer);
    this.post({ edgepoll: 'count', connections: 0 });
    process.off('message', this.onMessage);
    // worker.disconnect() closes this worker's servers, then the IPC channel:
    // the primary sees a deliberate exit (not a crash to replace).
    if (cluster.worker?.isConnected()) cluster.worker.disconnect();
  }

  ref(): void {
    this.local.ref();
  }
  unref(): void {
    this.local.unref();
  }
  connectionCount(): number {
    return this.local.connectionCount();
  }
}

/** Builds the cluster engine: the primary side in the primary, a worker side in workers (see the file comment). */
export function createClusterEngine(options: EngineOptions, sink: EngineSink): Engine {
  return cluster.isPrimary ? new PrimaryEngine(options, sink) : new WorkerEngine(options, sink);
}
