/**
 * The client's public types (status, events, handlers, request options) and
 * the options of {@link connect} (src/client/client.ts): their defaults and
 * validation through the one wording helper {@link invalidOption}.
 * Pure; JS thread.
 */
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import type { ReconnectOptions } from './backoff';
import type { Client } from './client';
import type { EdgepollError } from '../errors';
import type { HandlerResult } from '../protocol/messages';
import { checkSocketPath } from '../socket-path';
import { DEFAULT_MAX_FRAME, framings, type Framing } from '../protocol/constants';
import { heartbeat as heartbeatOption, integer, invalidOption, knownKeys, limits, oneOf, requestTimeout } from '../validate';

/**
 * Where the client stands. Changed only by one private `setStatus()`, which
 * also emits the matching event:
 * - `connecting`: a TCP connection is being made (event `'connecting'` with `{ attempt }`, 0 for the first)
 * - `open`: requests go out at once (event `'open'`)
 * - `reconnecting`: waiting before the next attempt (event `'reconnecting'` with `{ attempt, delay }`)
 * - `goaway`: the server sent GOAWAY; in-flight requests finish, new ones queue (event `'goaway'`)
 * - `closed`: final; everything pending has been rejected (event `'close'`)
 */
export type ClientStatus = 'connecting' | 'open' | 'reconnecting' | 'goaway' | 'closed';

/** What a client handler learns besides the payload. Valid until the handler settles. */
export interface ClientHandlerContext {
  client: Client;
  type: number;
  /** 0 for a push (the return value is ignored); otherwise the request id the reply carries. */
  seq: number;
}

/**
 * Answers a server request (return value → RESPONSE, throw → RESPONSE|ERROR with
 * the message) or receives a push (seq 0). `payload` stays valid as long as you hold it.
 */
export type ClientHandler<Reply = HandlerResult> = (
  payload: Buffer,
  context: ClientHandlerContext,
) => Reply | Promise<Reply>;


/**
 * Events of {@link Client}. `'error'` carries an {@link EdgepollError} (the
 * socket's own error as `cause`, its errno as `code`, e.g. `ECONNREFUSED`).
 * Without an `'error'` listener the client does not crash (it keeps
 * reconnecting): each new code is printed once as a process warning
 * (`EDGEPOLL_CLIENT_ERROR`) until the next successful connection.
 */
export interface ClientEvents {
  connecting: [{ attempt: number }];
  open: [];
  reconnecting: [{ attempt: number; delay: number }];
  goaway: [];
  close: [];
  error: [EdgepollError];
  /** length/line framing: one message; raw: one chunk. Valid as long as you hold it. */
  message: [Buffer];
  /** `bufferedAmount` fell below `highWaterMark` after a `send()`/`write()` returned false. */
  drain: [];
}

/**
 * TLS for {@link connect}: node:tls `connect()` options (`ca`, `cert`, `key`,
 * `servername`, `rejectUnauthorized`, `ALPNProtocols`, `pfx`, `passphrase`,
 * `minVersion`, …) except where to connect, which the client's own options say.
 */
export type ClientTlsOptions = Omit<TlsConnectionOptions, 'host' | 'port' | 'path' | 'socket'>;

/** Options of {@link connect}. Only `port` (or `path`) is required. */
export interface ClientOptions {
  /** Server host (an IPv6 address as is, e.g. '::1'). @default '127.0.0.1' */
  host?: string;
  /** Server port (1 to 65535); required unless `path` is given. */
  port?: number;
  /** A Unix socket path to connect to instead of host and port (not with them). */
  path?: string;
  /** How bytes are split into messages; must match the server. @default 'frame' */
  framing?: Framing;
  /** Largest payload (or line) accepted from the server, bytes. @default 1048576 */
  maxFrame?: number;
  /**
   * frame framing: send PING after `interval` ms without a received byte; after
   * `timeout` ms more of silence destroy the socket and reconnect (this is how a
   * stopped or unplugged server is noticed). `false` turns it off.
   * @default { interval: 15000, timeout: 10000 } (valid: each 1 to 3600000)
   */
  heartbeat?: { interval: number; timeout: number } | false;
  /** Reconnect policy (see {@link ReconnectOptions}); `false`: close instead of reconnecting. */
  reconnect?: ReconnectOptions | false;
  /**
   * Requests, pushes and writes that may wait for a connection; one more rejects
   * (throws for send/write) with `EQUEUE_FULL`. 0: never queue. In-flight requests
   * do not count. @default 1000 (valid: 0 to 10000000)
   */
  maxPending?: number;
  /** Default per-request timeout in ms, queue time included; 0 = none. @default 30000 */
  requestTimeout?: number;
  /** Aborting it destroys the client (everything pending rejects with `EABORTED`). */
  signal?: AbortSignal;
  /** Bytes waiting (queued and in the socket) above which `send()`/`write()` return false until `'drain'`. @default 65536 */
  highWaterMark?: number;
  /** Hard bound on waiting bytes: a message that would exceed it throws (rejects) `EQUEUE_FULL`. @default 8388608 */
  maxBufferedAmount?: number;
  /**
   * Connect over TLS (node:tls), e.g. to a load balancer that terminates it:
   * `true` for the system's CAs, or {@link ClientTlsOptions} such as
   * `{ ca, cert, key }` for a device certificate. `servername` (SNI) defaults
   * to `host` unless that is an IP address. A connection counts as open once
   * the handshake is done and the server's certificate verified; a failed
   * handshake is a failed attempt (reconnect as for any other).
   * @default false
   */
  tls?: ClientTlsOptions | boolean;
}

/** Validated options with defaults. */
export interface ResolvedClientOptions {
  host: string;
  port: number;
  /** Set: connect to this Unix socket (host and port unused). */
  path: string | undefined;
  framing: Framing;
  maxFrame: number;
  heartbeat: { interval: number; timeout: number } | false;
  maxPending: number;
  requestTimeout: number;
  highWaterMark: number;
  maxBufferedAmount: number;
  /** Set: connect through node:tls with these options. */
  tls: ClientTlsOptions | undefined;
}

export const DEFAULT_CLIENT_HEARTBEAT = { interval: 15_000, timeout: 10_000 };
export const DEFAULT_MAX_PENDING = 1000;
export const DEFAULT_REQUEST_TIMEOUT = 30_000;

const known = [
  'host', 'port', 'path', 'framing', 'maxFrame', 'heartbeat', 'reconnect', 'maxPending', 'requestTimeout', 'signal',
  'highWaterMark', 'maxBufferedAmount', 'tls',
];
/** Where to connect comes from the client's own options. */
const tlsReserved = ['host', 'port', 'path', 'socket'];

export function resolveClientOptions(options: ClientOptions): ResolvedClientOptions {
  knownKeys('options', options, known);
  const host = options.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host === '') throw invalidOption('host', 'a non-empty string', host);
  const path = options.path === undefined ? undefined : checkSocketPath(options.path);
  if (path !== undefined && (options.host !== undefined || options.port !== undefined)) {
    throw invalidOption('path', 'alone: a Unix socket path excludes host and port', path);
  }
  if (path === undefined && options.port === undefined) {
    throw invalidOption('port', `an integer from ${limits.port.min} to ${limits.port.max}`, undefined);
  }
  const port = path !== undefined ? 0 : integer('port', options.port, undefined, limits.port)!;
  const framing = oneOf('framing', options.framing, 'frame', framings);
  const maxFrame = integer('maxFrame', options.maxFrame, DEFAULT_MAX_FRAME, limits.maxFrame);
  if (framing !== 'frame' && options.heartbeat !== undefined && options.heartbeat !== false) {
    throw invalidOption('heartbeat', `false for the '${framing}' framing (it has no PING)`, JSON.stringify(options.heartbeat));
  }
  const heartbeat = framing === 'frame' ? heartbeatOption(options.heartbeat, DEFAULT_CLIENT_HEARTBEAT) : false;
  const maxPending = integer('maxPending', options.maxPending, DEFAULT_MAX_PENDING, { min: 0, max: 10_000_000 });
  const timeout = requestTimeout('requestTimeout', options.requestTimeout, DEFAULT_REQUEST_TIMEOUT);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw invalidOption('signal', 'an AbortSignal', options.signal);
  }
  const highWaterMark = integer('highWaterMark', options.highWaterMark, 64 * 1024, limits.bytes);
  const maxBufferedAmount = integer(
    'maxBufferedAmount',
    options.maxBufferedAmount,
    Math.max(8 * 1024 * 1024, highWaterMark),
    { min: highWaterMark, max: limits.bytes.max },
  );
  let tls: ClientTlsOptions | undefined;
  if (options.tls !== undefined && options.tls !== false) {
    const given: unknown = options.tls === true ? {} : options.tls;
    if (typeof given !== 'object' || given === null || Array.isArray(given)) {
      throw invalidOption('tls', 'true, false or an object of node:tls connect options', options.tls);
    }
    for (const key of tlsReserved) {
      if (key in given) throw invalidOption(`tls.${key}`, `absent (the client's own ${key === 'socket' ? 'connection' : key} option is used)`, (given as Record<string, unknown>)[key]);
    }
    tls = { ...(given as ClientTlsOptions) };
  }
  return { host, port, path, framing, maxFrame, heartbeat, maxPending, requestTimeout: timeout, highWaterMark, maxBufferedAmount, tls };
}
