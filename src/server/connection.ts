/**
 * One connection as the application sees it. A Connection is valid until its
 * `'close'` event. After it, the methods that would send (`send`, `request`,
 * `write`) throw ECONNECTION_CLOSED instead of touching a socket that may
 * belong to someone else by now; the ones that end it (`end`, `close`,
 * `destroy`) do nothing, as on a node:net socket, so cleanup code may call
 * them without checking; `bufferedAmount` is 0 (nothing will be sent).
 *
 * What the server and dispatcher need beyond the public API (the close
 * report, replies, in-flight counting) goes through {@link connectionInternals},
 * not through public members, so the .d.ts shows only what users may call.
 */
import { EventEmitter } from 'node:events';
import { EdgepollError } from '../errors';
import type { Engine } from '../engines/engine';
import type { TopicHub } from './topic-hub';
import { FLAG_ERROR, type Framing } from '../protocol/constants';
import type { AnyMessages, MessageMap, RequestOf, RequestOptions, TypeOf } from '../protocol/messages';
import { toBytes, type Payload } from '../protocol/payload';
import { requestTimeout } from '../validate';
import type { ConnectionTls } from '../proxy/header';

export type { RequestOptions } from '../protocol/messages';

/**
 * The server's and dispatcher's handle on connections (not part of the
 * package API). One shared object of functions, so the hot path (a reply per
 * request) allocates nothing.
 * @internal
 */
export interface ConnectionInternals {
  /** A handler returned a promise: half-close waits for it. */
  handlerStarted(connection: Connection<any>): void;
  /** That handler settled (its reply is queued). */
  handlerSettled(connection: Connection<any>): void;
  /** The peer half-closed. */
  peerEnded(connection: Connection<any>, allowHalfOpen: boolean): void;
  /** Sends a reply frame (RESPONSE, maybe ERROR); dropped on a closed connection. */
  reply(connection: Connection<any>, type: number, seq: number, flags: number, payload: Uint8Array): void;
  /** A RESPONSE frame arrived; false when no request of ours waits for it. */
  response(connection: Connection<any>, flags: number, seq: number, payload: Buffer): boolean;
  /** The engine reported the close. */
  closedBy(connection: Connection<any>, code: string, reason: string): void;
}

interface PendingRequest {
  resolve(payload: Buffer): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  cleanup: (() => void) | undefined;
}

/**
 * What every connection of one server shares: one object per server instead
 * of four fields per connection (tens of thousands of idle connections).
 * @internal
 */
export interface ConnectionContext {
  readonly engine: Engine;
  readonly framing: Framing;
  readonly requestTimeout: number;
  readonly hub: TopicHub;
}

// Set by Connection's static block: the only code with access to its private members.
let construct: (
  context: ConnectionContext,
  id: number,
  remoteAddress: string,
  remotePort: number,
  tls: ConnectionTls | undefined,
) => Connection<any>;
let internals: ConnectionInternals;

/** Events of a {@link Connection}. */
export interface ConnectionEvents {
  /** raw framing: a chunk as it arrived. Valid as long as you hold it. */
  data: [chunk: Buffer];
  /** length and line framings: one message. Valid as long as you hold it. */
  message: [payload: Buffer];
  /** The outbound queue fell below the high-water mark after a write returned false. */
  drain: [];
  /** The peer half-closed (sent FIN). */
  end: [];
  /** The connection is gone. `code` is 'OK' for a clean close. */
  close: [code: string, reason: string];
}

/** One connection; `M` is the message map of its server (see src/protocol/messages.ts). */
export class Connection<M extends MessageMap = AnyMessages> extends EventEmitter<ConnectionEvents> {
  /** Unique among open connections of this server; carries loop, slot and generation on the native engine. */
  readonly id: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /**
   * The client's TLS connection to the load balancer in front, as its PROXY v2
   * header described it (HAProxy `send-proxy-v2-ssl` / `send-proxy-v2-ssl-cn`):
   * SNI, ALPN, version, cipher and the client certificate (sent, verified, CN).
   * Undefined without `proxyProtocol`, for a v1 header (nginx) or when the
   * proxy sent no SSL TLV or said the client did not use TLS.
   */
  readonly tls: ConnectionTls | undefined;
  /**
   * This connection's address: `nodeId/…`, naming the server and the
   * connection, never reused (not even after a restart with the same
   * nodeId). `server.sendTo(address, …)` reaches it from any server on the bus.
   * Valid forever (a closed connection's address just reaches nobody).
   * Made on first use: only a connection whose address was handed out can be
   * addressed, so idle connections hold no string and no entry for it.
   */
  get address(): string {
    // A connection already closed gets an address that reaches nobody.
    return (this.#address ??= this.#closed ? this.#context.hub.unlisted() : this.#context.hub.opened(this as unknown as Connection));
  }

  /** The server's framing: how this connection's bytes are cut into messages. */
  get framing(): Framing {
    return this.#context.framing;
  }
  /** Arbitrary per-connection state for the application (created on first use: idle connections hold none). */
  get data(): Record<string, unknown> {
    return (this.#data ??= {});
  }

  set data(value: Record<string, unknown>) {
    this.#data = value;
  }

  /** Requests from the peer being handled now (half-close waits for them). */
  #inFlight = 0;
  #context: ConnectionContext;
  #closed = false;
  /** The peer sent FIN and we end our side once no handler is in flight. */
  #endWhenIdle = false;
  #closeCode = '';
  #nextSeq = 1;
  /** Requests to the peer awaiting a reply; created by the first request (an empty Map costs ~170 B a connection). */
  #pending: Map<number, PendingRequest> | undefined;
  #data: Record<string, unknown> | undefined;
  #address: string | undefined;

  static {
    construct = (context, id, remoteAddress, remotePort, tls) => new Connection(context, id, remoteAddress, remotePort, tls);
    internals = {
      handlerStarted: (c) => {
        c.#inFlight++;
      },
      handlerSettled: (c) => {
        c.#inFlight--;
        c.#endIfIdle();
      },
      peerEnded: (c, allowHalfOpen) => c.#peerEnded(allowHalfOpen),
      reply: (c, type, seq, flags, payload) => {
        if (!c.#closed) c.#context.engine.sendFrame(c.id, flags, type, seq, payload);
      },
      response: (c, flags, seq, payload) => c.#response(flags, seq, payload),
      closedBy: (c, code, reason) => c.#closedBy(code, reason),
    };
  }

  /** Connections are made by the server (its `'connection'` event). */
  private constructor(context: ConnectionContext, id: number, remoteAddress: string, remotePort: number, tls?: ConnectionTls) {
    super();
    // EventEmitter starts every instance with an empty listener table, a
    // dictionary-mode object of ~230 B; most connections never get a listener.
    // Its methods accept `_events === undefined` and make the table on the
    // first on()/once() (test/server/connection.test.ts checks each of them).
    (this as unknown as { _events: unknown })._events = undefined;
    this.tls = tls;
    this.#context = context;
    this.id = id;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
  }

  /**
   * Makes this connection a subscriber of `topic` (1 to 200 bytes of UTF-8,
   * no 0x00: else throws EBAD_TOPIC; more than `maxTopicsPerConnection`
   * topics: ETOO_MANY_TOPICS). Takes effect at once for publishes made on this
   * server after the call; the promise resolves once it is in effect on the
   * bus too (at once while the bus is unreachable: the bus side follows when
   * it is back). Subscribing again is not an error.
   */
  subscribe(topic: string): Promise<void> {
    this.#assertOpen();
    return this.#context.hub.subscribe(this as unknown as Connection, topic);
  }

  /** Undoes {@link subscribe}; a topic the connection is not in is not an error. */
  unsubscribe(topic: string): void {
    this.#assertOpen();
    this.#context.hub.unsubscribe(this as unknown as Connection, topic);
  }

  /** The topics this connection subscribes to now. Valid until the next subscribe/unsubscribe/'close'. */
  get topics(): ReadonlySet<string> {
    return this.#context.hub.topicsOf(this as unknown as Connection);
  }

  /** True after `'close'`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Outbound bytes queued and not yet handed to the kernel; 0 after `'close'`. */
  get bufferedAmount(): number {
    return this.#closed ? 0 : this.#context.engine.bufferedAmount(this.id);
  }

  #assertOpen(): void {
    if (this.#closed) {
      throw new EdgepollError('ECONNECTION_CLOSED', `connection ${this.id} is closed (${this.#closeCode})`);
    }
  }

  #assertFraming(frame: boolean, method: string): void {
    if ((this.framing === 'frame') !== frame) {
      throw new EdgepollError(
        'EINVALID_OPTION',
        `${method}() is for ${frame ? "the 'frame' framing" : "the 'length', 'line' and 'raw' framings"}; this connection uses '${this.framing}'`,
      );
    }
  }

  /**
   * Pushes a frame of `type` (seq 0, no reply). Returns false when the
   * outbound queue is above the high-water mark: wait for `'drain'`.
   */
  send<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>): boolean {
    this.#assertOpen();
    this.#assertFraming(true, 'send');
    checkType(type);
    return this.#context.engine.sendFrame(this.id, 0, type, 0, toBytes(payload as Payload | undefined));
  }

  /**
   * Asks the peer (a client's handler) and resolves with its reply payload.
   * `timeout` defaults to the server's `requestTimeout`; -1, NaN or a
   * fraction throws `EINVALID_OPTION`.
   */
  request<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>, options: RequestOptions = {}): Promise<Buffer> {
    this.#assertOpen();
    this.#assertFraming(true, 'request');
    checkType(type);
    if (options === null || typeof options !== 'object') throw new EdgepollError('EINVALID_OPTION', 'request options must be an object');
    const timeout = requestTimeout('timeout', options.timeout, this.#context.requestTimeout);
    const bytes = toBytes(payload as Payload | undefined);
    const seq = this.#nextSeq;
    this.#nextSeq = this.#nextSeq >= 0xffffffff ? 1 : this.#nextSeq + 1;
    return new Promise<Buffer>((resolve, reject) => {
      const { signal } = options;
      if (signal?.aborted) {
        reject(new EdgepollError('EABORTED', 'the request was aborted'));
        return;
      }
      const entry: PendingRequest = { resolve, reject, timer: undefined, cleanup: undefined };
      if (timeout > 0) {
        entry.timer = setTimeout(() => {
          this.#settle(seq)?.reject(new EdgepollError('EREQUEST_TIMEOUT', `no reply to request ${seq} within ${timeout} ms`));
        }, timeout);
      }
      if (signal) {
        const onAbort = (): void => {
          this.#settle(seq)?.reject(new EdgepollError('EABORTED', 'the request was aborted'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
        entry.cleanup = () => signal.removeEventListener('abort', onAbort);
      }
      (this.#pending ??= new Map()).set(seq, entry);
      this.#context.engine.sendFrame(this.id, 0, type, seq, bytes);
    });
  }

  #settle(seq: number): PendingRequest | undefined {
    const entry = this.#pending?.get(seq);
    if (!entry) return undefined;
    this.#pending?.delete(seq);
    if (entry.timer) clearTimeout(entry.timer);
    entry.cleanup?.();
    return entry;
  }

  /** length/line/raw framings: queues one message (length/line) or bytes (raw). false = above high water. */
  write(payload: Payload): boolean {
    this.#assertOpen();
    this.#assertFraming(false, 'write');
    const bytes = toBytes(payload);
    if (this.framing === 'raw') return this.#context.engine.write(this.id, bytes);
    if (this.framing === 'length') {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32BE(bytes.length, 0);
      this.#context.engine.write(this.id, header);
      return this.#context.engine.write(this.id, bytes);
    }
    this.#context.engine.write(this.id, bytes);
    return this.#context.engine.write(this.id, newline);
  }

  /** Flushes what is queued, then half-closes (FIN). Does nothing after `'close'`. */
  end(): void {
    if (this.#closed) return;
    this.#context.engine.end(this.id);
  }

  /**
   * Closes gracefully: in frame framing sends CLOSE with `reason`, flushes,
   * then closes. `'close'` follows. Does nothing after `'close'`.
   */
  close(reason = ''): void {
    if (this.#closed) return;
    this.#context.engine.close(this.id, 'OK', reason);
  }

  /** Closes at once, dropping queued output. `'close'` follows. Does nothing after `'close'`. */
  destroy(): void {
    if (this.#closed) return;
    this.#context.engine.destroy(this.id);
  }

  /**
   * The peer half-closed. Without allowHalfOpen our side ends once every
   * request that arrived before the FIN has been answered (T26, T29).
   */
  #peerEnded(allowHalfOpen: boolean): void {
    this.emit('end');
    if (allowHalfOpen) return;
    this.#endWhenIdle = true;
    this.#endIfIdle();
  }

  #endIfIdle(): void {
    if (this.#endWhenIdle && this.#inFlight === 0 && !this.#closed) {
      this.#endWhenIdle = false;
      this.#context.engine.end(this.id);
    }
  }

  #response(flags: number, seq: number, payload: Buffer): boolean {
    const entry = this.#settle(seq);
    if (!entry) return false;
    if (flags & FLAG_ERROR) entry.reject(new EdgepollError('EREMOTE', payload.toString('utf8')));
    else entry.resolve(payload);
    return true;
  }

  #closedBy(code: string, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeCode = code;
    this.#context.hub.closed(this as unknown as Connection, this.#address);
    for (const seq of [...(this.#pending?.keys() ?? [])]) {
      this.#settle(seq)?.reject(new EdgepollError('ECONNECTION_LOST', `connection closed (${code}) before request ${seq} was answered`));
    }
    this.emit('close', code, reason);
  }
}

const newline = Buffer.from('\n');

/** The server makes its connections here (the constructor is private). @internal */
export function createConnection<M extends MessageMap = AnyMessages>(
  context: ConnectionContext, id: number, remoteAddress: string, remotePort: number, tls?: ConnectionTls,
): Connection<M> {
  return construct(context, id, remoteAddress, remotePort, tls) as Connection<M>;
}

/** The internal operations on connections, for the server and the dispatcher. @internal */
export function connectionInternals(): ConnectionInternals {
  return internals;
}

/** Application types are 0x0001-0xFEFF. */
export function checkType(type: number): void {
  if (!Number.isInteger(type) || type < 1 || type > 0xfeff) {
    throw new EdgepollError('EINVALID_OPTION', `message type must be an integer from 1 to 65279 (0xFEFF), got ${String(type)}`);
  }
}

