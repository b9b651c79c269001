/**
 * Typed message maps: declare, per message type id, what a request (or push)
 * of that type carries and what its reply carries, and `handle`, `send`,
 * `request` and `broadcast` check both at compile time:
 *
 * ```ts
 * interface ChatApi {
 *   1: { request: string; reply: string };      // ECHO
 *   10: { request: Uint8Array; reply: void };   // a push: no reply
 * }
 * const server = createServer<ChatApi>();
 * server.handle(1, (payload) => payload.toString()); // must return a string
 * server.handle(2, () => 'x');                        // error: 2 is not in ChatApi
 * ```
 *
 * Received payloads are always Buffers (bytes off the wire); the map types
 * what you send and reply. Without a map every type 1 … 0xFEFF is allowed.
 */
import type { Payload } from './payload';

/** What one message type carries. */
export interface MessageSpec {
  /** What a request or push of this type carries. */
  request?: Payload | void;
  /**
   * What the handler of this type returns as its reply (`void`: no reply
   * payload). It is sent as bytes: the requester's `request()` resolves with a
   * Buffer whatever this says (decode it yourself), and its type says so.
   */
  reply?: Payload | void | null;
}

/**
 * Type id → {@link MessageSpec}. Declared as `object` so that an interface
 * (which has no implicit index signature) works as well as a type literal;
 * entries that are not a MessageSpec simply type their payloads as Payload.
 */
export type MessageMap = object;

/** The default: any type, any payload. */
export type AnyMessages = { [type: number]: { request: Payload | void; reply: Payload | void | null | undefined } };

/** The type ids a map declares. */
export type TypeOf<M extends MessageMap> = keyof M & number;

/** What a request of type T carries. */
export type RequestOf<M extends MessageMap, T extends TypeOf<M>> = M[T] extends { request: infer R } ? R : Payload;

/** What the reply to type T carries. */
export type ReplyOf<M extends MessageMap, T extends TypeOf<M>> = M[T] extends { reply: infer R } ? R : Payload;

/** What a handler may return: its reply (ignored for pushes). Server and client handlers alike. */
export type HandlerResult = Payload | void | null | undefined;

/** Per-request options of `client.request()` and `connection.request()`. */
export interface RequestOptions {
  /**
   * ms from the call until the reply (on the client, queue time included); 0 = none.
   * An integer from 0 to 86400000; anything else (-1, NaN, 1.5) throws `EINVALID_OPTION`.
   * @default the client's or server's `requestTimeout` (30000)
   */
  timeout?: number;
  /** Rejects the request with `EABORTED` (a reply arriving later is dropped). */
  signal?: AbortSignal;
}
