/**
 * The server: owns the Connection objects, the dispatcher and the order of a
 * graceful shutdown; the engine below owns sockets, framing and timing.
 */
import cluster from 'node:cluster';
import { EventEmitter } from 'node:events';
import { Connection, createConnection, connectionInternals, checkType, type ConnectionContext } from './connection';
import { Dispatcher, type DispatchCounters, type Handler } from './dispatcher';
import { EdgepollError, invalidOption, toEdgepollError } from '../errors';
import { checkSocketPath } from '../socket-path';
import type { Engine, EngineSink } from '../engines/engine';
import { createEngine, resolveEngineName } from '../engines/select';
import { resolveOptions, type ResolvedOptions, type ServerOptions } from './options';
import { encodeFrame, encodeLength, TYPE_GOAWAY } from '../protocol/constants';
import type { AnyMessages, MessageMap, ReplyOf, RequestOf, TypeOf } from '../protocol/messages';
import { toBytes, type Payload } from '../protocol/payload';
import { Metrics, closeReasonOf, countingEngine, type MetricsSnapshot } from './metrics';
import { channels } from './diagnostics';
import { logError, resolveLogger, type Logger } from './logger';
import { integer, limits } from '../validate';

/** After drainTimeout: how long CLOSE `shutdown` may take to flush before sockets are destroyed. */
const CLOSE_FLUSH_MS = 250;
import { TopicHub } from './topic-hub';
import { clusterIpcBus } from '../bus/cluster-ipc';
import type { BusGap, BusStats } from '../bus/link';
import type { Bus } from '../bus/bus';

/** How long listen() waits for the bus to be reached (ms). */
export const BUS_JOIN_WAIT = 3000;

/** Options of {@link Server.publish}. */
export interface PublishOptions {
  /** A connection (or an address) that must not get this publish, typically its sender. */
  except?: Connection | string;
}

/** Options of {@link Server.listen}. */
export interface ListenOptions {
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** `'::'` listens dual-stack (IPv6 and IPv4-mapped), as node:net. @default '127.0.0.1' */
  host?: string;
  /**
   * A Unix socket path to listen on instead of a TCP port (not with `host` or
   * `port`). An existing file there fails with `EADDRINUSE` (a stale one is not
   * removed); the server unlinks its own file when it stops accepting. Peers
   * report `remoteAddress` '' and `remotePort` 0.
   */
  path?: string;
  /** Pending-connection queue length (capped by net.core.somaxconn). @default 511 */
  backlog?: number;
  /** Aborting closes the server (gracefully). An already aborted signal rejects with EABORTED. */
  signal?: AbortSignal;
}

/** Where a listening server can be reached: host and port, or (host '', port 0) a Unix socket's `path`. */
export interface ServerAddress {
  host: string;
  port: number;
  path?: string;
}

/**
 * One entry of {@link ServerStats.loops}: a native loop, the net engine's
 * process, or a cluster worker. These keys are on every engine; engines add
 * their own (native: `bytesIn`/`bytesOut` on the wire, `batches`,
 * `acceptErrors`, `proxyErrors`, `inboxFull`; cluster: `worker`, `pid`).
 */
export interface LoopStats {
  connections: number;
  accepted: number;
  rejected: number;
  protocolErrors: number;
  /** Native: times the loop found its batch ring to JS full (it stops reading until JS catches up). 0 elsewhere. */
  ringFull: number;
  /** Times a connection's outbound queue crossed above the high-water mark (a write returned false). */
  backpressure: number;
  [key: string]: number;
}

/**
 * {@link Server.stats}: the same shape on every engine (README "Metrics").
 * On the cluster engine every number is the sum over the workers.
 */
export interface ServerStats extends DispatchCounters, MetricsSnapshot {
  engine: 'native' | 'net' | 'cluster';
  /** Open now. */
  connections: number;
  /** Accepted since start (the engine's count: PROXY-protocol failures never open, see `opened`). */
  accepted: number;
  /** Refused because of maxConnections. */
  rejected: number;
  /** Closed for breaking the protocol: a bad frame or line, a bad, untrusted or late PROXY header. */
  protocolErrors: number;
  /** Closed for silence: frame timeout, heartbeat timeout, idle timeout. */
  timeouts: number;
  /** Closed because the peer did not read (outbound queue over maxBufferedAmount). */
  slowConsumers: number;
  /** One entry per loop (native), process (net) or worker (cluster). */
  loops: LoopStats[];
  /** Topics with at least one local subscriber (cluster: summed over workers). */
  topics: number;
  /** Connection-topic pairs, local (cluster: summed over workers). */
  subscriptions: number;
  /** The bus link's counters, when the server is on a bus. */
  bus?: BusStats;
}

/** Events of a {@link Server}. */
export interface ServerEvents<M extends MessageMap = AnyMessages> {
  /** A new connection; it is valid until its 'close'. */
  connection: [connection: Connection<M>];
  listening: [address: ServerAddress];
  /** A handler threw (`EHANDLER`, the thrown value as cause), or the engine reports a problem (EMFILE, …). */
  error: [error: EdgepollError, connection?: Connection<M>];
  /** The server finished closing. */
  close: [];
  /**
   * Every broadcast queued while `broadcast()` returned false has reached the
   * connections' queues: the next one goes straight through.
   */
  broadcastDrain: [];
  /**
   * The bus was unreachable and is back, every subscription renewed: what was
   * published meanwhile is lost (at most once). Once per outage.
   */
  busgap: [gap: BusGap];
}

type State = 'idle' | 'listening' | 'closing' | 'closed';

const timeoutCodes = new Set(['EFRAME_TIMEOUT', 'EHEARTBEAT_TIMEOUT', 'EIDLE_TIMEOUT']);
/** How many distinct remote addresses share their string (see #addressText). */
const ADDRESS_STRINGS = 1024;

/** A server; `M` optionally types message ids and payloads (see src/protocol/messages.ts). */
export class Server<M extends MessageMap = AnyMessages> extends EventEmitter<ServerEvents<M>> implements AsyncDisposable {
  /** The options in force, defaults filled in. */
  readonly options: Readonly<ResolvedOptions>;
  /** The engine actually used (`auto` resolved). */
  readonly engine: 'native' | 'net' | 'cluster';
  #engine: Engine;
  #connections = new Map<number, Connection<M>>();
  #dispatcher: Dispatcher;
  #state: State = 'idle';
  #address: ServerAddress | undefined;
  #closing: Promise<void> | undefined;
  #drained: (() => void) | undefined;
  #primary: boolean;
  /** Several processes form this server (cluster, or native with workers). */
  #workers: boolean;
  #metrics = new Metrics();
  #logger: Logger;
  /** What connections write through: the engine, counting messages and bytes out. */
  #counted: Engine;
  /** What all connections share (made once the hub exists; the engine opens none before listen). */
  #context!: ConnectionContext;
  /** Closes the engines count as protocolErrors that are not protocol errors (summed over workers as app counters). */
  #closes = { timeouts: 0, slowConsumers: 0 };
  #hub: TopicHub;
  /** The bus joined at listen(): the `bus` option, or the workers' IPC bus on the cluster engine. */
  #bus: Bus | undefined;

  constructor(options: ServerOptions = {}) {
    super();
    this.options = resolveOptions(options);
    this.#logger = resolveLogger(options.logger);
    this.engine = resolveEngineName(this.options.engine, options.logger === undefined ? undefined : this.#logger);
    // The cluster engine and the native engine with workers: processes that form one server; the primary runs no handlers.
    this.#workers = this.engine === 'cluster' || (this.engine === 'native' && this.options.nativeWorkers > 0);
    this.#primary = this.#workers && cluster.isPrimary;
    this.#dispatcher = new Dispatcher((error, connection) => this.#report(error, connection), this.#metrics, this);
    this.#engine = createEngine(this.engine, this.options, this.#sink());
    this.#counted = countingEngine(this.#engine, this.#metrics, this.options.framing);
    // Worker processes (the cluster engine, native with workers): every worker is a
    // node of its own (worker ids are never reused, a reload's included). Without an
    // external bus they share node:cluster's IPC bus. With one, every process joins
    // it, the primary too (as a node with no connection: the user's script runs
    // there as well, and its publish/sendTo/broadcast must reach the workers).
    const worker = this.#workers && !cluster.isPrimary ? cluster.worker : undefined;
    const external = this.options.bus !== undefined;
    this.#bus = external ? this.options.bus : this.#workers ? clusterIpcBus() : undefined;
    this.#hub = new TopicHub(
      this.#engine,
      {
        nodeId: worker ? `${this.options.nodeId}.w${worker.id}` : this.options.nodeId,
        maxTopicsPerConnection: this.options.maxTopicsPerConnection,
        framing: this.options.framing,
        // The cluster engine relays broadcasts between its workers itself.
        busBroadcast: external,
      },
      {
        gap: (gap) => this.emit('busgap', gap),
        error: (error) => this.#report(error),
      },
    );
    this.#context = { engine: this.#counted, framing: this.options.framing, requestTimeout: this.options.requestTimeout, hub: this.#hub };
  }

  /** The logger in force (the `logger` option, or one line per message on stderr). */
  get logger(): Logger {
    return this.#logger;
  }

  #closed(connection: Connection<M>, code: string, reason: string): void {
    const closeReason = closeReasonOf(code);
    this.#metrics.closed[closeReason]++;
    if (channels.close.hasSubscribers) {
      channels.close.publish({ server: this, connection, code, reason, closeReason });
    }
    if (code === 'ESLOW_CONSUMER' && channels.slowConsumer.hasSubscribers) {
      channels.slowConsumer.publish({ server: this, connection, code });
    }
    connectionInternals().closedBy(connection, code, reason);
  }

  /** This server's name on the bus: the first part of its connections' addresses. */
  get nodeId(): string {
    return this.#hub.nodeId;
  }

  /**
   * Connections from one address (a load balancer, a NAT) share one string:
   * tens of thousands of equal copies would each cost ~32 B. Bounded: past the
   * cap, new addresses are kept as they come.
   */
  #addressText(text: string): string {
    const known = this.#addresses.get(text);
    if (known !== undefined) return known;
    if (this.#addresses.size < ADDRESS_STRINGS) this.#addresses.set(text, text);
    return text;
  }

  #addresses = new Map<string, string>();

  #sink(): EngineSink {
    const connections = this.#connections;
    const raw = this.options.framing === 'raw';
    const framing = this.options.framing;
    const metrics = this.#metrics;
    const emitData = (connection: Connection<M>, payload: Buffer): void => {
      metrics.received(framing, payload.length);
      connection.emit('message', payload);
      // The old name of a raw chunk, kept because it costs one emit nobody listens to.
      if (raw) connection.emit('data', payload);
    };
    return {
      open: (id, remoteAddress, remotePort, tls) => {
        const connection = createConnection<M>(this.#context, id, this.#addressText(remoteAddress), remotePort, tls);
        connections.set(id, connection);
        metrics.opened++;
        if (channels.open.hasSubscribers) channels.open.publish({ server: this, connection });
        this.emit('connection', connection);
        return connection;
      },
      message: (id, type, flags, seq, payload) => {
        const connection = connections.get(id);
        if (!connection) return;
        metrics.received(framing, payload.length);
        this.#dispatcher.dispatch(connection as Connection, type, flags, seq, payload);
      },
      // The engine hands back what open() returned, until that connection's close().
      messageOf: (connection, type, flags, seq, payload) => {
        metrics.received(framing, payload.length);
        this.#dispatcher.dispatch(connection as Connection, type, flags, seq, payload);
      },
      data: (id, payload) => {
        const connection = connections.get(id);
        if (connection) emitData(connection, payload);
      },
      dataOf: (connection, payload) => emitData(connection as Connection<M>, payload),
      drain: (id) => connections.get(id)?.emit('drain'),
      end: (id) => {
        const connection = connections.get(id);
        if (connection) connectionInternals().peerEnded(connection, this.options.allowHalfOpen);
      },
      close: (id, code, reason) => {
        const connection = connections.get(id);
        if (!connection) return;
        connections.delete(id);
        if (code === 'ESLOW_CONSUMER') this.#closes.slowConsumers++;
        else if (timeoutCodes.has(code)) this.#closes.timeouts++;
        this.#closed(connection, code, reason);
        if (connections.size === 0) this.#drained?.();
      },
      error: (error) => this.#report(error),
      batchEnd: () => {
        this.#dispatcher.batchEnded();
        this.#engine.flush();
      },
      broadcastDrain: () => this.emit('broadcastDrain'),
      counters: () => ({
        ...this.#dispatcher.counters,
        ...this.#closes,
        topics: this.#hub.table.topics,
        subscriptions: this.#hub.table.subscriptions,
        // Cluster: the primary counts the union of the workers' topics (cluster-messages.ts sumStats).
        ...(this.#workers ? ({ topicNames: [...this.#hub.table.names()] } as unknown as Record<string, number>) : {}),
      }),
      metrics: () => metrics.snapshot(this.#dispatcher.counters.handlerErrors),
      requestClose: () => {
        void this.close();
      },
    };
  }

  #report(error: Error, connection?: Connection): void {
    const reported = toEdgepollError(error);
    if (this.listenerCount('error') > 0) this.emit('error', reported, connection as Connection<M> | undefined);
    else logError(this.#logger, 'error', `${reported.code}: ${reported.message}`, reported);
  }

  /**
   * Registers the handler of one message type (1 … 0xFEFF), replacing any
   * earlier one; `undefined` removes it (as on the client). Its return value
   * (Buffer, Uint8Array, string, nothing, or a Promise of one) is the reply
   * when the frame was a request.
   */
  handle<T extends TypeOf<M>>(type: T, handler: Handler<ReplyOf<M, T>, M> | undefined): this {
    checkType(type);
    if (handler !== undefined && typeof handler !== 'function') throw invalidOption('handler', 'a function', handler);
    this.#dispatcher.setHandler(type, handler as unknown as Handler | undefined);
    return this;
  }

  /**
   * Starts listening; resolves with the real address (the real port when 0 was
   * asked). `listen(port, host?)` is `listen({ port, host })`, as in node:net;
   * anything else that is not an options object rejects with `EINVALID_OPTION`.
   */
  listen(options?: ListenOptions): Promise<ServerAddress>;
  listen(port: number, host?: string): Promise<ServerAddress>;
  async listen(portOrOptions: ListenOptions | number = {}, hostArgument?: string): Promise<ServerAddress> {
    if (this.#state !== 'idle') {
      throw new EdgepollError('ESERVER_ALREADY_LISTENING', `the server is ${this.#state}; a server listens once`);
    }
    let options: ListenOptions;
    if (typeof portOrOptions === 'number') {
      options = hostArgument === undefined ? { port: portOrOptions } : { port: portOrOptions, host: hostArgument };
    } else {
      if (hostArgument !== undefined) throw invalidOption('host', 'given inside the options object (listen(options) takes one argument)', hostArgument);
      if (portOrOptions === null || typeof portOrOptions !== 'object') {
        throw invalidOption('listen options', 'a port number or { port, host, backlog, signal }', portOrOptions);
      }
      options = portOrOptions;
    }
    const port = integer('port', options.port, 0, { min: 0, max: limits.port.max });
    const host = options.host ?? '127.0.0.1';
    if (typeof host !== 'string' || host === '') throw invalidOption('host', 'a non-empty string', host);
    const backlog = integer('backlog', options.backlog, 511, { min: 1, max: 0x7fffffff });
    const path = options.path === undefined ? undefined : checkSocketPath(options.path);
    if (path !== undefined && (options.host !== undefined || options.port !== undefined)) {
      throw invalidOption('path', 'alone: a Unix socket path excludes host and port', path);
    }
    const { signal } = options;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidOption('signal', 'an AbortSignal', signal);
    if (signal?.aborted) {
      this.#state = 'closed';
      await this.#engine.shutdown();
      throw new EdgepollError('EABORTED', 'listen() was aborted before it started');
    }
    this.#state = 'listening';
    try {
      this.#address = await this.#engine.listen(host, port, backlog, path);
    } catch (error) {
      this.#state = 'closed';
      await this.#engine.shutdown();
      throw toEdgepollError(error);
    }
    this.#engine.ref();
    if (this.#bus) {
      this.#hub.join(this.#bus);
      // A bus reachable now is joined before listen() resolves, so a publish made
      // right after it reaches the other servers; an unreachable one costs at
      // most BUS_JOIN_WAIT, then the server serves locally and joins when it comes.
      await this.#hub.reached(BUS_JOIN_WAIT);
    }
    this.#metrics.startLagSampler();
    this.#logger.debug(`listening on ${this.#address.path ?? `${this.#address.host}:${this.#address.port}`} (engine ${this.engine})`);
    signal?.addEventListener('abort', () => void this.close(), { once: true });
    this.emit('listening', this.#address);
    return this.#address;
  }

  /** The listening address, or undefined before listen(). */
  address(): ServerAddress | undefined {
    return this.#address;
  }

  /** Open connections (on a cluster primary: of all workers). */
  get connections(): number {
    return this.#engine.connectionCount?.() ?? this.#connections.size;
  }

  /**
   * Pushes a frame (frame framing) or a message to every open connection.
   * Returns false when the engine is behind (native: a loop's inbox is full)
   * and the broadcast had to wait in the engine, or was dropped at its bound:
   * stop broadcasting until `'broadcastDrain'` (README "Backpressure").
   */
  broadcast<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>): boolean;
  broadcast(payload: Payload): boolean;
  broadcast(typeOrPayload: number | Payload, payload?: unknown): boolean {
    const bytes = this.#encode(typeOrPayload, payload);
    let sent = true;
    // On a bus the other processes are reached through it, not through the cluster relay as well
    // (a cluster primary's broadcastLocal reaches nobody: its workers take it from the bus).
    if (this.#hub.busStats && this.options.bus && this.#engine.broadcastLocal) this.#engine.broadcastLocal(bytes);
    else sent = this.#engine.broadcast(bytes);
    this.#hub.broadcast(bytes);
    return sent;
  }

  /** One message in this server's framing: a push frame of `type` (frame framing) or the payload framed. */
  #encode(typeOrPayload: number | Payload, payload: unknown): Buffer {
    if (this.options.framing === 'frame') {
      if (typeof typeOrPayload !== 'number') throw invalidOption('type', 'a message type (1 … 0xFEFF)', typeOrPayload);
      checkType(typeOrPayload);
      return encodeFrame(0, typeOrPayload, 0, toBytes(payload as Payload | undefined));
    }
    const bytes = toBytes(typeof typeOrPayload === 'number' ? (payload as Payload | undefined) : typeOrPayload);
    if (this.options.framing === 'length') return encodeLength(bytes);
    if (this.options.framing === 'line') return Buffer.concat([bytes, Buffer.from('\n')]);
    // A view, not a copy: the engines copy what they keep, and a broadcast storm must not double its garbage.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /**
   * Pushes a frame of `type` (seq 0) to every subscriber of `topic`: this
   * server's (native engine: fanned out in the loops, one shared copy, no JS
   * per receiver) and, on a bus, every other server's. Within a server each
   * subscriber gets it exactly once, in the order this publisher issued its
   * publishes; across servers at most once, in order. Returns false when a
   * local subscriber is above its high-water mark (its 'drain' follows) or the
   * engine had to queue the publish; subscribers above `maxBufferedAmount` are
   * closed as slow consumers and never slow the others. Throws EBAD_TOPIC for
   * an invalid name. Other framings: `publish(topic, payload)`.
   */
  publish<T extends TypeOf<M>>(topic: string, type: T, payload?: RequestOf<M, T>, options?: PublishOptions): boolean;
  publish(topic: string, payload: Payload, options?: PublishOptions): boolean;
  publish(topic: string, typeOrPayload: number | Payload, payload?: unknown, options?: PublishOptions): boolean {
    const frame = this.options.framing === 'frame';
    const bytes = this.#encode(typeOrPayload, frame ? payload : undefined);
    const opts = (frame ? options : (payload as PublishOptions | undefined)) ?? {};
    return this.#hub.publish(topic, bytes, opts.except as Connection | string | undefined);
  }

  /**
   * Pushes a frame of `type` to the connection with that `address`, on this
   * server or any other on the bus. An address that is gone is not an error
   * (nothing is delivered); one that is no address throws EBAD_ADDRESS.
   * Returns false when the (local) connection is above its high-water mark.
   */
  sendTo<T extends TypeOf<M>>(address: string, type: T, payload?: RequestOf<M, T>): boolean;
  sendTo(address: string, payload: Payload): boolean;
  sendTo(address: string, typeOrPayload: number | Payload, payload?: unknown): boolean {
    return this.#hub.sendTo(address, this.#encode(typeOrPayload, payload));
  }

  /** Counters: the demo's STATS reply. On the cluster engine, summed over all workers. */
  async stats(): Promise<ServerStats> {
    const engine = await this.#engine.stats();
    const app = { ...this.#dispatcher.counters, ...this.#closes, ...engine.app } as DispatchCounters & { timeouts: number; slowConsumers: number };
    // A cluster's engine stats carry every worker's snapshot, summed; elsewhere the server's own.
    const metrics = engine.metrics ?? this.#metrics.snapshot(this.#dispatcher.counters.handlerErrors);
    const loops = engine.loops.map((loop) => ({ ringFull: 0, backpressure: 0, ...loop })) as LoopStats[];
    return {
      engine: engine.engine,
      connections: engine.connections,
      accepted: engine.accepted,
      rejected: engine.rejected,
      topics: this.#hub.table.topics,
      subscriptions: this.#hub.table.subscriptions,
      ...app,
      ...metrics,
      // The engines count every close they cause; the vocabulary separates what was not a protocol error.
      protocolErrors: Math.max(0, engine.protocolErrors - app.timeouts - app.slowConsumers),
      ...(this.#hub.busStats ? { bus: this.#hub.busStats } : {}),
      closed: { ...metrics.closed, serverFull: engine.rejected },
      loops,
    };
  }

  /**
   * Native engine with `workers`, in the primary: starts a new generation of
   * workers (your script, fresh from disk); once all of it listens, the old
   * generation stops accepting, sends GOAWAY spread over `goawaySpread`,
   * drains within `shutdownTimeout` and exits. No connection attempt is
   * refused meanwhile (the listening socket never closes). Resolves when the
   * old generation is gone; rejects with `ERELOAD_FAILED` (cause in the
   * message) when the new one does not start, the old one still serving.
   */
  async reload(): Promise<void> {
    if (!this.#engine.reload || this.#state !== 'listening') {
      throw new EdgepollError(
        'ERELOAD_FAILED',
        this.#engine.reload ? `the server is ${this.#state}` : "reload() needs engine 'native' with workers, in the primary",
      );
    }
    await this.#engine.reload();
  }

  /**
   * Graceful shutdown (docs/PROTOCOL.md section 4): stops accepting at once, sends
   * GOAWAY (frame framing), lets requests in flight finish, and after
   * `drainTimeout` closes what is still open with CLOSE `shutdown`.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const wasListening = this.#state === 'listening';
    this.#state = 'closing';
    if (wasListening) {
      await this.#engine.stopAccepting();
      if (!this.#primary && this.#connections.size > 0) {
        const spread = Math.min(this.options.goawaySpread, Math.floor(this.options.shutdownTimeout / 2));
        const spreading = this.options.framing === 'frame' && spread > 0 ? this.#spreadGoaway(spread) : undefined;
        if (this.options.framing === 'frame' && !spreading) this.#engine.broadcast(encodeFrame(0, TYPE_GOAWAY, 0, new Uint8Array(0)));
        this.#engine.flush();
        await this.#waitDrained(this.options.shutdownTimeout);
        spreading?.();
        for (const id of [...this.#connections.keys()]) this.#engine.close(id, 'ESHUTDOWN');
        this.#engine.flush();
        // CLOSE reaches a peer that reads within this; one that does not read
        // or never closes its side must not hold the shutdown past
        // drainTimeout + 1 s (engine.shutdown() below destroys what is left).
        await this.#waitDrained(CLOSE_FLUSH_MS);
      }
    }
    await this.#engine.shutdown();
    await this.#hub.leave();
    for (const connection of [...this.#connections.values()]) this.#closed(connection, 'ESHUTDOWN', 'shutdown');
    this.#connections.clear();
    this.#metrics.stopLagSampler();
    this.#state = 'closed';
    this.emit('close');
  }

  /**
   * GOAWAY to each open connection at evenly spaced times over `spread` ms
   * (one timer walking the list), so that their clients do not all reconnect
   * in the same instant. Returns what stops it when the drain ends.
   */
  #spreadGoaway(spread: number): () => void {
    const ids = [...this.#connections.keys()];
    const step = spread / ids.length;
    const started = Date.now();
    const empty = new Uint8Array(0);
    let next = 0;
    let timer: NodeJS.Timeout | undefined;
    const tick = (): void => {
      const due = Math.min(ids.length, Math.floor((Date.now() - started) / step) + 1);
      for (; next < due; next++) {
        if (this.#connections.has(ids[next])) this.#engine.sendFrame(ids[next], 0, TYPE_GOAWAY, 0, empty);
      }
      this.#engine.flush();
      if (next < ids.length) timer = setTimeout(tick, Math.max(1, started + next * step - Date.now()));
    };
    tick();
    return () => clearTimeout(timer);
  }

  #waitDrained(timeout: number): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#drained = undefined;
        resolve();
      };
      const timer = setTimeout(done, timeout);
      this.#drained = done;
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Creates a server (not yet listening). Throws EINVALID_OPTION for a bad option. */
export function createServer<M extends MessageMap = AnyMessages>(options?: ServerOptions): Server<M> {
  return new Server<M>(options);
}
