/**
 * The reconnecting edgepoll client: one TCP connection at a time to one server,
 * request/reply with per-request timeouts, pushes both ways, heartbeats,
 * GOAWAY draining, and a bounded queue for what is sent while disconnected.
 *
 * Owns: its socket, its queue, its timers (through an injectable {@link Clock}).
 * Does not own: framing rules (src/codec.ts) or retry policy maths (src/backoff.ts).
 * Runs on the JS thread only.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { resolveBackoff, backoffDelay, type Backoff, type ReconnectOptions } from './backoff';
import { realClock, type Clock } from './clock';
import { Decoder, encodeMessage } from './codec';
import { EdgepollError, closeReasons, invalidOption, type EngineCode } from './errors';
import { ClientHeartbeat } from './client-heartbeat';
import { Session, type Pending } from './client-session';
import type { AnyMessages, MessageMap, ReplyOf, RequestOf, TypeOf } from './messages';
import { toBytes, type Payload } from './payload';
import {
  CONTROL_FIRST, FLAG_ERROR, FLAG_RESPONSE, TYPE_CLOSE, TYPE_GOAWAY, TYPE_PING, TYPE_PONG,
  encodeFrame, type Framing,
} from './protocol';
import {
  resolveClientOptions, type ClientEvents, type ClientHandler, type ClientOptions, type ClientStatus,
  type RequestOptions, type ResolvedClientOptions,
} from './client-options';

export type {
  ClientEvents, ClientHandler, ClientHandlerContext, ClientOptions, ClientStatus, RequestOptions,
} from './client-options';

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
  private readonly handlers = new Map<number, ClientHandler>();
  /** Requests, pushes and writes made while no connection could take them; insertion-ordered. */
  private readonly queue = new Set<Pending>();
  private session: Session | undefined;
  private attempt = 0;
  /** The last socket error, named in the error a client that gives up rejects with. */
  private lastError: Error | undefined;
  private reconnectTimer: unknown;
  private closing = false;
  private closeError: EdgepollError | undefined;
  private readonly readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private readonly closeWaiters: Array<() => void> = [];
  private removeSignalListener: (() => void) | undefined;

  /** Use {@link connect}. */
  constructor(options: ClientOptions) {
    super();
    this.options = resolveClientOptions(options);
    this.backoff = resolveBackoff(options.reconnect);
    this.clock = options.clock ?? realClock;
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

  /** Resolves once the client is open; rejects if it closes (gave up, `close()`, abort) first. */
  ready(): Promise<void> {
    if (this.statusValue === 'open') return Promise.resolve();
    if (this.statusValue === 'closed') return Promise.reject(this.closedError());
    return new Promise((resolve, reject) => this.readyWaiters.push({ resolve, reject }));
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

  /** Sends a push (seq 0, no reply); queued while not open. Throws `EQUEUE_FULL` / `ECONNECTION_CLOSED`. frame framing only. */
  send<T extends TypeOf<M>>(type: T, payload?: RequestOf<M, T>): void {
    this.checkType(type, 'send');
    this.submit({ type, payload: toBytes(payload as Payload | undefined), seq: 0 });
  }

  /** length/line/raw framings: sends one message (encoded with the framing); queued while not open. */
  write(payload: Payload): void {
    if (this.options.framing === 'frame') {
      throw invalidOption('framing', 'length, line or raw for write() (use send() or request())', 'frame');
    }
    const bytes = toBytes(payload);
    this.submit({ type: 0, payload: bytes, encoded: encodeMessage(this.options.framing, bytes), seq: 0 });
  }

  /** Registers the handler of one message type (replacing any earlier one); `undefined` removes it. */
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
        for (const waiter of this.readyWaiters.splice(0)) waiter.resolve();
        this.emit('open');
        break;
      case 'reconnecting':
        this.emit('reconnecting', { attempt: detail?.attempt ?? 0, delay: detail?.delay ?? 0 });
        break;
      case 'draining':
        this.emit('goaway');
        break;
      case 'closed': {
        this.removeSignalListener?.();
        const error = this.closedError();
        for (const waiter of this.readyWaiters.splice(0)) waiter.reject(error);
        for (const waiter of this.closeWaiters.splice(0)) waiter();
        this.emit('close');
        break;
      }
    }
  }

  /** 'error' only reaches listeners: a client without one must not crash while it reconnects. */
  private report(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
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
    const timeout = options.timeout ?? this.options.requestTimeout;
    if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) {
      throw invalidOption('timeout', 'an integer >= 0 (ms; 0 = none)', timeout);
    }
    this.submit(pending);
    if (timeout > 0) {
      pending.timer = this.clock.setTimeout(() => {
        pending.timer = undefined;
        this.fail(pending, new EdgepollError('EREQUEST_TIMEOUT', `request of type ${pending.type} got no reply within ${timeout} ms`));
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
    const session = this.session;
    if (session && session.connected && !session.draining && this.queue.size === 0) {
      session.transmit(pending);
      return;
    }
    if (this.queue.size >= this.options.maxPending) {
      throw new EdgepollError('EQUEUE_FULL', `${this.queue.size} messages already wait for a connection (maxPending)`);
    }
    this.queue.add(pending);
  }

  private flushQueue(session: Session): void {
    if (this.queue.size === 0) return;
    const items = [...this.queue];
    this.queue.clear();
    session.socket.cork();
    for (const pending of items) session.transmit(pending);
    session.socket.uncork();
  }

  /** Settles a request's bookkeeping: out of the queue and in-flight map, timer and abort listener gone. */
  private detach(pending: Pending): void {
    this.queue.delete(pending);
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
      // PROTOCOL.md: tell the peer why, flush, close; then reconnect.
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
          if (!this.closing) this.setStatus('draining');
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
    const delay = backoffDelay(this.attempt, backoff, this.options.random);
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
 * Throws `EINVALID_OPTION` for a bad option.
 */
export function connect<M extends MessageMap = AnyMessages>(options: ClientOptions): Client<M> {
  return new Client<M>(options);
}

export type { Framing, ReconnectOptions };
