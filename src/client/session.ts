/**
 * One TCP connection of the client, from connect to close: its socket,
 * decoder, per-connection seq counter, the requests in flight on it, and the
 * answers to the server's requests (handlers). A new Session is made for every
 * (re)connect, so nothing of a dead connection (seqs, replies of handlers that
 * settle late) leaks into the next one.
 * Owns: the in-flight map. Does not own: the queue, timers or status (src/client/client.ts).
 * Runs on the JS thread.
 */
import type net from 'node:net';
import type { ClientHeartbeat } from './heartbeat';
import type { Decoder } from '../protocol/codec';
import { EdgepollError } from '../errors';
import type { HandlerResult } from '../protocol/messages';
import { toBytes, type Payload } from '../protocol/payload';
import { FLAG_ERROR, FLAG_RESPONSE, encodeFrame } from '../protocol/constants';

/** A request, push or write waiting in the client's queue or (requests only) in flight. */
export interface Pending {
  type: number;
  payload: Uint8Array;
  /** Already-encoded bytes of a `write()` (non-frame framings). */
  encoded?: Buffer;
  /** Set for requests only. */
  resolve?: (reply: Buffer) => void;
  reject?: (error: Error) => void;
  timer?: unknown;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** The connection the request went out on, and its seq there. */
  session?: Session;
  seq: number;
}


export class Session {
  readonly inflight = new Map<number, Pending>();
  heartbeat: ClientHeartbeat | undefined;
  connected = false;
  /** GOAWAY received, or the client is closing: nothing new is sent here. */
  draining = false;
  /** Finished: ignore anything the socket still reports. */
  dead = false;
  private nextSeq = 1;

  constructor(
    readonly socket: net.Socket,
    readonly decoder: Decoder,
  ) {}

  /** Per connection: u32, incrementing, skipping 0 and any seq still awaiting its reply after wrap-around. */
  allocateSeq(): number {
    for (;;) {
      const seq = this.nextSeq;
      this.nextSeq = seq === 0xffffffff ? 1 : seq + 1;
      if (!this.inflight.has(seq)) return seq;
    }
  }

  /** Sends a request (registering it in flight), a push or an encoded write. */
  transmit(pending: Pending): void {
    if (pending.encoded) {
      this.socket.write(pending.encoded);
      return;
    }
    if (pending.resolve) {
      pending.seq = this.allocateSeq();
      pending.session = this;
      this.inflight.set(pending.seq, pending);
    }
    this.socket.write(encodeFrame(0, pending.type, pending.seq, pending.payload));
  }

  /** A frame to the server, unless this connection is over (a late handler reply goes nowhere). */
  sendFrame(flags: number, type: number, seq: number, payload: Uint8Array): void {
    if (!this.dead) this.socket.write(encodeFrame(flags, type, seq, payload));
  }

  /**
   * Runs the handler of a server request or push, with the server's reply rules:
   * return value → RESPONSE; throw/reject → RESPONSE|ERROR with the message only
   * (plus `report`); no handler → RESPONSE|ERROR `unknown type <n>`. Returns false
   * for a push nobody handles (the caller counts it).
   */
  answer<Context>(
    handler: ((payload: Buffer, context: Context) => HandlerResult | Promise<HandlerResult>) | undefined,
    type: number,
    seq: number,
    payload: Buffer,
    context: Context,
    report: (error: Error) => void,
  ): boolean {
    if (!handler) {
      if (seq === 0) return false;
      this.sendFrame(FLAG_RESPONSE | FLAG_ERROR, type, seq, Buffer.from(`unknown type ${type}`));
      return true;
    }
    const failed = (error: unknown): void => {
      const message = error instanceof Error ? error.message : String(error);
      if (seq !== 0) this.sendFrame(FLAG_RESPONSE | FLAG_ERROR, type, seq, Buffer.from(message, 'utf8'));
      report(new EdgepollError('EHANDLER', `handler for type ${type} failed: ${message}`, { cause: error }));
    };
    const succeed = (value: HandlerResult): void => {
      if (seq === 0) return;
      let bytes: Uint8Array;
      try {
        bytes = toBytes(value as Payload | undefined, 'a handler reply');
      } catch (error) {
        failed(error);
        return;
      }
      this.sendFrame(FLAG_RESPONSE, type, seq, bytes);
    };
    let result: HandlerResult | Promise<HandlerResult>;
    try {
      result = handler(payload, context);
    } catch (error) {
      failed(error);
      return true;
    }
    if (result !== null && typeof result === 'object' && typeof (result as Promise<HandlerResult>).then === 'function') {
      (result as Promise<HandlerResult>).then(succeed, failed);
    } else {
      succeed(result as HandlerResult);
    }
    return true;
  }
}
