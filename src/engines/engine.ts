/**
 * The contract between the server layer and an engine (native, net, cluster).
 *
 * An engine owns sockets, framing, PING/PONG, heartbeats, deadlines, outbound
 * bounds and connection limits. The server layer above it owns handlers,
 * request/reply pairing, the Connection objects and graceful-shutdown order.
 * Data flows down through {@link Engine} and up through {@link EngineSink}.
 */
import type { EdgepollError, EngineCode } from '../errors';
import type { Framing } from '../protocol/constants';
import type { MetricsSnapshot } from '../server/metrics';
import type { ConnectionTls } from '../proxy/header';

/** Options after validation and defaults (see src/server/options.ts). */
export interface EngineOptions {
  framing: Framing;
  /** Largest payload of `frame`/`length`, longest line of `line`. */
  maxFrame: number;
  /** Native: epoll loops (threads). */
  threads: number;
  /** Cluster: worker processes. */
  workers: number;
  /** Native: worker processes sharing one listening socket (src/engines/workers/engine.ts); 0 = this process alone. */
  nativeWorkers?: number;
  /** Graceful shutdown: GOAWAYs go out spread over this many ms (at most half of shutdownTimeout). */
  goawaySpread?: number;
  /** Graceful shutdown: time connections get after GOAWAY. */
  shutdownTimeout?: number;
  /** Outbound bytes above which writes report backpressure. */
  highWaterMark: number;
  /** Outbound bytes above which the connection is closed as a slow consumer. */
  maxBufferedAmount: number;
  /** 0 = no heartbeat. frame framing only. */
  heartbeatInterval: number;
  heartbeatTimeout: number;
  /** 0 = none. Closes a silent connection (raw/line/length framings). */
  idleTimeout: number;
  /** Time allowed to complete a message once its first byte arrived. */
  frameTimeout: number;
  /** 0 = unlimited. */
  maxConnections: number;
  /** Native: bytes one loop holds for messages still arriving, over all its connections (ENOMEM past it). */
  maxPartialBytes: number;
  allowHalfOpen: boolean;
  /** Native: how connections are accepted. */
  acceptMode: 'reuseport' | 'exclusive';
  /** Native diagnostic: answer in the loop without JS (echo), for the bridge-cost benchmark. */
  nativeEcho: boolean;
  /** Native diagnostic: level- instead of edge-triggered epoll. */
  triggerMode: 'edge' | 'level';
  /**
   * PROXY protocol v1/v2 receiving (src/proxy/header.ts, native/proxy.cc): every
   * connection starts with a header from a `trusted` source (IPs/CIDRs),
   * complete within `timeout` ms; else it is aborted (EPROXY_*), unseen by the
   * sink. Absent or false = off.
   */
  proxyProtocol?: { trusted: string[]; timeout: number } | false;
}

/** Events an engine reports to the server layer, in order per connection. */
export interface EngineSink {
  /**
   * A connection was accepted (and counted against maxConnections). `tls`: what
   * the PROXY v2 header said about the client's TLS connection to the proxy.
   * May return a handle (the server: the Connection) that an engine passes to
   * {@link messageOf}/{@link dataOf} instead of the id.
   */
  open(id: number, remoteAddress: string, remotePort: number, tls?: ConnectionTls): unknown;
  /**
   * Optional: message() for the connection whose open() returned `handle`, so
   * that the sink need not look the connection up by id once per message
   * (the native engine; S3 profile, issue 13).
   */
  messageOf?(handle: unknown, type: number, flags: number, seq: number, payload: Buffer): void;
  /** Optional: data() by handle, as {@link messageOf}. */
  dataOf?(handle: unknown, payload: Buffer): void;
  /** frame framing: one application frame (control frames never arrive here). */
  message(id: number, type: number, flags: number, seq: number, payload: Buffer): void;
  /** length/line: one message; raw: one chunk. */
  data(id: number, payload: Buffer): void;
  /** The outbound queue fell below the low-water mark after a write reported backpressure. */
  drain(id: number): void;
  /**
   * The peer half-closed (FIN). The engine does not end its own side: the
   * server does, once the replies to what arrived before the FIN are out
   * (unless allowHalfOpen), because only it knows which handlers are in flight.
   */
  end(id: number): void;
  /** The connection is gone; `code` is 'OK' for a clean close, `reason` the CLOSE text if any. */
  close(id: number, code: string, reason: string): void;
  /** An engine-level problem (EMFILE, …), already rate-limited by the engine. */
  error(error: EdgepollError): void;
  /** Called after each batch of events, so the server can flush corked writes once. */
  batchEnd(): void;
  /** Broadcasts queued while broadcast() returned false have all been handed to the connections. */
  broadcastDrain?(): void;
  /**
   * Application-level counters (the server's unhandled, unmatched, handlerErrors).
   * A multi-process engine (cluster) sums them over its processes into EngineStats.app.
   */
  counters?(): Record<string, number>;
  /** The server layer's metrics; a cluster engine sums every process's into EngineStats.metrics. */
  metrics?(): MetricsSnapshot;
  /** The engine asks the server to shut down gracefully (a cluster worker told to drain by its primary). */
  requestClose(): void;
}

/** Counters of one engine (per loop for native, per process for cluster). */
export interface EngineStats {
  engine: 'native' | 'net' | 'cluster';
  connections: number;
  accepted: number;
  /** Connections refused because of maxConnections. */
  rejected: number;
  /** Connections closed by a protocol error, timeout or slow consumer. */
  protocolErrors: number;
  loops: Array<Record<string, number>>;
  /** Sums of every process's {@link EngineSink.counters} (cluster only). */
  app?: Record<string, number>;
  /** Sums of every process's {@link EngineSink.metrics} (cluster only). */
  metrics?: MetricsSnapshot;
}

/** Where an engine listens: TCP host and port, or a Unix socket's path (host '', port 0). */
export interface ListenAddress {
  host: string;
  port: number;
  path?: string;
}

export interface Engine {
  readonly kind: 'native' | 'net' | 'cluster';
  /**
   * Binds and listens; rejects with an EdgepollError carrying the errno name.
   * With `path`, listens on a Unix socket there instead (host and port unused;
   * the address reports host '' and port 0 with the path).
   */
  listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress>;
  /** Queues bytes already in the connection's framing. false = above the high-water mark; 'drain' follows. */
  write(id: number, bytes: Uint8Array): boolean;
  /** Queues one frame (header + payload) without concatenating in JS where avoidable. */
  sendFrame(id: number, flags: number, type: number, seq: number, payload: Uint8Array): boolean;
  /** Bytes queued for the connection and not yet handed to the kernel (best estimate). */
  bufferedAmount(id: number): number;
  /** Flushes and half-closes (FIN). */
  end(id: number): void;
  /** Closes at once, dropping queued output. */
  destroy(id: number): void;
  /**
   * Closes gracefully with a code: in frame framing sends CLOSE with `reason`
   * (default: the code's standard reason), flushes (bounded in time), closes.
   */
  close(id: number, code: EngineCode, reason?: string): void;
  /**
   * Sends already-framed bytes to every open connection; each receiver's bounds apply.
   * false = queued (or, past the engine's bound, dropped) behind a busy engine:
   * wait for the sink's broadcastDrain before the next one.
   */
  broadcast(bytes: Uint8Array): boolean;
  /**
   * Topics (issue 14): the engine keeps each connection's memberships (native:
   * in its loop) and drops them itself when the connection closes. Commands
   * keep their order with the connection's writes.
   */
  subscribe(id: number, topic: string, bytes: Buffer): void;
  unsubscribe(id: number, topic: string, bytes: Buffer): void;
  /**
   * Sends already-framed bytes to every local member of the topic except
   * connection `except` (-1: none), one shared copy, each receiver's bounds
   * applying. false = the engine had to queue it (its loops' inboxes were full).
   */
  publish(topic: string, bytes: Buffer, frame: Uint8Array, except: number): boolean;
  /** Ids of connections whose outbound queue is above the high-water mark now (best estimate). */
  backlogged(): ReadonlySet<number>;
  /** Cluster worker: broadcast to this process's connections only (an external bus reaches the others). */
  broadcastLocal?(bytes: Uint8Array): void;
  /** Flushes writes corked during this tick (called by the server; engines may also self-schedule). */
  flush(): void;
  /** Closes the listening socket(s); open connections stay. */
  stopAccepting(): Promise<void>;
  /** Counters. */
  stats(): Promise<EngineStats>;
  /** Releases every resource (threads, handles). All connections are destroyed. Idempotent. */
  shutdown(): Promise<void>;
  /** Whether the engine keeps the process alive (listening servers ref, closed ones unref). */
  ref(): void;
  unref(): void;
  /** Open connections, when the engine knows more than the server sees (cluster primary: all workers'). */
  connectionCount?(): number;
  /** Native workers primary: starts a new generation, retires the old one (src/engines/workers/primary.ts). */
  reload?(): Promise<void>;
}

/** Builds an engine that reports to `sink`. */
export type EngineFactory = (options: EngineOptions, sink: EngineSink) => Engine;

/** Connection ids carry loop, slot and generation (see docs/internals.md). */
export const ID_LOOP_SPAN = 256;
export const ID_SLOT_SPAN = 4194304; // 2^22
export function makeId(loop: number, slot: number, generation: number): number {
  return generation * (ID_LOOP_SPAN * ID_SLOT_SPAN) + slot * ID_LOOP_SPAN + loop;
}
export function idLoop(id: number): number {
  return id % ID_LOOP_SPAN;
}
export function idSlot(id: number): number {
  return Math.floor(id / ID_LOOP_SPAN) % ID_SLOT_SPAN;
}
export function idGeneration(id: number): number {
  return Math.floor(id / (ID_LOOP_SPAN * ID_SLOT_SPAN));
}
