/**
 * A worker process's IPC link to its primary, shared by both worker-process
 * engines (the cluster engine's worker.ts and the native workers'
 * workers/worker.ts): posting, the debounced connection count, admission and
 * stats round trips, and the bounded wait for every worker to stop accepting;
 * and RelayingWorker, the Engine calls both pass to their own engine.
 * The engine keeps what differs (what it counts, when it drains, how it admits).
 * Owns: this worker's outstanding requests to the primary.
 * Runs on: the worker's JS thread.
 */
import cluster from 'node:cluster';
import { HEADER_SIZE } from '../../protocol/constants';
import type { Engine, EngineStats } from '../engine';
import { COUNT_INTERVAL, STATS_TIMEOUT, STOP_TIMEOUT, isClusterMessage, type ClusterMessage } from './messages';

/** The primary's messages the engine acts on itself (the link answers the rest). */
export interface LinkHandlers {
  drain(message: { retire?: boolean }): void;
  broadcast(bytes: Uint8Array): void;
  counts(request: number): void;
}

/**
 * A control frame (type 0xFFxx: this worker's own GOAWAY) is about this
 * worker's connections only: it is not relayed to the other workers.
 */
export function isLocalControlFrame(frameFraming: boolean, bytes: Uint8Array): boolean {
  return frameFraming && bytes.length >= HEADER_SIZE && bytes[2] === 0xff;
}

export class PrimaryLink {
  private nextRequest = 1;
  private countTimer: NodeJS.Timeout | undefined;
  private readonly pending = new Map<number, (stats: EngineStats) => void>();
  private readonly admissions = new Map<number, (admitted: boolean) => void>();
  private readonly stoppedWaiters: Array<() => void> = [];

  constructor(private readonly handlers: LinkHandlers) {
    process.on('message', this.onMessage);
  }

  post(message: ClusterMessage): void {
    if (!process.connected || !process.send) return;
    process.send(message, undefined, undefined, () => {
      // The primary is gone; node:cluster ends this worker on 'disconnect'.
    });
  }

  /** Reports `connections()` to the primary at most every COUNT_INTERVAL. */
  countChanged(connections: () => number): void {
    if (this.countTimer) return;
    this.countTimer = setTimeout(() => {
      this.countTimer = undefined;
      this.post({ edgepoll: 'count', connections: connections() });
    }, COUNT_INTERVAL);
    this.countTimer.unref();
  }

  /** Asks the primary to admit one connection under the global maxConnections; refused at once without a primary. */
  admit(answer: (admitted: boolean) => void): void {
    if (!process.connected) return answer(false);
    const request = this.nextRequest++;
    this.admissions.set(request, answer);
    this.post({ edgepoll: 'admit?', request });
  }

  /** All workers' stats from the primary; `local()` (this worker's own) without a primary or its answer. */
  stats(local: () => EngineStats | Promise<EngineStats>): Promise<EngineStats> {
    if (!process.connected) return Promise.resolve(local());
    const request = this.nextRequest++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(request);
        void Promise.resolve(local()).then(resolve);
      }, STATS_TIMEOUT);
      this.pending.set(request, (stats) => {
        clearTimeout(timer);
        resolve(stats);
      });
      this.post({ edgepoll: 'stats?', request });
    });
  }

  /** Tells the primary this worker stopped accepting; resolves when all have (or after STOP_TIMEOUT). */
  waitAllStopped(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, STOP_TIMEOUT);
      timer.unref();
      this.stoppedWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.post({ edgepoll: 'stopped' });
    });
  }

  /** Answers every admission still waiting with a refusal (shutdown). */
  refuseAdmissions(): void {
    for (const answer of this.admissions.values()) answer(false);
    this.admissions.clear();
  }

  /** Reports no connections left and stops listening to the primary. */
  close(): void {
    if (this.countTimer) clearTimeout(this.countTimer);
    this.post({ edgepoll: 'count', connections: 0 });
    process.off('message', this.onMessage);
  }

  private readonly onMessage = (message: unknown): void => {
    if (!isClusterMessage(message)) return;
    switch (message.edgepoll) {
      case 'drain':
        this.handlers.drain(message);
        break;
      case 'all-stopped':
        for (const resolve of this.stoppedWaiters.splice(0)) resolve();
        break;
      case 'broadcast':
        this.handlers.broadcast(message.bytes);
        break;
      case 'counts?':
        this.handlers.counts(message.request);
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
}

/**
 * What both workers answer alike as Engines: per-connection calls go to this
 * worker's own engine (`local`); broadcasts go to it and, through the
 * primary, to the other workers.
 */
export abstract class RelayingWorker {
  protected abstract readonly local: Engine;
  protected abstract readonly link: PrimaryLink;
  protected abstract readonly frameFraming: boolean;

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

  #closed = false;

  /** Destroys what is left, tells the primary, and lets this worker exit (IPC disconnected). */
  async shutdown(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.link.refuseAdmissions();
    await this.local.shutdown();
    this.link.close();
    // worker.disconnect() closes this worker's servers, then the IPC channel:
    // the primary sees a deliberate exit (not a crash to replace).
    if (cluster.worker?.isConnected()) cluster.worker.disconnect();
  }

  /**
   * Local broadcast, relayed to the other workers through the primary. A
   * control frame (type 0xFFxx: the GOAWAY of this worker's own graceful
   * shutdown) stays local: it is about this worker's connections only.
   */
  broadcast(bytes: Uint8Array): boolean {
    const taken = this.local.broadcast(bytes);
    if (isLocalControlFrame(this.frameFraming, bytes)) return taken;
    this.link.post({ edgepoll: 'broadcast', bytes });
    return taken;
  }

  ref(): void {
    this.local.ref();
  }
  unref(): void {
    this.local.unref();
  }
}
