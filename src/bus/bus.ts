/**
 * The bus adapter contract (issue 14, PROTOCOL.md section 6).
 *
 * A bus is a dumb, at-most-once transport of named channels. Everything
 * edgepoll-specific (which channels, the envelope, dropping our own
 * messages, interest with a delayed drop, counting, resubscribing, the gap
 * event) lives above it in {@link BusLink} (link.ts), so an adapter stays a
 * thin layer over its client library: memory.ts, redis.ts, nats.ts,
 * cluster-ipc.ts.
 *
 * Channel names: `edgepoll:t:<topic>` (one per topic), `edgepoll:n:<nodeId>`
 * (each node's inbox, for sendTo) and `edgepoll:b` (broadcast). An adapter
 * may map them (NATS subjects cannot hold arbitrary bytes) and may add a
 * prefix, but every node of one bus must map them the same way.
 * Runs on: the server's JS thread.
 */

/** What an adapter reports to the link that opened it. */
export interface BusEvents {
  /** A message arrived on a channel this transport subscribed to. */
  message(channel: string, payload: Buffer): void;
  /**
   * The transport is connected (again). Subscriptions made before may be
   * gone: the link subscribes its channels again after every `up`.
   */
  up(): void;
  /** The transport lost its connection; it keeps trying to get it back by itself. */
  down(error: Error): void;
}

/** One server's connection to a bus. */
export interface BusTransport {
  /** Connected now. */
  readonly up: boolean;
  /** Resolves once messages published to `channel` from now on reach this transport; rejects while down. */
  subscribe(channel: string): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  /** Hands one message to the bus; false when it could not (down, or refused): nothing was sent. */
  publish(channel: string, payload: Buffer): boolean;
  /** Leaves the bus and releases the client. */
  close(): Promise<void>;
}

/** An adapter: what `createServer({ bus })` takes. One adapter may be shared by several servers of one process. */
export interface Bus {
  /** A short name for logs and stats: 'memory', 'redis', 'nats', 'cluster'. */
  readonly kind: string;
  /** How long a topic's channel outlives its last local subscriber (ms). @default 2000 */
  readonly dropDelay?: number;
  /** Opens one server's transport; it reports through `events`, starting with `up` once connected. */
  open(events: BusEvents): BusTransport;
}

export const CHANNEL_PREFIX = 'edgepoll:';
export function topicChannel(topic: string): string {
  return `${CHANNEL_PREFIX}t:${topic}`;
}
export function inboxChannel(nodeId: string): string {
  return `${CHANNEL_PREFIX}n:${nodeId}`;
}
export const BROADCAST_CHANNEL = `${CHANNEL_PREFIX}b`;
