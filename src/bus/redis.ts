/**
 * `redisBus(…)`: the bus on Redis 7+ sharded pub/sub (SSUBSCRIBE/SPUBLISH),
 * through ioredis (an optional peer dependency, loaded on first use). A
 * shard channel stays inside its shard: the same code works on a standalone
 * server and, channel by channel, on Redis Cluster.
 *
 * Two connections per server: one in subscriber mode, one for SPUBLISH.
 * `enableOfflineQueue: false`: while Redis is unreachable a publish is
 * refused at once (and counted as dropped by the link) instead of being
 * queued and delivered late, out of the at-most-once contract; ioredis keeps
 * reconnecting (every 100 ms … 1 s) and the link renews every subscription
 * after each reconnect (ioredis' own autoResubscribe is off so there is one
 * way it happens, observable in the gap event).
 * Owns: the two ioredis clients of each transport. Runs on: the JS thread.
 */
import { EdgepollError } from '../errors';
import type { Bus, BusEvents, BusTransport } from './bus';
import { loadOptional } from './optional';

/** Options of {@link redisBus}. */
export interface RedisBusOptions {
  /** `redis://[user:password@]host:port[/db]`. @default 'redis://127.0.0.1:6379' */
  url?: string;
  /**
   * Redis Cluster: some of its masters (`{ host, port }`); `url` is then
   * ignored. ioredis' `Cluster` with `shardedSubscribers` keeps one subscriber
   * per shard and follows MOVED. @default none (a standalone server)
   */
  cluster?: Array<{ host: string; port: number }>;
  /** Prepended to every channel name, to share one Redis between several applications. @default '' */
  prefix?: string;
  /** How long a topic's channel outlives its last local subscriber (ms). @default 2000 */
  dropDelay?: number;
  /** Upper bound of the reconnect back-off (ms). @default 1000 */
  maxReconnectDelay?: number;
}

/** The part of ioredis this adapter uses (typed here so the package's types do not need ioredis). */
interface RedisClient {
  status: string;
  on(event: string, listener: (...args: never[]) => void): unknown;
  ssubscribe(channel: string): Promise<unknown>;
  sunsubscribe(channel: string): Promise<unknown>;
  spublish(channel: string, message: Buffer): Promise<unknown>;
  quit(): Promise<unknown>;
  disconnect(): void;
}
type RedisConstructor = (new (url: string, options: Record<string, unknown>) => RedisClient) & {
  Cluster: new (nodes: Array<{ host: string; port: number }>, options: Record<string, unknown>) => RedisClient;
};
type Resolved = Required<Omit<RedisBusOptions, 'cluster'>> & Pick<RedisBusOptions, 'cluster'>;

class RedisTransport implements BusTransport {
  readonly #sub: RedisClient;
  readonly #pub: RedisClient;
  #up = false;
  #closed = false;

  constructor(
    Redis: RedisConstructor,
    private readonly options: Resolved,
    private readonly events: BusEvents,
  ) {
    const common = {
      enableOfflineQueue: false,
      autoResubscribe: false,
      maxRetriesPerRequest: 1,
      lazyConnect: false,
      retryStrategy: (times: number) => Math.min(100 * times, options.maxReconnectDelay),
    };
    const create = (connectionName: string): RedisClient => {
      if (!options.cluster) return new Redis(options.url, { ...common, connectionName });
      // Not enableOfflineQueue: false here: ioredis' Cluster then fails and
      // re-sends commands to a node whose connection is still coming up,
      // which reorders SPUBLISHes of one channel (measured: 3 of 5 channels out
      // of order on a fresh 3-master cluster). The transport refuses
      // publishes itself while the cluster is not ready.
      return new Redis.Cluster(options.cluster, {
        shardedSubscribers: true,
        clusterRetryStrategy: common.retryStrategy,
        redisOptions: { connectionName, maxRetriesPerRequest: 1, autoResubscribe: false },
      });
    };
    this.#sub = create('edgepoll-bus-sub');
    this.#pub = create('edgepoll-bus-pub');
    for (const client of [this.#sub, this.#pub]) {
      client.on('ready', () => this.#check());
      client.on('close', () => this.#check());
      client.on('end', () => this.#check());
      // ioredis reports each failed attempt; the state change is what matters (#check).
      client.on('error', (() => undefined) as (...args: never[]) => void);
    }
    this.#sub.on('smessageBuffer', ((channel: Buffer, message: Buffer) => {
      const name = channel.toString('utf8');
      if (name.startsWith(options.prefix)) events.message(name.slice(options.prefix.length), message);
    }) as (...args: never[]) => void);
  }

  get up(): boolean {
    return this.#up;
  }

  #check(): void {
    if (this.#closed) return;
    const up = this.#sub.status === 'ready' && this.#pub.status === 'ready';
    if (up === this.#up) return;
    this.#up = up;
    if (up) this.events.up();
    else this.events.down(new EdgepollError('EBUS', `redis ${this.options.cluster ? 'cluster' : this.options.url} unreachable`));
  }

  async subscribe(channel: string): Promise<void> {
    if (!this.#up) throw new EdgepollError('EBUS', 'redis is down');
    await this.#sub.ssubscribe(this.options.prefix + channel);
  }

  async unsubscribe(channel: string): Promise<void> {
    if (!this.#up) return;
    await this.#sub.sunsubscribe(this.options.prefix + channel);
  }

  publish(channel: string, payload: Buffer): boolean {
    if (!this.#up) return false;
    this.#pub.spublish(this.options.prefix + channel, payload).catch(() => undefined);
    return true;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    await Promise.all(
      [this.#sub, this.#pub].map((client) =>
        client.status === 'ready' ? client.quit().catch(() => client.disconnect()) : Promise.resolve(client.disconnect()),
      ),
    );
  }
}

/**
 * A bus on Redis 7 or later (sharded pub/sub). Needs the optional package
 * `ioredis` (throws EBUS_CLIENT_MISSING without it). One adapter may serve
 * several servers of one process: each gets its own connections.
 */
export function redisBus(options: RedisBusOptions | string = {}): Bus {
  const given = typeof options === 'string' ? { url: options } : options;
  const resolved: Resolved = {
    url: given.url ?? 'redis://127.0.0.1:6379',
    cluster: given.cluster,
    prefix: given.prefix ?? '',
    dropDelay: given.dropDelay ?? 2000,
    maxReconnectDelay: given.maxReconnectDelay ?? 1000,
  };
  const Redis = loadOptional<RedisConstructor>('ioredis', 'redisBus()');
  return {
    kind: 'redis',
    dropDelay: resolved.dropDelay,
    open: (events) => new RedisTransport(Redis, resolved, events),
  };
}
