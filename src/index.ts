/**
 * edgepoll: high-concurrency TCP servers for Node.js.
 * Public exports only; see README.md.
 */
export { createServer, Server } from './server';
export type { ListenOptions, ServerAddress, ServerStats, ServerEvents, PublishOptions } from './server';
export { memoryBus } from './bus/memory';
export type { MemoryBus } from './bus/memory';
export { redisBus } from './bus/redis';
export type { RedisBusOptions } from './bus/redis';
export { natsBus } from './bus/nats';
export type { NatsBusOptions } from './bus/nats';
export type { Bus, BusEvents, BusTransport } from './bus/bus';
export type { BusStats, BusGap } from './bus/link';
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
