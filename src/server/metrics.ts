/**
 * The server layer's metrics: counters, gauges and histograms that mean the
 * same on every engine because they are counted above the engine, where every
 * engine reports the same {@link EngineSink} events (README "Metrics").
 * Engine-specific counters (ring full, wire bytes per loop) stay in the
 * per-loop entries of `stats().loops`.
 *
 * Owns: the numbers, the close-reason mapping, the histogram buckets, the
 * JS-lag sampler. Does not own: their exposition (src/prometheus.ts) or the
 * cluster sum (src/engines/cluster/messages.ts merges {@link MetricsSnapshot}s).
 * Runs on: the JS thread of the server's process.
 */
import type { Engine, EngineStats, ListenAddress } from '../engines/engine';
import type { EngineCode } from '../errors';
import { HEADER_SIZE, type Framing } from '../protocol/constants';

/** Why connections closed, as counted in {@link ServerStats.closed}. */
export interface CloseCounts {
  /** No PONG (or any byte) within heartbeat.timeout after a PING. */
  heartbeatTimeout: number;
  /** Silent for idleTimeout. */
  idle: number;
  /** A message started and did not complete within frameTimeout. */
  frameTimeout: number;
  /** Outbound queue past maxBufferedAmount (or the native pending bound). */
  slowConsumer: number;
  /** Bad magic, flags, type, frame too large, too many pings, PROXY header errors of opened connections, ENOMEM. */
  protocolError: number;
  /** Refused at accept because of maxConnections (never opened; equals `rejected`). */
  serverFull: number;
  /** The peer closed: FIN, CLOSE frame, reset, broken pipe. */
  peer: number;
  /** Closed by the server's graceful shutdown. */
  shutdown: number;
  /** Closed by the application (`connection.close()`/`destroy()`) or another local cause. */
  local: number;
}

export type CloseReason = keyof CloseCounts;

export const closeReasonNames: readonly CloseReason[] = [
  'heartbeatTimeout', 'idle', 'frameTimeout', 'slowConsumer', 'protocolError', 'serverFull', 'peer', 'shutdown', 'local',
];

/** A histogram with fixed upper bounds in seconds (cumulative like Prometheus' `le`). */
export interface HistogramSnapshot {
  /** Upper bounds, seconds, ascending; +Inf is implied. */
  buckets: number[];
  /** counts[i]: observations ≤ buckets[i] (cumulative); the last entry is +Inf (= count). */
  counts: number[];
  /** Sum of all observations, seconds. */
  sum: number;
  count: number;
}

/** Everything the server layer counts; the part of `stats()` that is the same on every engine. */
export interface MetricsSnapshot {
  /** Connections opened (handed to the server) since start. */
  opened: number;
  closed: CloseCounts;
  /** Application messages received (frames of types 1-0xFEFF, length/line messages, raw chunks). */
  messagesIn: number;
  /** Application messages sent (send, request, reply, write; a broadcast counts once per connection). */
  messagesOut: number;
  /** Bytes of those messages, framing included (control frames excluded). */
  bytesIn: number;
  bytesOut: number;
  /** Handler calls that threw or rejected (also `handlerErrors`). */
  handlerErrors: number;
  /** Handlers that returned a promise not yet settled. */
  requestsInFlight: number;
  /** Time from a message's delivery to its handler's settlement (sync handlers included). */
  handlerDuration: HistogramSnapshot;
  /**
   * How far the JS thread lags: the delay of a 100 ms timer, sampled every
   * 100 ms. A batch a loop (or a socket) hands over waits at least this long
   * before JS reads it.
   */
  batchWait: HistogramSnapshot;
}

/** Handler duration buckets (s): 100 µs … 10 s. */
export const HANDLER_BUCKETS = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** JS-lag buckets (s): 1 ms … 5 s. */
export const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
const LAG_INTERVAL_MS = 100;

export class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: number[]) {
    this.counts = new Array<number>(buckets.length + 1).fill(0);
  }

  observe(seconds: number): void {
    // Not cumulative here (one increment per observation); snapshot() accumulates.
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
    this.count++;
  }

  snapshot(): HistogramSnapshot {
    const counts: number[] = [];
    let total = 0;
    for (const n of this.counts) counts.push((total += n));
    return { buckets: [...this.buckets], counts, sum: this.sum, count: this.count };
  }
}

/** Maps an engine close code to its {@link CloseReason}. */
export function closeReasonOf(code: string): CloseReason {
  switch (code) {
    case 'EHEARTBEAT_TIMEOUT': return 'heartbeatTimeout';
    case 'EIDLE_TIMEOUT': return 'idle';
    case 'EFRAME_TIMEOUT': return 'frameTimeout';
    case 'ESLOW_CONSUMER': return 'slowConsumer';
    case 'ESERVER_FULL': return 'serverFull';
    case 'ESHUTDOWN': return 'shutdown';
    case 'OK': case 'ECLOSED_BY_PEER': case 'ECONNRESET': case 'EPIPE': case 'ETIMEDOUT': case 'EHOSTUNREACH':
      return 'peer';
    case 'EDESTROYED': case 'EIO': return 'local';
    default:
      return code.startsWith('E') ? 'protocolError' : 'local';
  }
}

/** The counters one server updates. */
export class Metrics {
  opened = 0;
  readonly closed: CloseCounts = {
    heartbeatTimeout: 0, idle: 0, frameTimeout: 0, slowConsumer: 0, protocolError: 0, serverFull: 0, peer: 0, shutdown: 0, local: 0,
  };
  messagesIn = 0;
  messagesOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  requestsInFlight = 0;
  readonly handlerDuration = new Histogram(HANDLER_BUCKETS);
  readonly batchWait = new Histogram(LAG_BUCKETS);
  #lagTimer: NodeJS.Timeout | undefined;

  /** Samples the JS thread's lag while the server listens (the timer never keeps the process alive). */
  startLagSampler(): void {
    if (this.#lagTimer) return;
    let expected = performance.now() + LAG_INTERVAL_MS;
    this.#lagTimer = setInterval(() => {
      const now = performance.now();
      this.batchWait.observe(Math.max(0, now - expected) / 1000);
      expected = now + LAG_INTERVAL_MS;
    }, LAG_INTERVAL_MS);
    this.#lagTimer.unref();
  }

  stopLagSampler(): void {
    if (this.#lagTimer) clearInterval(this.#lagTimer);
    this.#lagTimer = undefined;
  }

  /** Counts one received message of `payloadLength` bytes in `framing`. */
  received(framing: Framing, payloadLength: number): void {
    this.messagesIn++;
    this.bytesIn += payloadLength + framingOverhead(framing);
  }

  snapshot(handlerErrors: number): MetricsSnapshot {
    return {
      opened: this.opened,
      closed: { ...this.closed },
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      handlerErrors,
      requestsInFlight: this.requestsInFlight,
      handlerDuration: this.handlerDuration.snapshot(),
      batchWait: this.batchWait.snapshot(),
    };
  }
}

function framingOverhead(framing: Framing): number {
  return framing === 'frame' ? HEADER_SIZE : framing === 'length' ? 4 : framing === 'line' ? 1 : 0;
}

/** An empty snapshot (the cluster primary's own, before any worker answered). */
export function emptySnapshot(): MetricsSnapshot {
  return new Metrics().snapshot(0);
}

/** Sums snapshots of several processes (cluster workers); histograms must share buckets. */
export function mergeSnapshots(snapshots: MetricsSnapshot[]): MetricsSnapshot {
  const total = emptySnapshot();
  const addHistogram = (into: HistogramSnapshot, from: HistogramSnapshot): void => {
    if (from.counts.length !== into.counts.length) return;
    for (let i = 0; i < into.counts.length; i++) into.counts[i] += from.counts[i];
    into.sum += from.sum;
    into.count += from.count;
  };
  for (const s of snapshots) {
    total.opened += s.opened;
    for (const reason of closeReasonNames) total.closed[reason] += s.closed[reason] ?? 0;
    total.messagesIn += s.messagesIn;
    total.messagesOut += s.messagesOut;
    total.bytesIn += s.bytesIn;
    total.bytesOut += s.bytesOut;
    total.handlerErrors += s.handlerErrors;
    total.requestsInFlight += s.requestsInFlight;
    addHistogram(total.handlerDuration, s.handlerDuration);
    addHistogram(total.batchWait, s.batchWait);
  }
  return total;
}

/**
 * The engine as a Connection sees it, counting what it sends. Connection.write
 * in the length and line framings makes exactly two engine writes per message
 * (prefix or newline), so every second write there is one message.
 *
 * A class that names each method, not an object of bound copies: copying
 * every method by a computed key left that object in dictionary mode, and
 * each reply's `engine.sendFrame` was a slow property lookup (LoadIC was 6 %
 * of the JS thread's samples in bench/js-path.mjs).
 */
class CountingEngine implements Engine {
  readonly kind: Engine['kind'];
  readonly broadcastLocal?: (bytes: Uint8Array) => void;
  readonly connectionCount?: () => number;
  readonly reload?: () => Promise<void>;
  private half = false;

  constructor(
    private readonly engine: Engine,
    private readonly metrics: Metrics,
    private readonly framing: Framing,
  ) {
    this.kind = engine.kind;
    if (engine.broadcastLocal) this.broadcastLocal = (bytes) => engine.broadcastLocal!(bytes);
    if (engine.connectionCount) this.connectionCount = () => engine.connectionCount!();
    if (engine.reload) this.reload = () => engine.reload!();
  }

  write(id: number, bytes: Uint8Array): boolean {
    this.metrics.bytesOut += bytes.length;
    if (this.framing === 'raw') this.metrics.messagesOut++;
    else if ((this.half = !this.half) === false) this.metrics.messagesOut++;
    return this.engine.write(id, bytes);
  }

  sendFrame(id: number, flags: number, type: number, seq: number, payload: Uint8Array): boolean {
    this.metrics.messagesOut++;
    this.metrics.bytesOut += HEADER_SIZE + payload.length;
    return this.engine.sendFrame(id, flags, type, seq, payload);
  }

  listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    return this.engine.listen(host, port, backlog, path);
  }
  bufferedAmount(id: number): number {
    return this.engine.bufferedAmount(id);
  }
  end(id: number): void {
    this.engine.end(id);
  }
  destroy(id: number): void {
    this.engine.destroy(id);
  }
  close(id: number, code: EngineCode, reason?: string): void {
    this.engine.close(id, code, reason);
  }
  broadcast(bytes: Uint8Array): boolean {
    return this.engine.broadcast(bytes);
  }
  subscribe(id: number, topic: string, bytes: Buffer): void {
    this.engine.subscribe(id, topic, bytes);
  }
  unsubscribe(id: number, topic: string, bytes: Buffer): void {
    this.engine.unsubscribe(id, topic, bytes);
  }
  publish(topic: string, bytes: Buffer, frame: Uint8Array, except: number): boolean {
    return this.engine.publish(topic, bytes, frame, except);
  }
  backlogged(): ReadonlySet<number> {
    return this.engine.backlogged();
  }
  flush(): void {
    this.engine.flush();
  }
  stopAccepting(): Promise<void> {
    return this.engine.stopAccepting();
  }
  stats(): Promise<EngineStats> {
    return this.engine.stats();
  }
  shutdown(): Promise<void> {
    return this.engine.shutdown();
  }
  ref(): void {
    this.engine.ref();
  }
  unref(): void {
    this.engine.unref();
  }
}

export function countingEngine(engine: Engine, metrics: Metrics, framing: Framing): Engine {
  return new CountingEngine(engine, metrics, framing);
}
