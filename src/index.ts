/**
 * edgepoll: high-concurrency TCP servers for Node.js.
 * Public exports only; see README.md.
 */
export { createServer, Server } from './server';
export type { ListenOptions, ServerAddress, ServerStats, ServerEvents, LoopStats } from './server';
export type { MetricsSnapshot, CloseCounts, CloseReason, HistogramSnapshot, BusCounts } from './metrics';
export type { Logger, LogLevel } from './logger';
export {
  CHANNEL_CONNECTION_OPEN,
  CHANNEL_CONNECTION_CLOSE,
  CHANNEL_HANDLER_ERROR,
  CHANNEL_SLOW_CONSUMER,
} from './diagnostics';
export type { ConnectionOpenMessage, ConnectionCloseMessage, HandlerErrorMessage, SlowConsumerMessage } from './diagnostics';
export { Connection } from './connection';
export type { ConnectionEvents, RequestOptions } from './connection';
export type { Handler, HandlerContext, HandlerResult } from './dispatcher';
export type { ServerOptions, EngineName } from './options';
export type { Payload } from './payload';
export type { MessageMap, MessageSpec, AnyMessages, RequestOf, ReplyOf } from './messages';
export type { Framing } from './protocol';
export { connect, Client } from './client';
export type { ClientOptions, ClientStatus, ClientEvents, ClientHandler, ReconnectOptions } from './client';
export type { RequestOptions as ClientRequestOptions } from './client';
export { EdgepollError } from './errors';
export type { ErrorCode } from './errors';
export { nativeLoadError } from './binding';
export * as protocol from './protocol';
