/**
 * edgepoll: high-concurrency TCP servers for Node.js.
 * Public exports only; see README.md. Every type a public signature uses is
 * exported here; wire helpers (frame encoders, constants) are not API.
 */
export { createServer, Server } from './server/server';
export type { ListenOptions, ServerAddress, ServerStats, ServerEvents, PublishOptions, LoopStats } from './server/server';
export { memoryBus } from './bus/memory';
export type { MemoryBus } from './bus/memory';
export { redisBus } from './bus/redis';
export type { RedisBusOptions } from './bus/redis';
export { natsBus } from './bus/nats';
export type { NatsBusOptions } from './bus/nats';
export type { Bus, BusEvents, BusTransport } from './bus/bus';
export type { BusStats, BusGap } from './bus/link';
export type { MetricsSnapshot, CloseCounts, CloseReason, HistogramSnapshot } from './server/metrics';
export type { Logger, LogLevel } from './server/logger';
export {
  CHANNEL_CONNECTION_OPEN,
  CHANNEL_CONNECTION_CLOSE,
  CHANNEL_HANDLER_ERROR,
  CHANNEL_SLOW_CONSUMER,
} from './server/diagnostics';
export type { ConnectionOpenMessage, ConnectionCloseMessage, HandlerErrorMessage, SlowConsumerMessage } from './server/diagnostics';
export { Connection } from './server/connection';
export type { ConnectionEvents } from './server/connection';
export type { Handler, HandlerContext, DispatchCounters } from './server/dispatcher';
export type { ServerOptions, ResolvedOptions, EngineName } from './server/options';
export type { EngineOptions } from './engines/engine';
export type { ConnectionTls } from './proxy/header';
export type { Payload } from './protocol/payload';
export type {
  MessageMap, MessageSpec, AnyMessages, TypeOf, RequestOf, ReplyOf, HandlerResult, RequestOptions,
} from './protocol/messages';
export type { Framing } from './protocol/constants';
export { connect, Client } from './client/client';
export type {
  ClientOptions, ClientStatus, ClientEvents, ClientHandler, ClientHandlerContext, ReadyOptions, ReconnectOptions,
} from './client/client';
/** @deprecated The client and the server share one {@link RequestOptions}. */
export type { RequestOptions as ClientRequestOptions } from './protocol/messages';
export type { ClientTlsOptions } from './client/options';
export { EdgepollError } from './errors';
export type { ErrorCode, EngineCode, ApiCode } from './errors';
export { nativeLoadError } from './engines/native/binding';
