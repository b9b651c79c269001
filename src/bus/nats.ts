/**
 * `natsBus(…)`: the bus on NATS core pub/sub through the official `nats`
 * client (an optional peer dependency, loaded on first use). Channels map to
 * subjects with the same layout, each part that may hold arbitrary bytes
 * (a topic, a node id) base64url-encoded, since a subject token cannot hold
 * `.`, `*`, `>` or white space: `edgepoll.t.<topic>`, `edgepoll.n.<node>`,
 * `edgepoll.b`.
 *
 * A publish while disconnected is refused (and counted by the link) rather
 * than left in the client's reconnect buffer: at most once, never late. The
 * client reconnects by itself for ever (every 250 ms) and replays its
 * subscriptions; the link renews them too (a flush confirms each).
 * Owns: the NATS connection of each transport. Runs on: the JS thread.
 */
import { EdgepollError } from '../errors';
import type { Bus, BusEvents, BusTransport } from './bus';
import { loadOptional } from './optional';

/** Options of {@link natsBus}. */
export interface NatsBusOptions {
  /** `nats://host:port`, or several. @default 'nats://127.0.0.1:4222' */
  servers?: string | string[];
  /** First subject token. @default 'edgepoll' */
  subjectPrefix?: string;
  /** How long a topic's subject outlives its last local subscriber (ms). @default 2000 */
  dropDelay?: number;
}

interface NatsSubscription {
  unsubscribe(): void;
}
interface NatsConnection {
  subscribe(subject: string, options: { callback: (error: Error | null, message: { data: Uint8Array }) => void }): NatsSubscription;
  publish(subject: string, data: Uint8Array): void;
  flush(): Promise<void>;
  status(): AsyncIterable<{ type: string }>;
  close(): Promise<void>;
  isClosed(): boolean;
}
interface NatsModule {
  connect(options: Record<string, unknown>): Promise<NatsConnection>;
}

/** `edgepoll:t:room` → `edgepoll.t.cm9vbQ`. */
export function subjectOf(prefix: string, channel: string): string {
  const parts = channel.split(':');
  const kind = parts[1] ?? '';
  const rest = parts.slice(2).join(':');
  return rest ? `${prefix}.${kind}.${Buffer.from(rest, 'utf8').toString('base64url')}` : `${prefix}.${kind}`;
}

class NatsTransport implements BusTransport {
  #connection: NatsConnection | undefined;
  readonly #subscriptions = new Map<string, NatsSubscription>();
  #up = false;
  #closed = false;

  constructor(
    nats: NatsModule,
    private readonly options: Required<NatsBusOptions>,
    private readonly events: BusEvents,
  ) {
    nats
      .connect({
        servers: options.servers,
        waitOnFirstConnect: true,
        reconnect: true,
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: 5000,
        maxPingOut: 2,
        name: 'edgepoll-bus',
      })
      .then(
        (connection) => {
          if (this.#closed) {
            void connection.close();
            return;
          }
          this.#connection = connection;
          this.#setUp(true);
          void this.#watch(connection);
        },
        (error: unknown) => {
          if (!this.#closed) this.events.down(new EdgepollError('EBUS', 'nats connect failed', { cause: error }));
        },
      );
  }

  async #watch(connection: NatsConnection): Promise<void> {
    for await (const status of connection.status()) {
      if (status.type === 'disconnect' || status.type === 'staleConnection') this.#setUp(false);
      else if (status.type === 'reconnect') this.#setUp(true);
    }
  }

  #setUp(up: boolean): void {
    if (this.#closed || up === this.#up) return;
    this.#up = up;
    if (up) this.events.up();
    else this.events.down(new EdgepollError('EBUS', `nats ${String(this.options.servers)} unreachable`));
  }

  get up(): boolean {
    return this.#up;
  }

  async subscribe(channel: string): Promise<void> {
    const connection = this.#connection;
    if (!this.#up || !connection) throw new EdgepollError('EBUS', 'nats is down');
    if (!this.#subscriptions.has(channel)) {
      const subscription = connection.subscribe(subjectOf(this.options.subjectPrefix, channel), {
        callback: (error, message) => {
          if (!error) this.events.message(channel, Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength));
        },
      });
      this.#subscriptions.set(channel, subscription);
    }
    // The server has the SUB once it answered the PING behind it.
    await connection.flush();
  }

  async unsubscribe(channel: string): Promise<void> {
    const subscription = this.#subscriptions.get(channel);
    this.#subscriptions.delete(channel);
    subscription?.unsubscribe();
  }

  publish(channel: string, payload: Buffer): boolean {
    const connection = this.#connection;
    if (!this.#up || !connection) return false;
    try {
      connection.publish(subjectOf(this.options.subjectPrefix, channel), payload);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#up = false;
    const connection = this.#connection;
    if (connection && !connection.isClosed()) await connection.close().catch(() => undefined);
  }
}

/**
 * A bus on NATS core (at most once). Needs the optional package `nats`
 * (throws EBUS_CLIENT_MISSING without it).
 */
export function natsBus(options: NatsBusOptions | string = {}): Bus {
  const given = typeof options === 'string' ? { servers: options } : options;
  const resolved: Required<NatsBusOptions> = {
    servers: given.servers ?? 'nats://127.0.0.1:4222',
    subjectPrefix: given.subjectPrefix ?? 'edgepoll',
    dropDelay: given.dropDelay ?? 2000,
  };
  const nats = loadOptional<NatsModule>('nats', 'natsBus()');
  return { kind: 'nats', dropDelay: resolved.dropDelay, open: (events) => new NatsTransport(nats, resolved, events) };
}
