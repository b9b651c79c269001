/**
 * edgepoll's `node:diagnostics_channel` channels (README "Diagnostics"), for
 * APM tools that subscribe as they do to undici's. Messages are published only
 * while a channel has subscribers, so an unobserved server pays one boolean
 * check per event.
 * Owns: the channel names and message shapes. Runs on: the server's JS thread.
 */
import diagnostics from 'node:diagnostics_channel';
import type { Connection } from './connection';
import type { CloseReason } from './metrics';

/** `{ server, connection }`: a connection was opened (before the server's 'connection' event). */
export const CHANNEL_CONNECTION_OPEN = 'edgepoll:connection:open';
/** `{ server, connection, code, reason, closeReason }`: a connection closed (before its 'close' event). */
export const CHANNEL_CONNECTION_CLOSE = 'edgepoll:connection:close';
/** `{ server, connection, error, type, seq }`: a handler threw or rejected. */
export const CHANNEL_HANDLER_ERROR = 'edgepoll:handler:error';
/** `{ server, connection, code }`: a connection was closed as a slow consumer (also published on ...:close). */
export const CHANNEL_SLOW_CONSUMER = 'edgepoll:connection:slow-consumer';

/** Message of {@link CHANNEL_CONNECTION_OPEN}. */
export interface ConnectionOpenMessage {
  server: object;
  connection: Connection;
}
/** Message of {@link CHANNEL_CONNECTION_CLOSE}. */
export interface ConnectionCloseMessage {
  server: object;
  connection: Connection;
  /** The engine code ('OK' for a clean close, 'EIDLE_TIMEOUT', …). */
  code: string;
  /** The CLOSE text, if any. */
  reason: string;
  /** The metrics category (stats().closed key). */
  closeReason: CloseReason;
}
/** Message of {@link CHANNEL_HANDLER_ERROR}. */
export interface HandlerErrorMessage {
  server: object;
  connection: Connection;
  error: unknown;
  type: number;
  /** 0 for a push. */
  seq: number;
}
/** Message of {@link CHANNEL_SLOW_CONSUMER}. */
export interface SlowConsumerMessage {
  server: object;
  connection: Connection;
  code: 'ESLOW_CONSUMER';
}

export const channels = {
  open: diagnostics.channel(CHANNEL_CONNECTION_OPEN),
  close: diagnostics.channel(CHANNEL_CONNECTION_CLOSE),
  handlerError: diagnostics.channel(CHANNEL_HANDLER_ERROR),
  slowConsumer: diagnostics.channel(CHANNEL_SLOW_CONSUMER),
};
