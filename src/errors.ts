/**
 * Every error edgepoll raises is an {@link EdgepollError} with a `code`.
 * errno names pass through (`ECONNRESET`, `EPIPE`, `EMFILE`); edgepoll's own
 * codes are `E` + SCREAMING_CASE.
 */

/**
 * Codes the engines produce, in the order of `native/errors.h`
 * (test/errors.test.ts checks that both lists match, index by index).
 */
export const engineCodes = [
  'OK',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EMFILE',
  'ENFILE',
  'ENOSPC',
  'ENOMEM',
  'EIO',
  'EBAD_MAGIC',
  'EBAD_FLAGS',
  'EBAD_TYPE',
  'EUNKNOWN_CONTROL',
  'EPING_TOO_LARGE',
  'EUNEXPECTED_GOAWAY',
  'EFRAME_TOO_LARGE',
  'EFRAME_TIMEOUT',
  'EHEARTBEAT_TIMEOUT',
  'EIDLE_TIMEOUT',
  'ESLOW_CONSUMER',
  'ESERVER_FULL',
  'ESHUTDOWN',
  'ECLOSED_BY_PEER',
  'EDESTROYED',
  'EPROXY_HEADER',
  'EPROXY_TIMEOUT',
  'EPROXY_UNTRUSTED',
] as const;

/** The CLOSE-frame reason for the codes a server closes a connection with. */
export const closeReasons: Partial<Record<EngineCode, string>> = {
  EBAD_MAGIC: 'protocol error: bad magic',
  EBAD_FLAGS: 'protocol error: reserved flags',
  EBAD_TYPE: 'protocol error: invalid type',
  EUNKNOWN_CONTROL: 'protocol error: unknown control type',
  EPING_TOO_LARGE: 'protocol error: ping payload too large',
  EUNEXPECTED_GOAWAY: 'protocol error: goaway from client',
  EFRAME_TOO_LARGE: 'frame too large',
  EFRAME_TIMEOUT: 'frame timeout',
  EHEARTBEAT_TIMEOUT: 'heartbeat timeout',
  EIDLE_TIMEOUT: 'idle timeout',
  ESLOW_CONSUMER: 'slow consumer',
  ESERVER_FULL: 'server full',
  ESHUTDOWN: 'shutdown',
};

/** Codes raised only by the JavaScript layers (server API and client). */
export const apiCodes = [
  'ECONNECTION_CLOSED', // a closed connection was used
  'ECONNECTION_LOST', // a request was in flight when its connection died
  'EQUEUE_FULL', // the client's pending queue is full
  'EREMOTE', // the peer answered RESPONSE|ERROR
  'EREQUEST_TIMEOUT', // no reply within the request timeout
  'EABORTED', // an AbortSignal fired
  'EINVALID_OPTION', // an option or argument has the wrong type or range
  'ENATIVE_UNAVAILABLE', // engine 'native' was asked for and the addon did not load
  'ESERVER_ALREADY_LISTENING',
  'EHANDLER', // a handler threw or rejected (reported through 'error', the thrown value as cause)
  'EWORKER_EXIT', // a cluster worker exited unexpectedly (it is replaced)
  'ERELOAD_FAILED', // a new generation of workers did not start; the old one keeps serving
  'EBAD_TOPIC', // a topic name is not 1-200 bytes of UTF-8 without 0x00
  'ETOO_MANY_TOPICS', // a connection is at maxTopicsPerConnection
  'EBAD_ADDRESS', // not a connection address (nodeId/connection)
  'EBUS', // the bus could not be reached or failed (the cause says why); the server keeps serving
  'EBUS_CLIENT_MISSING', // redisBus needs ioredis, natsBus needs nats: install the optional peer dependency
] as const;

export type EngineCode = (typeof engineCodes)[number];
export type ApiCode = (typeof apiCodes)[number];
/** Every code edgepoll may put on an error; errno names from the OS may appear too. */
export type ErrorCode = EngineCode | ApiCode | (string & {});

/** The one error class of edgepoll. */
export class EdgepollError extends Error {
  /** A stable, machine-readable code, e.g. `EFRAME_TOO_LARGE` or `ECONNRESET`. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? describe(code), options);
    this.name = 'EdgepollError';
    this.code = code;
  }
}

/** A human sentence for a code. */
export function describe(code: ErrorCode): string {
  const reason = closeReasons[code as EngineCode];
  if (reason) return reason;
  switch (code) {
    case 'ECONNRESET': return 'connection reset by peer';
    case 'EPIPE': return 'broken pipe';
    case 'ECLOSED_BY_PEER': return 'the peer closed the connection';
    case 'EDESTROYED': return 'the connection was destroyed';
    case 'ECONNECTION_CLOSED': return 'the connection is closed';
    case 'ECONNECTION_LOST': return 'the connection was lost before a reply arrived';
    case 'EQUEUE_FULL': return 'too many requests are waiting for a connection';
    case 'EREQUEST_TIMEOUT': return 'the request timed out';
    case 'EABORTED': return 'the operation was aborted';
    default: return code;
  }
}

/** Name of an engine code number (as carried in native batches). */
export function engineCodeName(index: number): string {
  return engineCodes[index] ?? 'EUNKNOWN';
}

/**
 * The one wording helper for argument validation: every invalid option reads
 * the same way ("option `threads` must be an integer from 1 to 64, got 0").
 */
export function invalidOption(name: string, expected: string, got: unknown): EdgepollError {
  let shown: string;
  try {
    shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  } catch {
    shown = typeof got;
  }
  return new EdgepollError('EINVALID_OPTION', `option \`${name}\` must be ${expected}, got ${shown}`);
}

/**
 * `error` as an EdgepollError: an EdgepollError as is; anything else (a socket's
 * errno error, a thrown value) wrapped, its errno `code` kept when it has one
 * (`ECONNREFUSED`), `fallback` otherwise, and the original as `cause`.
 */
export function toEdgepollError(error: unknown, fallback: ErrorCode = 'EIO', context?: string): EdgepollError {
  if (error instanceof EdgepollError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return new EdgepollError(typeof code === 'string' && /^E[A-Z0-9_]+$/.test(code) ? code : fallback, context ? `${context}: ${message}` : message, {
    cause: error,
  });
}
