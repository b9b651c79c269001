/**
 * The `net` engine: one process, one `node:net` server, the same behaviour as
 * the native engine below the {@link Engine} interface (framing, PING/PONG,
 * heartbeats, deadlines, outbound bounds, maxConnections), so the server layer
 * sees identical events. It is the fallback where the addon cannot load and
 * measured against a plain node:net server, so the hot path avoids
 * per-message allocations and writes: one decoder callback shared by all
 * connections, small frames encoded back to back into one buffer per
 * connection and handed to the socket with one write per tick (the socket is
 * corked only when a large frame or shared buffer is written in between, so
 * the order holds and the usual case costs one plain write).
 *
 * Owns: the listening server, the sockets, their decoders and deadlines.
 * Does not own: handlers, request/reply, graceful-shutdown order (server.ts).
 * Runs on: the JS thread. Deadlines run on the process's one coarse timer
 * (src/engines/net/timer.ts); a read only stores a timestamp.
 */
import net from 'node:net';
import { Decoder } from '../../protocol/codec';
import { EdgepollError, closeReasons, type EngineCode } from '../../errors';
import { CONTROL_FIRST, HEADER_SIZE, TYPE_CLOSE, TYPE_PING, TYPE_PONG, encodeFrame, writeHeader } from '../../protocol/constants';
import { ProxyReceiver, type ProxyHeader } from '../../proxy/header';
import { resolutionFor, sharedTimer, type SweepTimer } from './timer';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import { CLOSED, CLOSING, NetConnection, OPEN, type Admission, type Deadlines, type NetCounters } from './connection';

export type { Admission, NetCounters } from './connection';

/** How long a closing connection may take to flush before it is destroyed (ms). */
const CLOSE_GRACE = 1000;
/** Frames up to this size are copied into the connection's coalescing buffer (one write per tick). */
const SMALL_FRAME = 16 * 1024;
/**
 * First coalescing buffer of a connection. Later ones start as big as the
 * connection's last flush (outHint), so a steady load allocates one buffer of
 * the right size per flush (small ones from Node's Buffer pool) and never grows.
 */
const OUT_START = 256;
/** A coalescing buffer is handed to the socket once it holds this much, before growing further. */
const OUT_MAX = 64 * 1024;
/** An engine-level error of one code is reported at most this often (ms). */
const ERROR_INTERVAL = 1000;

const EMPTY = new Uint8Array(0);
/**
 * One sweep slice: connections looked at, and PINGs or closes made. The rest
 * of a pass runs in a later setImmediate, after the poll phase has read the
 * sockets, so 19,000 heartbeats due at once never hold the thread in one
 * callback (issue 17), and a connection is judged after the bytes it sent
 * during a JS stall were read (issue 11 item 2).
 */
const SWEEP_VISITS = 2048;
const SWEEP_ACTIONS = 64;

/** A served socket knows its connection, so one set of event handlers serves them all (no closures per connection). */
const CONN = Symbol('edgepoll.netConnection');
type Served = net.Socket & { [CONN]: NetConnection };

function socketError(this: Served, error: NodeJS.ErrnoException): void {
  const conn = this[CONN];
  if (!conn.code) conn.code = error.code ?? 'EIO';
}

class NetEngine implements Engine {
  readonly kind = 'net' as const;
  private server: net.Server | undefined;
  private readonly connections = new Map<number, NetConnection>();
  /** Topics (issue 14): topic → members, and each member's topics (dropped at close). */
  private readonly topicMembers = new Map<string, Set<NetConnection>>();
  private readonly memberships = new Map<number, Set<string>>();
  /** Connections whose socket refused a write (above the high-water mark) until 'drain'. */
  private readonly above = new Set<number>();
  private readonly rejecting = new Map<net.Socket, number>();
  private readonly counters: NetCounters = { connections: 0, accepted: 0, rejected: 0, protocolErrors: 0, ringFull: 0, backpressure: 0 };
  private readonly timer: SweepTimer;
  private readonly frameFraming: boolean;
  private readonly deadlines: Deadlines;
  private nextId = 1;
  private pingSeq = 0;
  /** Connections with something to flush this tick. */
  private toFlush: NetConnection[] = [];
  private spare: NetConnection[] = [];
  private flushScheduled = false;
  /** A read is being handled: onData flushes at its end, so queueing schedules no tick. */
  private batching = false;
  private referenced = true;
  private stopped = false;
  private readonly lastErrorAt = new Map<string, number>();
  /** The connection whose bytes are being decoded (one shared decoder callback). */
  private current: NetConnection | undefined;
  private readonly closeWaiters: Array<() => void> = [];
  /** PROXY protocol: reads each socket's header before accept() sees it (src/proxy/header.ts). */
  private readonly proxy: ProxyReceiver | undefined;
  private proxyErrors = 0;
  /** The sweep pass under way (a live Map iterator), continued slice by slice. */
  private sweepPass: IterableIterator<NetConnection> | undefined;
  private readonly continueSweep = (): void => this.sweepSlice(this.timer.now());

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
    conn.admitted = admitted;
    (socket as Served)[CONN] = conn;
    socket.on('data', this.socketData);
    socket.on('end', this.socketEnd);
    socket.on('drain', this.socketDrain);
    socket.on('error', socketError);
    socket.on('close', this.socketClose);
    conn.handle = header
      ? this.sink.open(conn.id, header.remoteAddress, header.remotePort, header.tls)
      : this.sink.open(conn.id, socket.remoteAddress ?? '', socket.remotePort ?? 0);
    this.sink.batchEnd();
    if (header?.rest) this.onData(conn, header.rest); // protocol data that came with the PROXY header
  }

  // The socket events of every served connection (`this` is the socket).
  private readonly socketData = ((engine: NetEngine) =>
    function (this: Served, chunk: Buffer): void {
      engine.onData(this[CONN], chunk);
    })(this);

  private readonly socketEnd = ((engine: NetEngine) =>
    function (this: Served): void {
      engine.onEnd(this[CONN]);
    })(this);

  private readonly socketDrain = ((engine: NetEngine) =>
    function (this: Served): void {
      engine.onDrain(this[CONN]);
    })(this);

  private readonly socketClose = ((engine: NetEngine) =>
    function (this: Served): void {
      const conn = this[CONN];
      engine.onClose(conn);
      if (conn.admitted) engine.admission?.release();
    })(this);

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
    // Replies queued while this read is handled are flushed at its end, not by a nextTick each.
    this.batching = true;
    let done = false;
    try {
      if (!decoder) {
        this.deliverData(conn, chunk);
      } else {
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
      }
      done = true;
    } finally {
      this.batching = false;
      // A throw out of the sink skips the flush below: it still comes, on the next tick.
      if (!done && this.toFlush.length > 0) this.scheduleFlush();
    }
    this.sink.batchEnd();
    if (this.toFlush.length > 0) this.flush();
  }

  /** The decoder's callback for every connection (the connection is `this.current`). */
  private readonly onMessage = (type: number, flags: number, seq: number, payload: Buffer): boolean => {
    const conn = this.current!;
    if (conn.state !== OPEN) return false;
    conn.messageStart = 0;
    if (!this.frameFraming) {
      this.deliverData(conn, payload);
      return conn.state === OPEN;
    }
    if (type >= CONTROL_FIRST) {
      if (type === TYPE_PING) {
        this.queueFrame(conn, 0, TYPE_PONG, seq, payload);
      } else if (type === TYPE_CLOSE) {
        // The peer is closing: flush what we queued, then FIN; nothing more is delivered.
        this.closeWith(conn, 'ECLOSED_BY_PEER', payload.toString('utf8'), false);
        return false;
      }
      // PONG: life was already recorded by the read. GOAWAY from a client is
      // refused by the decoder (EUNEXPECTED_GOAWAY) before it gets here.
      return conn.state === OPEN;
    }
    if (conn.handle !== undefined && this.sink.messageOf) this.sink.messageOf(conn.handle, type, flags, seq, payload);
    else this.sink.message(conn.id, type, flags, seq, payload);
    return conn.state === OPEN;
  };

  private deliverData(conn: NetConnection, payload: Buffer): void {
    if (conn.handle !== undefined && this.sink.dataOf) this.sink.dataOf(conn.handle, payload);
    else this.sink.data(conn.id, payload);
  }

  private onEnd(conn: NetConnection): void {
    if (conn.state !== OPEN) return;
    this.sink.end(conn.id);
    this.sink.batchEnd();
  }

  private onDrain(conn: NetConnection): void {
    this.above.delete(conn.id);
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
    this.above.delete(conn.id);
    this.leaveAll(conn);
    this.counters.connections--;
    this.sink.close(conn.id, conn.code || 'OK', conn.reason);
    this.sink.batchEnd();
    if (this.connections.size === 0 && this.closeWaiters.length) {
      for (const resolve of this.closeWaiters.splice(0)) resolve();
    }
  }

  // ---- outbound ------------------------------------------------------------

  /** Schedules the connection's flush (once per connection and tick). */
  private schedule(conn: NetConnection): void {
    if (conn.queued) return;
    conn.queued = true;
    this.toFlush.push(conn);
    if (!this.batching) this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    process.nextTick(this.flushTick);
  }

  /** Makes room for `bytes` at the end of the coalescing buffer; returns where they go. */
  private reserve(conn: NetConnection, bytes: number): number {
    let at = conn.outLength;
    if (conn.out === undefined || at + bytes > conn.out.length) {
      if (at + bytes > OUT_MAX) {
        this.cork(conn);
        this.spill(conn);
        at = 0;
      }
      const start = conn.outHint > 0 ? conn.outHint : OUT_START;
      const grown = Buffer.allocUnsafe(Math.max(at + bytes, Math.min(OUT_MAX, at > 0 ? conn.out!.length * 2 : start)));
      if (at > 0) conn.out!.copy(grown, 0, 0, at);
      conn.out = grown;
    }
    conn.outLength = at + bytes;
    return at;
  }

  /** Corks the socket until the flush: writes that bypass the coalescing buffer then leave together with it. */
  private cork(conn: NetConnection): void {
    if (conn.corked) return;
    conn.corked = true;
    conn.socket.cork();
  }

  /** Hands the coalesced frames to the socket; the socket owns that buffer from now on. */
  private spill(conn: NetConnection): boolean {
    const out = conn.out;
    if (out === undefined || conn.outLength === 0) return true;
    const length = conn.outLength;
    conn.out = undefined;
    conn.outLength = 0;
    conn.outHint = length;
    return conn.socket.write(length === out.length ? out : out.subarray(0, length));
  }

  /**
   * Queues bytes the caller will not change (a BROADCAST's shared frame, raw
   * writes): handed to the socket as they are while nothing is coalesced
   * (a broadcast's receivers then share one buffer), copied behind the
   * coalesced frames when small, else after them. Returns false above the
   * high-water mark; closes above the hard limit.
   */
  private enqueue(conn: NetConnection, bytes: Uint8Array): boolean {
    if (!conn.queued && !conn.corked) {
      // The connection's first bytes this tick (a broadcast's receivers,
      // mostly): straight to the socket, as a plain node:net server would;
      // corking one write only added an uncork per receiver. Scheduled all
      // the same, so what follows in this tick is corked behind it.
      this.schedule(conn);
      conn.socket.write(bytes);
      return this.bounded(conn);
    }
    this.schedule(conn);
    if (conn.outLength > 0 && bytes.length <= SMALL_FRAME) {
      const at = this.reserve(conn, bytes.length);
      conn.out!.set(bytes, at);
    } else {
      this.cork(conn);
      this.spill(conn);
      conn.socket.write(bytes);
    }
    return this.bounded(conn);
  }

  /** A small frame, encoded in place behind the frames queued before it: no buffer of its own. */
  private queueFrame(conn: NetConnection, flags: number, type: number, seq: number, payload: Uint8Array): boolean {
    this.schedule(conn);
    const at = this.reserve(conn, HEADER_SIZE + payload.length);
    const out = conn.out!;
    writeHeader(out, at, flags, type, payload.length, seq);
    if (payload.length > 0) out.set(payload, at + HEADER_SIZE);
    return this.bounded(conn);
  }

  /** After queueing: the hard limit closes, the high-water mark pauses reading (docs/PROTOCOL.md section 4). */
  private bounded(conn: NetConnection): boolean {
    const socket = conn.socket;
    const queued = socket.writableLength + conn.outLength;
    if (queued > this.options.maxBufferedAmount) {
      this.counters.protocolErrors++;
      this.destroyWith(conn, 'ESLOW_CONSUMER', closeReasons.ESLOW_CONSUMER!);
      return false;
    }
    const below = queued < socket.writableHighWaterMark;
    if (!below) this.above.add(conn.id);
    if (!below && !conn.paused) {
      this.counters.backpressure++;
      // Stop reading a peer we cannot answer fast enough; 'drain' resumes it.
      conn.paused = true;
      socket.pause();
    }
    return below;
  }

  private writable(id: number): NetConnection | undefined {
    // A reply written while its request is handled (the usual case) needs no lookup.
    const current = this.current;
    const conn = current !== undefined && current.id === id ? current : this.connections.get(id);
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
      below = this.queueFrame(conn, flags, type, seq, payload);
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
    const conn = this.connections.get(id);
    return conn ? conn.socket.writableLength + conn.outLength : 0;
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

  private readonly drainTick = (conn: NetConnection): void => {
    if (conn.state === OPEN && !conn.socket.writableNeedDrain) this.onDrain(conn);
  };

  subscribe(id: number, topic: string): void {
    const conn = this.connections.get(id);
    if (!conn || conn.state === CLOSED) return;
    let members = this.topicMembers.get(topic);
    if (!members) {
      members = new Set();
      this.topicMembers.set(topic, members);
    }
    members.add(conn);
    let mine = this.memberships.get(id);
    if (!mine) {
      mine = new Set();
      this.memberships.set(id, mine);
    }
    mine.add(topic);
  }

  unsubscribe(id: number, topic: string): void {
    const members = this.topicMembers.get(topic);
    const conn = this.connections.get(id);
    if (!members || !conn) return;
    members.delete(conn);
    if (members.size === 0) this.topicMembers.delete(topic);
    this.memberships.get(id)?.delete(topic);
  }

  private leaveAll(conn: NetConnection): void {
    const mine = this.memberships.get(conn.id);
    if (!mine) return;
    this.memberships.delete(conn.id);
    for (const topic of mine) {
      const members = this.topicMembers.get(topic);
      if (!members) continue;
      members.delete(conn);
      if (members.size === 0) this.topicMembers.delete(topic);
    }
  }

  publish(topic: string, _bytes: Buffer, frame: Uint8Array, except: number): boolean {
    const members = this.topicMembers.get(topic);
    if (!members) return true;
    // One copy, so the caller may reuse its buffer; every receiver shares it.
    const shared = Buffer.from(frame);
    // A slow consumer closed on the way removes itself from `members` (onClose): walk a copy.
    for (const conn of [...members]) {
      if (conn.id !== except && conn.state === OPEN && !conn.socket.writableEnded) this.enqueue(conn, shared);
    }
    return true;
  }

  backlogged(): ReadonlySet<number> {
    return this.above;
  }

  private readonly flushTick = (): void => {
    this.flush();
  };

  flush(): void {
    this.flushScheduled = false;
    const list = this.toFlush;
    if (list.length === 0) return;
    // Two lists swapped, so a flush allocates nothing.
    this.toFlush = this.spare;
    for (const conn of list) {
      conn.queued = false;
      if (conn.socket.destroyed) continue;
      this.spill(conn);
      this.uncork(conn);
      // 'drain' is owed (a reader paused, or send() returned false) but the
      // socket emits it only after a write of its own returned false: when the
      // coalesced bytes fit after all, deliver it here.
      if ((conn.wantDrain || conn.paused) && !conn.socket.writableNeedDrain) process.nextTick(this.drainTick, conn);
    }
    list.length = 0;
    this.spare = list;
  }

  private uncork(conn: NetConnection): void {
    if (!conn.corked) return;
    conn.corked = false;
    conn.socket.uncork();
  }

  /** Before end() or a CLOSE: what is queued goes first (the flush list skips it later). */
  private flushOne(conn: NetConnection): void {
    this.spill(conn);
    this.uncork(conn);
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
      this.spill(conn); // replies queued before the decision leave before the CLOSE
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
    conn.queued = false;
    conn.corked = false;
    conn.out = undefined;
    conn.outLength = 0;
    conn.socket.destroy();
  }

  /** The coarse timer's visit: starts a pass over the connections (heartbeats, idle and frame deadlines, forced closes). */
  sweep(now: number): void {
    for (const [socket, closeAt] of this.rejecting) if (now >= closeAt) socket.destroy();
    if (this.sweepPass) return; // the pass under way finishes first
    this.sweepPass = this.connections.values();
    this.sweepSlice(now);
  }

  private sweepSlice(now: number): void {
    const pass = this.sweepPass;
    if (!pass) return;
    let visits = 0;
    let actions = 0;
    for (;;) {
      if (visits === SWEEP_VISITS || actions === SWEEP_ACTIONS) {
        setImmediate(this.continueSweep);
        return;
      }
      const next = pass.next();
      if (next.done) break;
      visits++;
      if (this.visit(next.value, now)) actions++;
    }
    this.sweepPass = undefined;
  }

  /** One connection's deadlines; true when it cost a PING or a close. */
  private visit(conn: NetConnection, now: number): boolean {
    if (conn.state === CLOSING) {
      if (now < conn.closeAt) return false;
      conn.socket.destroy();
      return true;
    }
    if (conn.state !== OPEN) return false;
    const due = conn.due(now, this.deadlines);
    if (!due) return false;
    if (due === 'PING') {
      if (conn.socket.writableEnded) return false;
      conn.pingAt = now;
      // Like the native engine: a nonzero sequence per PING, so PONGs are distinguishable.
      this.pingSeq = this.pingSeq >= 0xffffffff ? 1 : this.pingSeq + 1;
      this.enqueue(conn, encodeFrame(0, TYPE_PING, this.pingSeq, EMPTY));
      return true;
    }
    this.counters.protocolErrors++;
    this.closeWith(conn, due, closeReasons[due]!);
    return true;
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
