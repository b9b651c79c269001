/**
 * Routes incoming frames to handlers by type and sends their replies
 * (docs/PROTOCOL.md section 2, "Request and reply" and "Messages nobody waits for").
 * A handler that throws becomes a RESPONSE|ERROR reply (message only, never
 * the stack) plus an `'error'` report; it never stops anything else.
 */
import { connectionInternals, type Connection } from './connection';
import type { AnyMessages, HandlerResult, MessageMap } from '../protocol/messages';

export type { HandlerResult } from '../protocol/messages';
import { EdgepollError } from '../errors';
import { FLAG_ERROR, FLAG_RESPONSE } from '../protocol/constants';
import { toBytes, type Payload } from '../protocol/payload';
import { channels } from './diagnostics';
import type { Metrics } from './metrics';

/** What a handler learns besides the payload. Valid until the handler settles. */
export interface HandlerContext<M extends MessageMap = AnyMessages> {
  connection: Connection<M>;
  type: number;
  /** 0 for a push (no reply is sent); otherwise the request id the reply will carry. */
  seq: number;
}


/**
 * Handles one message type. `payload` is the frame's payload; it stays valid
 * as long as you hold it (it is a view of a buffer no one else reuses).
 */
export type Handler<Reply = HandlerResult, M extends MessageMap = AnyMessages> = (
  payload: Buffer,
  context: HandlerContext<M>,
) => Reply | Promise<Reply>;

export interface DispatchCounters {
  /** Pushes of a type with no handler (dropped). */
  unhandled: number;
  /** RESPONSE frames that matched no request of ours (dropped). */
  unmatched: number;
  /** Handlers that threw or rejected. */
  handlerErrors: number;
}

/** Types below this are looked up in an array (most protocols use a few small types); the rest in a Map. */
const SMALL_TYPES = 256;

export class Dispatcher {
  private readonly small: Array<Handler | undefined> = new Array<Handler | undefined>(SMALL_TYPES).fill(undefined);
  private readonly large = new Map<number, Handler>();
  readonly counters: DispatchCounters = { unhandled: 0, unmatched: 0, handlerErrors: 0 };
  private readonly report: (error: Error, connection: Connection) => void;
  private readonly metrics: Metrics | undefined;
  private readonly owner: object;
  /**
   * Which handler calls are timed for `handlerDuration`: every asynchronous one,
   * and of synchronous ones the first after each batch and one in 16 of the
   * rest. Two performance.now() calls per message cost ~100 ns on Node 20
   * (bench/js-path.mjs: 224 vs 136 ns per message), a third of the native
   * engine's JS-thread path under pipelined load.
   */
  private timeNext = true;
  private untimed = 0;

  constructor(report: (error: Error, connection: Connection) => void, metrics?: Metrics, owner: object = {}) {
    this.report = report;
    this.metrics = metrics;
    this.owner = owner;
  }

  /** Sets the handler of `type`; undefined removes it. */
  setHandler(type: number, handler: Handler | undefined): void {
    if (type < SMALL_TYPES) this.small[type] = handler;
    else if (handler === undefined) this.large.delete(type);
    else this.large.set(type, handler);
  }

  dispatch(connection: Connection, type: number, flags: number, seq: number, payload: Buffer): void {
    if (flags & FLAG_RESPONSE) {
      if (!connectionInternals().response(connection, flags, seq, payload)) this.counters.unmatched++;
      return;
    }
    const handler = type < SMALL_TYPES ? this.small[type] : this.large.get(type);
    if (handler === undefined) {
      if (seq === 0) this.counters.unhandled++;
      else connectionInternals().reply(connection, type, seq, FLAG_RESPONSE | FLAG_ERROR, Buffer.from(`unknown type ${type}`));
      return;
    }
    const metrics = this.metrics;
    const timed = metrics !== undefined && (this.timeNext || ++this.untimed === 16);
    if (timed) {
      this.timeNext = false;
      this.untimed = 0;
    }
    const started = timed ? performance.now() : 0;
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler(payload, { connection, type, seq });
    } catch (error) {
      if (timed) metrics.handlerDuration.observe((performance.now() - started) / 1000);
      this.fail(connection, type, seq, error);
      return;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<HandlerResult>).then === 'function') {
      connectionInternals().handlerStarted(connection);
      if (metrics) metrics.requestsInFlight++;
      // Asynchronous handlers are always timed (from here if the call was not).
      const begun = timed || !metrics ? started : performance.now();
      const settled = (): void => {
        if (!metrics) return;
        metrics.requestsInFlight--;
        metrics.handlerDuration.observe((performance.now() - begun) / 1000);
      };
      (result as Promise<HandlerResult>).then(
        (value) => {
          settled();
          this.succeed(connection, type, seq, value);
          connectionInternals().handlerSettled(connection);
        },
        (error: unknown) => {
          settled();
          this.fail(connection, type, seq, error);
          connectionInternals().handlerSettled(connection);
        },
      );
      return;
    }
    if (timed) metrics.handlerDuration.observe((performance.now() - started) / 1000);
    this.succeed(connection, type, seq, result as HandlerResult);
  }

  /** The engine finished a batch: the next handler call is timed. */
  batchEnded(): void {
    this.timeNext = true;
  }

  private succeed(connection: Connection, type: number, seq: number, value: HandlerResult): void {
    if (seq === 0) return;
    let bytes: Uint8Array;
    try {
      bytes = toBytes(value as Payload | undefined, 'a handler reply');
    } catch (error) {
      this.fail(connection, type, seq, error);
      return;
    }
    connectionInternals().reply(connection, type, seq, FLAG_RESPONSE, bytes);
  }

  private fail(connection: Connection, type: number, seq: number, error: unknown): void {
    this.counters.handlerErrors++;
    if (channels.handlerError.hasSubscribers) channels.handlerError.publish({ server: this.owner, connection, error, type, seq });
    const message = error instanceof Error ? error.message : String(error);
    if (seq !== 0) connectionInternals().reply(connection, type, seq, FLAG_RESPONSE | FLAG_ERROR, Buffer.from(message, 'utf8'));
    // The same report as the client's: EHANDLER, the thrown value as cause.
    const reported = new EdgepollError('EHANDLER', `handler for type ${type} failed: ${message}`, { cause: error });
    this.report(reported, connection);
  }
}
