/**
 * The native workers engine's worker side (the model is described in
 * native-workers.ts): a native engine serving the primary's listening socket
 * (inherited as an fd), plus the IPC to the primary (broadcast relay, stats,
 * connection counts, admission under the global maxConnections, drain);
 * the IPC machinery itself is ../cluster/primary-link.ts, shared with the
 * cluster engine. Holding events until admission is this engine's own.
 * Owns: this worker's native engine. Runs on: the worker's JS thread.
 */
import cluster from 'node:cluster';
import fs from 'node:fs';
import type { NativeAddon } from '../native/binding';
import { EdgepollError } from '../../errors';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import { createNativeEngine, type NativeEngineInstance } from '../native/engine';
import { sumStats, type WorkerCounts } from '../cluster/messages';
import { PrimaryLink, RelayingWorker } from '../cluster/primary-link';
import { WORKERS_ENV } from './env';

/** A connection the primary has not admitted yet: its events wait here. */
interface Held {
  events: Array<() => void>;
  closed: boolean;
}

/** A worker: a native engine on the shared socket, plus the IPC to the primary. */
export class NativeWorkerEngine extends RelayingWorker implements Engine {
  readonly kind = 'native' as const;
  protected readonly local: NativeEngineInstance;
  protected readonly link: PrimaryLink;
  private readonly held = new Map<number, Held>();
  /** Connections the primary admitted that are still open (each is released once on close). */
  private readonly admitted = new Set<number>();
  private drain: { retire: boolean } | undefined;
  private rejectedFull = 0;
  /** Connections the server above has open (what the primary sums for server.connections). */
  private open = 0;
  protected readonly frameFraming: boolean;
  private readonly limited: boolean;

  constructor(
    addon: NativeAddon,
    options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    super();
    this.frameFraming = options.framing === 'frame';
    this.limited = options.maxConnections > 0;
    const relay: EngineSink = {
      open: (id, address, port) => this.onOpen(id, address, port),
      message: (id, type, flags, seq, payload) => this.forward(id, () => sink.message(id, type, flags, seq, payload)),
      data: (id, payload) => this.forward(id, () => sink.data(id, payload)),
      drain: (id) => this.forward(id, () => sink.drain(id)),
      end: (id) => this.forward(id, () => sink.end(id)),
      close: (id, code, reason) => this.onClose(id, code, reason),
      error: sink.error.bind(sink),
      batchEnd: sink.batchEnd.bind(sink),
      broadcastDrain: () => sink.broadcastDrain?.(),
      requestClose: sink.requestClose.bind(sink),
    };
    this.local = createNativeEngine(addon, options, relay);
    this.link = new PrimaryLink({
      drain: (message) => {
        this.drain = { retire: message.retire === true };
        this.sink.requestClose();
      },
      broadcast: (bytes) => this.local.broadcast(bytes),
      counts: (request) => void this.counts().then((counts) => this.link.post({ edgepoll: 'counts', request, counts })),
    });
  }

  /**
   * maxConnections counts every worker's connections: the primary admits each
   * one (one IPC round trip). Until it answers, the connection's events wait,
   * so no handler sees a connection that is then refused.
   */
  private onOpen(id: number, address: string, port: number): void {
    if (!this.limited) {
      this.open++;
      this.sink.open(id, address, port);
      this.countChanged();
      return;
    }
    const held: Held = { events: [], closed: false };
    this.held.set(id, held);
    this.link.admit((admitted) => {
      this.held.delete(id);
      if (held.closed) {
        if (admitted) this.link.post({ edgepoll: 'release' });
        return;
      }
      if (!admitted) {
        this.rejectedFull++;
        this.local.close(id, 'ESERVER_FULL');
        this.local.flush();
        return;
      }
      this.admitted.add(id);
      this.open++;
      this.sink.open(id, address, port);
      for (const event of held.events) event();
      this.countChanged();
    });
  }

  private forward(id: number, event: () => void): void {
    const held = this.held.get(id);
    if (held) held.events.push(event);
    else event();
  }

  private onClose(id: number, code: string, reason: string): void {
    const held = this.held.get(id);
    if (held) {
      held.closed = true;
      return;
    }
    if (this.limited) {
      // A connection refused as full was never opened above: nothing to report.
      if (!this.admitted.delete(id)) return;
      this.link.post({ edgepoll: 'release' });
    }
    this.open--;
    this.sink.close(id, code, reason);
    this.countChanged();
  }

  private countChanged(): void {
    this.link.countChanged(() => this.open);
  }

  /** Adopts the inherited socket; host and port are the primary's (the script asks for the same ones). */
  async listen(_host: string, _port: number, _backlog: number, path?: string): Promise<ListenAddress> {
    try {
      const fd = Number(process.env[WORKERS_ENV.fd]);
      const host = process.env[WORKERS_ENV.host] ?? '127.0.0.1';
      if (path !== undefined) throw new EdgepollError('EINVALID_OPTION', 'native workers listen on TCP only (no Unix socket path)');
      if (!Number.isInteger(fd) || fd < 0) throw new EdgepollError('EIO', `no shared socket was passed to this worker (${WORKERS_ENV.fd})`);
      const address = this.local.adopt(fd, host);
      // The loops hold their own dups: this one would only keep the socket open after they close theirs.
      fs.closeSync(fd);
      this.link.post({ edgepoll: 'listening', host: address.host, port: address.port });
      return address;
    } catch (error) {
      const e = error as EdgepollError;
      this.link.post({ edgepoll: 'listen-error', code: String(e.code ?? 'EIO'), message: e.message });
      throw error;
    }
  }

  /** This worker's engine counters plus the server's application counters. */
  private async counts(): Promise<WorkerCounts> {
    const stats = await this.local.stats();
    const sum = (key: string): number => stats.loops.reduce((total, loop) => total + (loop[key] ?? 0), 0);
    return {
      ...this.sink.counters?.(),
      connections: stats.connections,
      accepted: stats.accepted,
      rejected: stats.rejected + this.rejectedFull,
      protocolErrors: stats.protocolErrors,
      ringFull: sum('ringFull'),
      backpressure: sum('backpressure'),
      metrics: this.sink.metrics?.(),
    };
  }

  /** All workers' counters, summed by the primary (this worker's own if the primary does not answer). */
  async stats(): Promise<EngineStats> {
    const local = async (): Promise<EngineStats> => ({
      ...sumStats([{ worker: cluster.worker?.id ?? 0, pid: process.pid, counts: await this.counts() }]),
      engine: 'native',
    });
    return this.link.stats(local);
  }

  /**
   * Stops this worker's loops from accepting; the socket and its queue stay
   * with the primary and the other workers. When the whole server shuts down
   * (not a reload), also waits (bounded) until every worker has stopped, so
   * that no client told GOAWAY here reconnects to a worker about to go too.
   */
  async stopAccepting(): Promise<void> {
    await this.local.stopAccepting();
    if (!this.drain || !process.connected) return;
    if (this.drain.retire) {
      // The primary wakes a serving loop for anything queued that this worker was woken for.
      this.link.post({ edgepoll: 'stopped' });
      return;
    }
    await this.link.waitAllStopped();
  }

}
