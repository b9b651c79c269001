/**
 * The `net` engine: one process, one `node:net` server, the same behaviour as
 * the native engine below the {@link Engine} interface (framing, PING/PONG,
 * heartbeats, deadlines, outbound bounds, maxConnections), so the server layer
 * sees identical events. It is the fallback where the addon cannot load and
 * the baseline of every benchmark, so the hot path avoids per-message
 * allocations: one decoder callback shared by all connections, writes corked
 * per socket and uncorked once per tick, frames written as one pooled buffer.
 *
 * Owns: the listening server, the sockets, their decoders and deadlines.
 * Does not own: handlers, request/reply, graceful-shutdown order (server.ts).
 * Runs on: the JS thread. Deadlines run on the process's one coarse timer
 * (src/timer.ts); a read only stores a timestamp.
 */
import net from 'node:net';
import { Decoder } from '../codec';
import { EdgepollError, closeReasons, type EngineCode } from '../errors';
import { CONTROL_FIRST, HEADER_SIZE, TYPE_CLOSE, TYPE_PING, TYPE_PONG, encodeFrame, writeHeader } from '../protocol';
import { ProxyReceiver, type ProxyHeader } from '../proxy';
import { resolutionFor, sharedTimer, type SweepTimer } from '../timer';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from './engine';
import { CLOSED, CLOSING, NetConnection, OPEN, type Admission, type Deadlines, type NetCounters } from './net-connection';

export type { Admission, NetCounters } from './net-connection';

/** How long a closing connection may take to flush before it is destroyed (ms). */
const CLOSE_GRACE = 1000;
/** Payloads up to this size are copied behind their header into one buffer (one write). */
const SMALL_FRAME = 16 * 1024;
/** An engine-level error of one code is reported at most this often (ms). */
const ERROR_INTERVAL = 1000;

const EMPTY = new Uint8Array(0);

class NetEngine implements Engine {
  readonly kind = 'net' as const;
  private server: net.Server | undefined;
  private readonly connections = new Map<number, NetConnection>();
  private readonly rejecting = new Map<net.Socket, number>();
  private readonly counters: NetCounters = { connections: 0, accepted: 0, rejected: 0, protocolErrors: 0, ringFull: 0, backpressure: 0 };
  private readonly timer: SweepTimer;
  private readonly frameFraming: boolean;
  private readonly deadlines: Deadlines;
  private nextId = 1;
  private pingSeq = 0;
  private corked: NetConnection[] = [];
  private spare: NetConnection[] = [];
  private flushScheduled = false;
  private referenced = true;
  private stopped = false;
  private readonly lastErrorAt = new Map<string, number>();
  /** The connection whose bytes are being decoded (one shared decoder callback). */
  private current: NetConnection | undefined;
  private readonly closeWaiters: Array<() => void> = [];
  /** PROXY protocol: reads each socket's header before accept() sees it (src/proxy.ts). */
  private readonly proxy: ProxyReceiver | undefined;
  private proxyErrors = 0;

  constructor(
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
    private readonly admission?: Admission,
  ) {
    this.timer = sharedTimer();
    this.proxy = options.proxyProtocol ? new ProxyReceiver(options.proxyProtocol) : undefined;
    this.frameFraming = options.framing === 'frame';
    this.deadlines = {
      frameTimeout: options.frameTimeout,
      heartbeatInterval: this.frameFraming ? options.heartbeatInterval : 0,
      heartbeatTimeout: options.heartbeatTimeout,
      idleTimeout: options.idleTimeout,
    };
  }

  listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    if (this.server) return Promise.reject(new EdgepollError('ESERVER_ALREADY_LISTENING'));
    return new Promise((resolve, reject) => {
      const server = net.createServer(
        { allowHalfOpen: true, noDelay: true, highWaterMark: this.options.highWaterMark },
        (socket) => this.accept(socket),
      );
      this.server = server;
      const onListenError = (error: NodeJS.ErrnoException): void => {
        this.server = undefined;
        reject(new EdgepollError(error.code ?? 'EIO', error.message, { cause: error }));
      };
      server.once('error', onListenError);
      // node:net listens dual-stack on '::' (ipv6Only defaults to false), as the native engine does.
      server.listen(path !== undefined ? { path, backlog } : { host, port, backlog }, () => {
        server.off('error', onListenError);
        server.on('error', (error: NodeJS.ErrnoException) => this.reportError(error));
        if (!this.referenced) server.unref();
        // Stopped while the bind was in flight (shutdown during listen): do not keep listening.
        if (this.stopped) {
          server.close();
          resolve(path !== undefined ? { host: '', port: 0, path } : { host, port });
          return;
        }
        const o = this.options;
        // The close grace needs no precision, so it does not set the resolution:
        // with default options the sweep runs once a second.
        const timeouts = [o.idleTimeout, o.frameTimeout];
        if (this.frameFraming) timeouts.push(o.heartbeatInterval, o.heartbeatTimeout);
        this.timer.add(this, resolutionFor(timeouts));
        if (path !== undefined) return resolve({ host: '', port: 0, path });
        const address = server.address();
        const bound = typeof address === 'object' && address ? address.port : port;
        resolve({ host, port: bound });
      });
    });
  }

  // ---- inbound -------------------------------------------------------------

  private accept(socket: net.Socket, header?: ProxyHeader): void {
    socket.setNoDelay(true);
    if (this.proxy && !header) {
      // Nothing is served, counted or seen by the sink before a complete header from a trusted proxy.
      this.proxy.receive(socket, (received) => this.accept(socket, received), (code) => {
        if (!code) return; // closed before a byte (a TCP health check) or a socket error
        this.counters.protocolErrors++;
        this.proxyErrors++;
      });
      return;
    }
    const limit = this.options.maxConnections;
    if (this.stopped) {
      // Handed over after stopAccepting (a cluster primary's connection in flight).
      this.reject(socket, 'ESHUTDOWN');
      return;
    }
    const admission = this.admission;
    if (admission && limit > 0) {
      // The limit is global (a cluster): wait for the primary's answer, socket unread meanwhile.
      socket.on('error', () => {});
      admission.admit((admitted) => {
        if (!admitted) {
          this.counters.rejected++;
          this.reject(socket, 'ESERVER_FULL');
        } else if (socket.destroyed || this.stopped) {
          admission.release();
          if (!socket.destroyed) this.reject(socket, 'ESHUTDOWN');
        } else {
          this.serve(socket, true, header);
        }
      });
      return;
    }
    if (limit > 0 && this.counters.connections >= limit) {
      this.counters.rejected++;
      this.reject(socket, 'ESERVER_FULL');
      return;
    }
    this.serve(socket, false, header);
  }

  private serve(socket: net.Socket, admitted: boolean, header?: ProxyHeader): void {
    const now = this.timer.now();
    const decoder = this.options.framing === 'raw'
      ? undefined
      : new Decoder(this.options.framing, this.options.maxFrame, 'server');
    const conn = new NetConnection(this.nextId++, socket, decoder, now);
    this.connections.set(conn.id, conn);
    this.counters.connections++;
    this.counters.accepted++;
    socket.on('data', (chunk: Buffer) => this.onData(conn, chunk));
    socket.on('end', () => this.onEnd(conn));
    socket.on('drain', () => this.onDrain(conn));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (!conn.code) conn.code = error.code ?? 'EIO';
    });
    socket.on('close', () => {
      this.onClose(conn);
      if (admitted) this.admission?.release();
    });
    if (header) this.sink.open(conn.id, header.remoteAddress, header.remotePort);
    else this.sink.open(conn.id, socket.remoteAddress ?? '', socket.remotePort ?? 0);
    this.sink.batchEnd();
    if (header?.rest) this.onData(conn, header.rest); // protocol data that came with the PROXY header
  }

  /** Not served: CLOSE with the reason (frame framing), FIN, destroyed at the latest after the grace period. */
  private reject(socket: net.Socket, code: 'ESERVER_FULL' | 'ESHUTDOWN'): void {
    socket.on('error', () => {});
    socket.on('close', () => this.rejecting.delete(socket));
    socket.resume(); // read and drop, so the peer's FIN is seen and close completes
    this.rejecting.set(socket, this.timer.now() + CLOSE_GRACE);
    if (this.frameFraming) {
      socket.end(encodeFrame(0, TYPE_CLOSE, 0, Buffer.from(closeReasons[code]!)));
    } else {
      socket.end();
    }
  }

  private onData(conn: NetConnection, chunk: Buffer): void {
    if (conn.state !== OPEN) return; // closing: bytes after the decision are never delivered
    const now = this.timer.now();
    conn.lastRead = now;
    const decoder = conn.decoder;
    if (!decoder) {
      this.sink.data(conn.id, chunk);
      this.sink.batchEnd();
      return;
    }
    this.current = conn;
    let code: EngineCode | '';
    try {
      code = decoder.feed(chunk, this.onMessage);
    } finally {
      this.current = undefined;
    }
    if (code) {
      this.counters.protocolErrors++;
      this.closeWith(conn, code, closeReasons[code] ?? code);
    } else if (conn.state === OPEN) {
      if (!decoder.midMessage) conn.messageStart = 0;
      else if (conn.messageStart === 0) conn.messageStart = now;
    }
    this.sink.batchEnd();
  }

  /** The decoder's callback for every connection (the connection is `this.current`). */
  private readonly onMessage = (type: number, flags: number, seq: number, payload: Buffer): boolean => {
    const conn = this.current!;
    if (conn.state !== OPEN) return false;
    conn.messageStart = 0;
    if (!this.frameFraming) {
      this.sink.data(conn.id, payload);
      return conn.state === OPEN;
    }
    if (type >= CONTROL_FIRST) {
      if (type === TYPE_PING) {
        this.enqueue(conn, encodeFrame(0, TYPE_PONG, seq, payload));
      } else if (type === TYPE_CLOSE) {
        // The peer is closing: flush what we queued, then FIN; nothing more is delivered.
        this.closeWith(conn, 'ECLOSED_BY_PEER', payload.toString('utf8'), false);
        return false;
      }
      // PONG: life was already recorded by the read. GOAWAY from a client is
      // refused by the decoder (EUNEXPECTED_GOAWAY) before it gets here.
      return conn.state === OPEN;
    }
    this.sink.message(conn.id, type, flags, seq, payload);
    return conn.state === OPEN;
  };

  private onEnd(conn: NetConnection): void {
    if (conn.state !== OPEN) return;
    this.sink.end(conn.id);
    this.sink.batchEnd();
  }

  private onDrain(conn: NetConnection): void {
    if (conn.paused) {
      conn.paused = false;
      conn.socket.resume();
    }
    if (conn.wantDrain && conn.state === OPEN) {
      conn.wantDrain = false;
      this.sink.drain(conn.id);
      this.sink.batchEnd();
    }
  }

  private onClose(conn: NetConnection): void {
    if (conn.state === CLOSED) return;
    conn.state = CLOSED;
    this.connections.delete(conn.id);
    this.counters.connections--;
    this.sink.close(conn.id, conn.code || 'OK', conn.reason);
    this.sink.batchEnd();
    if (this.connections.size === 0 && this.closeWaiters.length) {
      for (const resolve of this.closeWaiters.splice(0)) resolve();
    }
  }

  // ---- outbound ------------------------------------------------------------

  /** Writes corked; returns false above the high-water mark; closes above the hard limit. */
  private enqueue(conn: NetConnection, bytes: Uint8Array): boolean {
    const socket = conn.socket;
    if (!conn.corked) {
      conn.corked = true;
      socket.cork();
      this.corked.push(conn);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flushTick);
      }
    }
    const below = socket.write(bytes);
    if (socket.writableLength > this.options.maxBufferedAmount) {
      this.counters.protocolErrors++;
      this.destroyWith(conn, 'ESLOW_CONSUMER', closeReasons.ESLOW_CONSUMER!);
      return false;
    }
    if (!below && !conn.paused) {
      this.counters.backpressure++;
      // Stop reading a peer we cannot answer fast enough; 'drain' resumes it.
      conn.paused = true;
      socket.pause();
    }
    return below;
  }

  private writable(id: number): NetConnection | undefined {
    const conn = this.connections.get(id);
    if (!conn || conn.state !== OPEN || conn.socket.writableEnded || conn.socket.destroyed) return undefined;
    return conn;
  }

  write(id: number, bytes: Uint8Array): boolean {
    const conn = this.writable(id);
    if (!conn) return false;
    const below = this.enqueue(conn, bytes);
    if (!below && conn.state === OPEN) conn.wantDrain = true;
    return below;
  }

  sendFrame(id: number, flags: number, type: number, seq: number, payload: Uint8Array): boolean {
    const conn = this.writable(id);
    if (!conn) return false;
    let below: boolean;
    if (payload.length <= SMALL_FRAME) {
      below = this.enqueue(conn, encodeFrame(flags, type, seq, payload));
    } else {
      // Large payloads are not copied: header and payload go out in one writev.
      const header = Buffer.allocUnsafe(HEADER_SIZE);
      writeHeader(header, 0, flags, type, payload.length, seq);
      this.enqueue(conn, header);
      below = conn.state === OPEN && this.enqueue(conn, payload);
    }
    if (!below && conn.state === OPEN) conn.wantDrain = true;
    return below;
  }

  bufferedAmount(id: number): number {
    return this.connections.get(id)?.socket.writableLength ?? 0;
  }

  broadcast(bytes: Uint8Array): boolean {
    // One copy, so the caller may reuse its buffer; every receiver shares it.
    const shared = Buffer.from(bytes);
    for (const conn of this.connections.values()) {
      if (conn.state === OPEN && !conn.socket.writableEnded) this.enqueue(conn, shared);
    }
    // Handed to every socket synchronously: nothing waits in the engine, each
    // receiver's own bounds (highWaterMark, maxBufferedAmount) apply.
    return true;
  }

  private readonly flushTick = (): void => {
    this.flush();
  };

  flush(): void {
    this.flushScheduled = false;
    const list = this.corked;
    if (list.length === 0) return;
    // Two lists swapped, so a flush allocates nothing.
    this.corked = this.spare;
    for (const conn of list) {
      conn.corked = false;
      if (!conn.socket.destroyed) conn.socket.uncork();
    }
    list.length = 0;
    this.spare = list;
  }

  private flushOne(conn: NetConnection): void {
    if (!conn.corked) return;
    conn.corked = false;
    conn.socket.uncork();
  }

  // ---- closing -------------------------------------------------------------

  end(id: number): void {
    const conn = this.writable(id);
    if (!conn) return;
    this.flushOne(conn);
    conn.socket.end();
  }

  destroy(id: number): void {
    const conn = this.connections.get(id);
    if (conn && conn.state !== CLOSED) this.destroyWith(conn, 'EDESTROYED', '');
  }

  close(id: number, code: EngineCode, reason?: string): void {
    const conn = this.connections.get(id);
    if (conn) this.closeWith(conn, code, reason ?? closeReasons[code] ?? '');
  }

  /** Graceful: CLOSE frame (frame framing), flush, FIN; destroyed after the grace period. */
  private closeWith(conn: NetConnection, code: string, reason: string, sendClose = true): void {
    if (conn.state !== OPEN) return;
    conn.state = CLOSING;
    conn.code = code;
    conn.reason = reason;
    conn.closeAt = this.timer.now() + CLOSE_GRACE;
    const socket = conn.socket;
    if (socket.destroyed) return;
    if (this.frameFraming && sendClose && !socket.writableEnded) {
      socket.write(encodeFrame(0, TYPE_CLOSE, 0, Buffer.from(reason)));
    }
    this.flushOne(conn);
    socket.end();
    // Keep reading (and dropping) so the peer's FIN completes the close.
    if (conn.paused) {
      conn.paused = false;
      socket.resume();
    }
  }

  private destroyWith(conn: NetConnection, code: string, reason: string): void {
    if (conn.state === CLOSED) return;
    if (conn.state === OPEN || !conn.code) {
      conn.code = code;
      conn.reason = reason;
    }
    conn.state = CLOSING;
    conn.corked = false;
    conn.socket.destroy();
  }

  /** The coarse timer's visit: heartbeats, idle and frame deadlines, forced closes. */
  sweep(now: number): void {
    for (const conn of this.connections.values()) {
      if (conn.state === CLOSING) {
        if (now >= conn.closeAt) conn.socket.destroy();
        continue;
      }
      if (conn.state !== OPEN) continue;
      const due = conn.due(now, this.deadlines);
      if (due === 'PING') {
        if (!conn.socket.writableEnded) {
          conn.pingAt = now;
          // Like the native engine: a nonzero sequence per PING, so PONGs are distinguishable.
          this.pingSeq = this.pingSeq >= 0xffffffff ? 1 : this.pingSeq + 1;
          this.enqueue(conn, encodeFrame(0, TYPE_PING, this.pingSeq, EMPTY));
        }
      } else if (due) {
        this.counters.protocolErrors++;
        this.closeWith(conn, due, closeReasons[due]!);
      }
    }
    for (const [socket, closeAt] of this.rejecting) if (now >= closeAt) socket.destroy();
  }

  private reportError(error: NodeJS.ErrnoException): void {
    const code = error.code ?? 'EIO';
    const now = this.timer.now();
    const last = this.lastErrorAt.get(code);
    if (last !== undefined && now - last < ERROR_INTERVAL) return;
    this.lastErrorAt.set(code, now);
    this.sink.error(new EdgepollError(code, error.message, { cause: error }));
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Counters of this process (also used by the cluster engine's workers). */
  counts(): NetCounters {
    return { ...this.counters };
  }

  stats(): Promise<EngineStats> {
    const c = this.counts();
    return Promise.resolve({ engine: 'net', ...c, loops: [{ ...c, proxyErrors: this.proxyErrors }] });
  }

  stopAccepting(): Promise<void> {
    this.stopped = true;
    const server = this.server;
    if (!server || !server.listening) return Promise.resolve();
    // server.close()'s callback waits for every connection; the listening
    // handle itself is closed at once, which is all this promises.
    server.close();
    return new Promise((resolve) => setImmediate(resolve));
  }

  async shutdown(): Promise<void> {
    await this.stopAccepting();
    this.proxy?.cancelAll();
    this.timer.delete(this);
    for (const socket of this.rejecting.keys()) socket.destroy();
    if (this.connections.size === 0) return;
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    for (const conn of this.connections.values()) this.destroyWith(conn, 'ESHUTDOWN', '');
    await closed;
  }

  ref(): void {
    this.referenced = true;
    this.server?.ref();
  }

  unref(): void {
    this.referenced = false;
    this.server?.unref();
  }

  connectionCount(): number {
    return this.counters.connections;
  }
}

/** The net engine with the counters the cluster engine reads. */
export type NetEngineInstance = Engine & { counts(): NetCounters; connectionCount(): number };

/** Builds the `node:net` engine (see the file comment). */
export function createNetEngine(options: EngineOptions, sink: EngineSink, admission?: Admission): NetEngineInstance {
  return new NetEngine(options, sink, admission);
}
