/**
 * The reconnecting edgepoll client: one TCP connection at a time to one server,
 * request/reply with per-request timeouts, pushes both ways, heartbeats,
 * GOAWAY draining, and a bounded queue for what is sent while disconnected.
 *
 * Owns: its socket, its queue, its timers (through an injectable {@link Clock}).
 * Does not own: framing rules (src/protocol/codec.ts) or retry policy maths (src/client/backoff.ts).
 * Runs on the JS thread only.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { resolveBackoff, backoffDelay, type Backoff, type ReconnectOptions } from './backoff';
import { realClock, type Clock } from './clock';
import { Decoder, encodeMessage } from '../protocol/codec';
import { EdgepollError, closeReasons, invalidOption, toEdgepollError, type EngineCode } from '../errors';
import { ClientHeartbeat } from './heartbeat';
import { Session, type Pending } from './session';
import type { AnyMessages, MessageMap, ReplyOf, RequestOf, RequestOptions, TypeOf } from '../protocol/messages';
import { toBytes, type Payload } from '../protocol/payload';
import {
  CONTROL_FIRST, FLAG_ERROR, FLAG_RESPONSE, HEADER_SIZE, TYPE_CLOSE, TYPE_GOAWAY, TYPE_PING, TYPE_PONG,
  encodeFrame, type Framing,
} from '../protocol/constants';
import {
  resolveClientOptions, type ClientEvents, type ClientHandler, type ClientOptions, type ClientStatus,
  type ResolvedClientOptions,
} from './options';
import { integer, limits, requestTimeout } from '../validate';

export type { ClientEvents, ClientHandler, ClientHandlerContext, ClientOptions, ClientStatus } from './options';
export type { RequestOptions } from '../protocol/messages';

/** Options of {@link Client.ready}. */
export interface ReadyOptions {
  /** ms to wait for the connection; 0 = no limit. Rejects with `ETIMEDOUT` (the last connection error as `cause`). @default 0 */
  timeout?: number;
  /** Rejects with `EABORTED` (the last connection error as `cause`) when aborted. The client keeps connecting. */
  signal?: AbortSignal;
}

/**
 * What tests replace: the time source and timers, and the random numbers of
 * the reconnect jitter. Not an option of {@link connect}: tests inject them
 * with {@link connectWithHooks}, which is not exported from the package.
 * @internal
 */
export interface ClientHooks {
  clock?: Clock;
  random?: () => number;
}

let injectedHooks: ClientHooks | undefined;

/**
 * A client whose clock and random numbers are the given ones (tests only;
 * not exported from the package index).
 * @internal
 */
export function connectWithHooks<M extends MessageMap = AnyMessages>(options: ClientOptions, hooks: ClientHooks): Client<M> {
  injectedHooks = hooks;
  try {
    return new Client<M>(options);
  } finally {
    injectedHooks = undefined;
  }
}

/** How long a closing socket may take to flush before it is destroyed. */
const LINGER_MS = 2000;

const validType = (type: unknown): type is number =>
  typeof type === 'number' && Number.isInteger(type) && type >= 1 && type < CONTROL_FIRST;

/**
 * A client connection to an edgepoll server that reconnects by itself.
 *
 * Why `node:net` and not the native engine: a client holds one connection,
 * and a process holds few clients. The native engine pays off when one loop
 * thread serves thousands of connections and hands their messages to JS in
 * batches; with a handful of sockets there is nothing to batch, and its costs
 * remain: an addon to load (or build) on every client machine, loop threads
 * in every client process, and a thread hop per message. `node:net` runs on
 * any platform Node runs on, adds no threads, and its sockets' errors,
 * timeouts and backpressure behave as every Node developer expects. The wire
 * protocol, not the engine, is what client and server share.
 *
 * Nothing is silently lost: a request either gets its reply or rejects with an
 * {@link EdgepollError} whose code says why (`EREMOTE`, `ECONNECTION_LOST`,
 * `EQUEUE_FULL`, `EREQUEST_TIMEOUT`, `EABORTED`, `ECONNECTION_CLOSED`).
 */
export class Client<M extends MessageMap = AnyMessages> extends EventEmitter<ClientEvents> {
  /** Replies that matched no request (timed out or aborted earlier) and pushes nobody handled. */
  readonly counters = { unmatched: 0, unhandled: 0 };
  private statusValue: ClientStatus = 'connecting';
  private readonly options: ResolvedClientOptions;
  private readonly backoff: Backoff | undefined;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly handlers = new Map<number, ClientHandler>();
  /** Requests, pushes and writes made while no connection could take them; insertion-ordered. */
  private readonly queue = new Set<Pending>();
  /** Bytes of the messages in {@link queue} (framed as they will be sent). */
  private queuedBytes = 0;
  /** A send()/write() returned false: emit 'drain' once bufferedAmount is below highWaterMark. */
  private needDrain = false;
  /** Error codes already printed as a warning (no 'error' listener) since the last successful connection. */
  private readonly warned = new Set<string>();
  private session: Session | undefined;
  private attempt = 0;
  /** The last socket error, named in the error a client that gives up rejects with. */
  private lastError: Error | undefined;
  private reconnectTimer: unknown;
  private closing = false;
  private closeError: EdgepollError | undefined;
  private readonly readyWaiters = new Set<{ resolve: () => void; reject: (error: Error) => void }>();
  private readonly closeWaiters: Array<() => void> = [];
  private removeSignalListener: (() => void) | undefined;

  /** Use {@link connect}. */
  constructor(options: ClientOptions) {
    super();
    this.options = resolveClientOptions(options);
    this.backoff = resolveBackoff(options.reconnect);
    this.clock = injectedHooks?.clock ?? realClock;
    this.random = injectedHooks?.random ?? Math.random;
    const signal = options.signal;
    if (signal) {
      if (signal.aborted) {
        queueMicrotask(() => this.destroy(new EdgepollError('EABORTED', 'the connect signal was aborted')));
      } else {
        const onAbort = (): void => void this.destroy(new EdgepollError('EABORTED', 'the connect signal was aborted'));
        signal.addEventListener('abort', onAbort, { once: true });
        this.removeSignalListener = () => signal.removeEventListener('abort', onAbort);
      }
    }
    // Start once the caller's synchronous code has run, so it can attach listeners first.
    queueMicrotask(() => {
      if (this.statusValue !== 'closed') this.startSession();
    });
  }

  /** The current {@link ClientStatus}. */
  get status(): ClientStatus {
    return this.statusValue;
  }

  /** Requests and pushes queued until a connection opens (bounded by `maxPending`). */
  get queued(): number {
    return this.queue.size;
  }

  /**
   * Bytes waiting to go out: queued while not connected plus what the socket
   * still holds. Above `highWaterMark` `send()`/`write()` return false. 0 once closed.
   */
  get bufferedAmount(): number {
    if (this.statusValue === 'closed') return 0;
    return this.queuedBytes + (this.session?.socket.writableLength ?? 0);
  }

  /**
   * Resolves once the client is open; rejects if it closes (gave up, `close()`,
   * abort) first, with `ETIMEDOUT` after `timeout` ms, or with `EABORTED` when
   * `signal` aborts. The last connection error (e.g. `ECONNREFUSED`) is the
   * `cause` of a timeout or abort; the client itself keeps connecting.
   */
  ready(options: ReadyOptions = {}): Promise<void> {
    if (options === null || typeof options !== 'object') return Promise.reject(invalidOption('ready options', 'an object', options));
    let timeout: number;
    try {
      timeout = integer('timeout', options.timeout, 0, limits.msOrZero);
      if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) throw invalidOption('signal', 'an AbortSignal', options.signal);
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.statusValue === 'open') return Promise.resolve();
    if (this.statusValue === 'closed') return Promise.reject(this.closedError());
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(this.notReady('EABORTED', 'ready() was aborted'));
    return new Promise((resolve, reject) => {
      let timer: unknown;
      const cleanup = (): void => {
        this.readyWaiters.delete(waiter);
        if (timer !== undefined) this.clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (error: Error) => {
          cleanup();
          reject(error);
        },
      };
      const onAbort = (): void => waiter.reject(this.notReady('EABORTED', 'ready() was aborted'));
      this.readyWaiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout > 0) {
        timer = this.clock.setTimeout(() => {
          timer = undefined;
          waiter.reject(this.notReady('ETIMEDOUT', `not connected to ${this.options.host}:${this.options.port} within ${timeout} ms`));
        }, timeout);
      }
    });
  }

  /** An error for something that waited for a connection, the last connection error as cause. */
  private notReady(code: 'EABORTED' | 'ETIMEDOUT' | 'EREQUEST_TIMEOUT', message: string): EdgepollError {
    const last = this.lastError as (Error & { code?: string }) | undefined;
    const detail = last ? ` (last connection error: ${last.code ?? last.message})` : '';
    return new EdgepollError(code, `${message}${detail}`, last ? { cause: last } : undefined);
  }

  /**
   * Sends a request and resolves with the reply payload (valid as long as you hold it).
   * While the client is not open (connecting, reconnecting, draining) the request
   * waits in the queue. Rejects with: `EREMOTE` (the handler failed; message
   * carried), `ECONNECTION_LOST` (sent, then the connection died: it may or may not
   * have run; retrying is the caller's decision), `EQUEUE_FULL`, `EREQUEST_TIMEOUT`,
   * `EABORTED`, `ECONNECTION_CLOSED` (the client is closed). frame framing only.
   */
  request<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>, options: RequestOptions = {}): Promise<Buffer> {
    try {
      this.checkType(type, 'request');
      const pending: Pending = { type, payload: toBytes(payload as Payload | undefined), seq: 0 };
      return new Promise<Buffer>((resolve, reject) => {
        pending.resolve = resolve;
        pending.reject = reject;
        this.startRequest(pending, options);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Sends a push (seq 0, no reply); queued while not open. Returns false when
   * `bufferedAmount` is above `highWaterMark`: wait for `'drain'`. Throws
   * `EQUEUE_FULL` (over `maxPending` or `maxBufferedAmount`) / `ECONNECTION_CLOSED`. frame framing only.
   */
  send<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>): boolean {
    this.checkType(type, 'send');
    this.submit({ type, payload: toBytes(payload as Payload | undefined), seq: 0 });
    return this.belowHighWater();
  }

  /** length/line/raw framings: sends one message (encoded with the framing); queued while not open. Returns false like `send()`. */
  write(payload: Payload): boolean {
    if (this.options.framing === 'frame') {
      throw invalidOption('framing', 'length, line or raw for write() (use send() or request())', 'frame');
    }
    const bytes = toBytes(payload);
    this.submit({ type: 0, payload: bytes, encoded: encodeMessage(this.options.framing, bytes), seq: 0 });
    return this.belowHighWater();
  }

  private belowHighWater(): boolean {
    if (this.bufferedAmount < this.options.highWaterMark) return true;
    this.needDrain = true;
    return false;
  }

  /** After the socket drained or the queue emptied: 'drain' if a caller waits for it. */
  private maybeDrain(): void {
    if (!this.needDrain || this.statusValue === 'closed' || this.bufferedAmount >= this.options.highWaterMark) return;
    this.needDrain = false;
    this.emit('drain');
  }

  /** Registers the handler of one message type (replacing any earlier one); `undefined` removes it (as on the server). */
  handle<T extends TypeOf<M>>(type: T, handler: ClientHandler<ReplyOf<M, T>> | undefined): this {
    if (!validType(type)) throw invalidOption('type', `an integer from 1 to ${CONTROL_FIRST - 1}`, type);
    if (handler === undefined) this.handlers.delete(type);
    else if (typeof handler !== 'function') throw invalidOption('handler', 'a function', handler);
    else this.handlers.set(type, handler as unknown as ClientHandler);
    return this;
  }

  /**
   * Closes gracefully: queued requests reject with `ECONNECTION_CLOSED`, requests in
   * flight get their replies (or time out), then the socket closes. Idempotent.
   */
  close(): Promise<void> {
    return this.shutdown(undefined, false);
  }

  /** Closes at once: everything pending rejects with `error` (default `ECONNECTION_CLOSED`). */
  destroy(error?: EdgepollError): Promise<void> {
    return this.shutdown(error, true);
  }

  // ---- status ----

  private setStatus(status: ClientStatus, detail?: { attempt: number; delay?: number }): void {
    this.statusValue = status;
    switch (status) {
      case 'connecting':
        this.emit('connecting', { attempt: detail?.attempt ?? 0 });
        break;
      case 'open':
        this.warned.clear();
        for (const waiter of [...this.readyWaiters]) waiter.resolve();
        this.emit('open');
        break;
      case 'reconnecting':
        this.emit('reconnecting', { attempt: detail?.attempt ?? 0, delay: detail?.delay ?? 0 });
        break;
      case 'goaway':
        this.emit('goaway');
        break;
      case 'closed': {
        this.removeSignalListener?.();
        const error = this.closedError();
        for (const waiter of [...this.readyWaiters]) waiter.reject(error);
        for (const waiter of this.closeWaiters.splice(0)) waiter();
        this.emit('close');
        break;
      }
    }
  }

  /**
   * Every error reaches 'error' listeners as an EdgepollError. Without one the
   * client must not crash while it reconnects, and must not be silent either:
   * each code is printed once (a process warning) until the next connection.
   */
  private report(error: Error): void {
    const reported = toEdgepollError(error);
    if (this.listenerCount('error') > 0) {
      this.emit('error', reported);
      return;
    }
    if (this.warned.has(reported.code)) return;
    this.warned.add(reported.code);
    process.emitWarning(
      `edgepoll client ${this.options.host}:${this.options.port}: ${reported.code}: ${reported.message} (listen for 'error' to handle it)`,
      { code: 'EDGEPOLL_CLIENT_ERROR' },
    );
  }

  private closedError(): EdgepollError {
    return this.closeError ?? new EdgepollError('ECONNECTION_CLOSED', 'the client is closed');
  }

  // ---- outgoing ----

  private checkType(type: number, what: string): void {
    if (this.options.framing !== 'frame') {
      throw invalidOption('framing', `frame for ${what}() (use write() and 'message')`, this.options.framing);
    }
    if (!validType(type)) throw invalidOption('type', `an integer from 1 to ${CONTROL_FIRST - 1}`, type);
  }

  private startRequest(pending: Pending, options: RequestOptions): void {
    const signal = options.signal;
    if (signal?.aborted) throw new EdgepollError('EABORTED', 'the request was aborted before it was sent');
    if (options === null || typeof options !== 'object') throw invalidOption('request options', 'an object', options);
    const timeout = requestTimeout('timeout', options.timeout, this.options.requestTimeout);
    this.submit(pending);
    if (timeout > 0) {
      pending.timer = this.clock.setTimeout(() => {
        pending.timer = undefined;
        const message = `request of type ${pending.type} got no reply within ${timeout} ms`;
        // Never sent (still queued): the reason is the connection, so name its last error.
        const error = this.queue.has(pending)
          ? this.notReady('EREQUEST_TIMEOUT', `${message}; it waited for a connection`)
          : new EdgepollError('EREQUEST_TIMEOUT', message);
        this.fail(pending, error);
      }, timeout);
    }
    if (signal) {
      pending.signal = signal;
      pending.onAbort = () => this.fail(pending, new EdgepollError('EABORTED', `request of type ${pending.type} was aborted`));
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
  }

  /** Sends now if a connection can take it, else queues (bounded). Throws when neither is possible. */
  private submit(pending: Pending): void {
    if (this.closing || this.statusValue === 'closed') throw this.closedError();
    const size = pendingSize(pending);
    const buffered = this.bufferedAmount;
    if (buffered > 0 && buffered + size > this.options.maxBufferedAmount) {
      throw new EdgepollError(
        'EQUEUE_FULL',
        `${buffered} bytes already wait to be sent; ${size} more would exceed maxBufferedAmount (${this.options.maxBufferedAmount})`,
      );
    }
    const session = this.session;
    if (session && session.connected && !session.draining && this.queue.size === 0) {
      session.transmit(pending);
      return;
    }
    if (this.queue.size >= this.options.maxPending) {
      throw new EdgepollError('EQUEUE_FULL', `${this.queue.size} messages already wait for a connection (maxPending)`);
    }
    this.queue.add(pending);
    this.queuedBytes += size;
  }

  private unqueue(pending: Pending): void {
    if (this.queue.delete(pending)) this.queuedBytes -= pendingSize(pending);
  }

  private flushQueue(session: Session): void {
    if (this.queue.size === 0) return;
    const items = [...this.queue];
    this.queue.clear();
    this.queuedBytes = 0;
    session.socket.cork();
    for (const pending of items) session.transmit(pending);
    session.socket.uncork();
    this.maybeDrain();
  }

  /** Settles a request's bookkeeping: out of the queue and in-flight map, timer and abort listener gone. */
  private detach(pending: Pending): void {
    this.unqueue(pending);
    if (pending.session && pending.session.inflight.get(pending.seq) === pending) pending.session.inflight.delete(pending.seq);
    pending.session = undefined;
    if (pending.timer !== undefined) this.clock.clearTimeout(pending.timer);
    pending.timer = undefined;
    if (pending.signal && pending.onAbort) pending.signal.removeEventListener('abort', pending.onAbort);
    pending.signal = undefined;
  }

  private fail(pending: Pending, error: Error): void {
    const session = pending.session;
    this.detach(pending);
    pending.reject?.(error);
    if (session) this.maybeFinishDrain(session);
  }

  // ---- connection lifecycle ----

  private startSession(): void {
    this.setStatus('connecting', { attempt: this.attempt });
    const { host, port, path, tls: tlsOptions } = this.options;
    const where = path !== undefined ? { path } : { host, port, noDelay: true };
    // node:tls leaves SNI unset for an IP address (RFC 6066 forbids it); the caller's servername wins.
    const servername = path === undefined && net.isIP(host) === 0 ? host : undefined;
    const socket = tlsOptions ? tls.connect({ servername, ...tlsOptions, ...where }) : net.connect(where);
    if (tlsOptions && path === undefined) socket.setNoDelay(true); // node:tls does not take noDelay
    const session = new Session(socket, new Decoder(this.options.framing, this.options.maxFrame, 'client'));
    this.session = session;
    const { heartbeat } = this.options;
    if (heartbeat && this.options.framing === 'frame') {
      // Started before 'connect': a connect that hangs (SYN to a stopped host) counts as silence too.
      session.heartbeat = new ClientHeartbeat(this.clock, heartbeat.interval, heartbeat.timeout, {
        ping: () => socket.write(encodeFrame(0, TYPE_PING, 1, Buffer.alloc(0))),
        dead: () => {
          this.report(new EdgepollError('EHEARTBEAT_TIMEOUT', `no byte from the server for ${heartbeat.interval + heartbeat.timeout} ms`));
          this.endSession(session, 'destroy');
        },
      });
      session.heartbeat.start();
    }
    // Over TLS the connection is usable once the handshake verified the server.
    socket.on(tlsOptions ? 'secureConnect' : 'connect', () => {
      if (session.dead) return;
      session.connected = true;
      this.attempt = 0;
      this.lastError = undefined;
      if (this.closing) {
        this.endSession(session, 'end');
        return;
      }
      this.flushQueue(session);
      this.setStatus('open');
    });
    socket.on('data', (chunk: Buffer) => this.receive(session, chunk));
    socket.on('drain', () => {
      if (!session.dead) this.maybeDrain();
    });
    socket.on('error', (error) => {
      if (session.dead) return;
      this.lastError = error;
      this.report(error);
    });
    socket.on('close', () => this.endSession(session, 'none'));
  }

  private receive(session: Session, chunk: Buffer): void {
    if (session.dead) return;
    session.heartbeat?.touch();
    const code = session.decoder.feed(chunk, (type, flags, seq, payload) => this.onMessage(session, type, flags, seq, payload));
    if (code !== '' && !session.dead) {
      this.report(new EdgepollError(code, `server stream: ${closeReasons[code as EngineCode] ?? code}`));
      // docs/PROTOCOL.md: tell the peer why, flush, close; then reconnect.
      session.socket.write(encodeFrame(0, TYPE_CLOSE, 0, Buffer.from(closeReasons[code as EngineCode] ?? code)));
      this.endSession(session, 'end');
    }
  }

  /** Returns false to stop decoding the rest of the chunk (the connection is over). */
  private onMessage(session: Session, type: number, flags: number, seq: number, payload: Buffer): boolean {
    if (session.dead) return false;
    if (this.options.framing !== 'frame') {
      this.emit('message', payload);
      return !session.dead;
    }
    if (type >= CONTROL_FIRST) return this.onControl(session, type, seq, payload);
    if (flags & FLAG_RESPONSE) {
      const pending = session.inflight.get(seq);
      if (!pending) {
        this.counters.unmatched++;
        return true;
      }
      this.detach(pending);
      if (flags & FLAG_ERROR) pending.reject?.(new EdgepollError('EREMOTE', payload.toString('utf8')));
      else pending.resolve?.(payload);
      this.maybeFinishDrain(session);
      return !session.dead;
    }
    const handled = session.answer(this.handlers.get(type), type, seq, payload, { client: this as unknown as Client, type, seq }, (error) =>
      this.report(error),
    );
    if (!handled) this.counters.unhandled++;
    return !session.dead;
  }

  private onControl(session: Session, type: number, seq: number, payload: Buffer): boolean {
    switch (type) {
      case TYPE_PING:
        session.socket.write(encodeFrame(0, TYPE_PONG, seq, payload));
        return true;
      case TYPE_PONG:
        return true; // life was already counted by receive()
      case TYPE_CLOSE:
        this.report(new EdgepollError('ECLOSED_BY_PEER', `the server closed the connection: ${payload.toString('utf8')}`));
        this.endSession(session, 'end');
        return false;
      case TYPE_GOAWAY:
        if (!session.draining) {
          session.draining = true;
          if (!this.closing) this.setStatus('goaway');
          this.maybeFinishDrain(session);
        }
        return !session.dead;
      default:
        return true; // the decoder refuses other control types
    }
  }

  private maybeFinishDrain(session: Session): void {
    if (session.draining && !session.dead && session.inflight.size === 0) this.endSession(session, 'end');
  }

  /**
   * The one place a connection ends: in-flight requests reject with
   * `ECONNECTION_LOST`, then the client reconnects, gives up, or finishes closing.
   * `how`: 'end' flushes what we wrote and closes; 'destroy' drops it; 'none' = already closed.
   */
  private endSession(session: Session, how: 'end' | 'destroy' | 'none', inflightError?: EdgepollError): void {
    if (session.dead) return;
    session.dead = true;
    session.heartbeat?.stop();
    if (how === 'end') {
      // Flush what we wrote (a CLOSE, the last replies), then let go; a peer that never
      // reads would keep 'finish' from firing, so a bounded wait ends it regardless.
      const socket = session.socket;
      const guard = this.clock.setTimeout(() => socket.destroy(), LINGER_MS);
      socket.end(() => {
        this.clock.clearTimeout(guard);
        socket.destroy();
      });
    }
    else if (how === 'destroy') session.socket.destroy();
    for (const pending of [...session.inflight.values()]) {
      this.detach(pending);
      pending.reject?.(
        inflightError ??
          new EdgepollError('ECONNECTION_LOST', `the connection was lost before the reply to type ${pending.type} arrived`),
      );
    }
    if (this.session !== session) return;
    this.session = undefined;
    if (this.closing) {
      this.setStatus('closed');
      return;
    }
    // What the dead socket held is gone (requests rejected above): writers waiting for 'drain' may go on.
    this.maybeDrain();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    const backoff = this.backoff;
    if (!backoff || this.attempt >= backoff.maxAttempts) {
      const why = backoff ? `gave up after ${backoff.maxAttempts} attempts` : 'reconnect is off';
      const last = this.lastError as (Error & { code?: string }) | undefined;
      const detail = last ? ` (last error: ${last.code ?? last.message})` : '';
      void this.shutdown(new EdgepollError('ECONNECTION_LOST', `the connection was lost and ${why}${detail}`, { cause: last }), true);
      return;
    }
    this.attempt++;
    const delay = backoffDelay(this.attempt, backoff, this.random);
    this.setStatus('reconnecting', { attempt: this.attempt, delay });
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      if (!this.closing) this.startSession();
    }, delay);
  }

  private shutdown(error: EdgepollError | undefined, force: boolean): Promise<void> {
    const done = new Promise<void>((resolve) => {
      if (this.statusValue === 'closed') resolve();
      else this.closeWaiters.push(resolve);
    });
    if (this.statusValue === 'closed') return done;
    if (this.closing && !force) return done;
    this.closing = true;
    this.closeError ??= error;
    if (this.reconnectTimer !== undefined) this.clock.clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    const rejection = this.closedError();
    for (const pending of [...this.queue]) {
      this.detach(pending);
      pending.reject?.(rejection);
    }
    const session = this.session;
    if (!session) {
      this.setStatus('closed');
    } else if (force || !session.connected) {
      this.endSession(session, 'destroy', rejection);
    } else {
      session.draining = true;
      this.maybeFinishDrain(session);
    }
    return done;
  }
}

/**
 * Connects to an edgepoll server and returns the {@link Client} at once; it
 * connects in the background (`await client.ready()` to wait for it).
 * `connect(port, host?)` is `connect({ port, host })`, as in node:net.
 * Throws `EINVALID_OPTION` for a bad option (or anything that is neither a
 * port nor an options object).
 */
export function connect<M extends MessageMap = AnyMessages>(options: ClientOptions): Client<M>;
export function connect<M extends MessageMap = AnyMessages>(port: number, host?: string): Client<M>;
export function connect<M extends MessageMap = AnyMessages>(options: ClientOptions | number, host?: string): Client<M> {
  if (typeof options === 'number') return new Client<M>(host === undefined ? { port: options } : { port: options, host });
  if (host !== undefined) throw invalidOption('host', 'given inside the options object (connect(options) takes one argument)', host);
  return new Client<M>(options);
}

/** What a message adds to `bufferedAmount`: its bytes as they go on the wire. */
function pendingSize(pending: Pending): number {
  return pending.encoded ? pending.encoded.length : HEADER_SIZE + pending.payload.length;
}

export type { Framing, ReconnectOptions };
