/**
 * The cluster engine's worker side (the model is described in cluster.ts):
 * a net engine listening on node:cluster's shared port, plus the IPC to the
 * primary (broadcast relay, stats, connection counts, admission, drain).
 * Owns: this worker's net engine. Runs on: the worker's JS thread.
 */
import cluster from 'node:cluster';
import type { EdgepollError } from '../../errors';
import { HEADER_SIZE } from '../../protocol/constants';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import { createNetEngine, type Admission, type NetCounters, type NetEngineInstance } from '../net/engine';
import { COUNT_INTERVAL, STATS_TIMEOUT, STOP_TIMEOUT, isClusterMessage, sumStats, type ClusterMessage, type WorkerCounts } from './messages';

/** A worker: a net engine on the shared port, plus the IPC to the primary. */
export class WorkerEngine implements Engine {
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
      open: (id, address, port, tls) => {
        sink.open(id, address, port, tls);
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
        this.post({ edgepoll: 'counts', request: message.request, counts: this.counts() });
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

  async listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    try {
      const address = await this.local.listen(host, port, backlog, path);
      this.post({ edgepoll: 'listening', host: address.host, port: address.port, path: address.path });
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
  subscribe(id: number, topic: string, bytes: Buffer): void {
    this.local.subscribe(id, topic, bytes);
  }
  unsubscribe(id: number, topic: string, bytes: Buffer): void {
    this.local.unsubscribe(id, topic, bytes);
  }
  /** This worker's members only: the other workers are reached through the server's bus (cluster-ipc.ts or an external one). */
  publish(topic: string, bytes: Buffer, frame: Uint8Array, except: number): boolean {
    return this.local.publish(topic, bytes, frame, except);
  }
  backlogged(): ReadonlySet<number> {
    return this.local.backlogged();
  }
  broadcastLocal(bytes: Uint8Array): void {
    this.local.broadcast(bytes);
  }

  /**
   * Local broadcast, relayed to the other workers through the primary. A
   * control frame (type 0xFFxx: the GOAWAY of this worker's own graceful
   * shutdown) stays local: it is about this worker's connections only.
   */
  broadcast(bytes: Uint8Array): boolean {
    const taken = this.local.broadcast(bytes);
    if (this.frameFraming && bytes.length >= HEADER_SIZE && bytes[2] === 0xff) return taken;
    this.post({ edgepoll: 'broadcast', bytes });
    return taken;
  }

  /** This worker's engine counters plus the server's application counters. */
  private counts(): WorkerCounts {
    return { ...this.sink.counters?.(), ...this.local.counts(), metrics: this.sink.metrics?.() };
  }

  /** All workers' counters, summed by the primary (this worker's own if the primary does not answer). */
  stats(): Promise<EngineStats> {
    const local = (): EngineStats => sumStats([{ worker: cluster.worker?.id ?? 0, pid: process.pid, counts: this.counts() }]);
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
