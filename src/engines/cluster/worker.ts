/**
 * The cluster engine's worker side (the model is described in cluster.ts):
 * a net engine listening on node:cluster's shared port, plus the IPC to the
 * primary (broadcast relay, stats, connection counts, admission, drain);
 * the IPC machinery itself is primary-link.ts, shared with the native workers.
 * Owns: this worker's net engine. Runs on: the worker's JS thread.
 */
import cluster from 'node:cluster';
import type { EdgepollError } from '../../errors';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import { createNetEngine, type Admission, type NetCounters, type NetEngineInstance } from '../net/engine';
import { sumStats, type WorkerCounts } from './messages';
import { PrimaryLink, RelayingWorker } from './primary-link';

/** A worker: a net engine on the shared port, plus the IPC to the primary. */
export class WorkerEngine extends RelayingWorker implements Engine {
  readonly kind = 'cluster' as const;
  protected readonly local: NetEngineInstance;
  protected readonly link: PrimaryLink;
  private drainRequested = false;
  protected readonly frameFraming: boolean;

  constructor(
    options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    super();
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
      admit: (answer) => this.link.admit(answer),
      release: () => this.link.post({ edgepoll: 'release' }),
    };
    this.local = createNetEngine(options, relay, admission);
    this.link = new PrimaryLink({
      drain: () => {
        this.drainRequested = true;
        this.sink.requestClose();
      },
      broadcast: (bytes) => this.local.broadcast(bytes),
      counts: (request) => this.link.post({ edgepoll: 'counts', request, counts: this.counts() }),
    });
  }

  private countChanged(): void {
    this.link.countChanged(() => this.local.connectionCount());
  }

  async listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    try {
      const address = await this.local.listen(host, port, backlog, path);
      this.link.post({ edgepoll: 'listening', host: address.host, port: address.port, path: address.path });
      return address;
    } catch (error) {
      const e = error as EdgepollError;
      this.link.post({ edgepoll: 'listen-error', code: String(e.code ?? 'EIO'), message: e.message });
      throw error;
    }
  }

  /** This worker's engine counters plus the server's application counters. */
  private counts(): WorkerCounts {
    return { ...this.sink.counters?.(), ...this.local.counts(), metrics: this.sink.metrics?.() };
  }

  /** All workers' counters, summed by the primary (this worker's own if the primary does not answer). */
  stats(): Promise<EngineStats> {
    const local = (): EngineStats => sumStats([{ worker: cluster.worker?.id ?? 0, pid: process.pid, counts: this.counts() }]);
    return this.link.stats(local);
  }

  /**
   * Closes this worker's listener. When the primary asked for the drain, also
   * waits (bounded) until every worker has, so that the shared port is closed.
   */
  async stopAccepting(): Promise<void> {
    await this.local.stopAccepting();
    if (!this.drainRequested || !process.connected) return;
    // 'stopped' goes after node:cluster's own 'close' message for the listener, on the same channel.
    await this.link.waitAllStopped();
  }


  connectionCount(): number {
    return this.local.connectionCount();
  }
}
