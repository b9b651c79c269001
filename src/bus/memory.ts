/**
 * `memoryBus()`: a bus between servers of one process (tests, examples, a
 * single-process app with several listeners). Messages are delivered on a
 * later microtask, in publish order, at most once, like a broker would.
 * `outage()` / `restore()` simulate losing the broker (every transport goes
 * down: publishes are refused and subscriptions forgotten, as after a Redis
 * restart), so applications can test their gap handling.
 * Owns: the channel table of its transports. Runs on: the JS thread.
 */
import { EdgepollError } from '../errors';
import type { Bus, BusEvents, BusTransport } from './bus';

/** A memory bus; pass the same object to every server that should share it. */
export interface MemoryBus extends Bus {
  readonly kind: 'memory';
  /** Simulates the broker going away: every transport goes down and loses its subscriptions. */
  outage(): void;
  /** The broker is back: every transport comes up (and its link resubscribes). */
  restore(): void;
  /** Subscribers of a channel now (like Redis PUBSUB SHARDNUMSUB). */
  subscribers(channel: string): number;
}

class MemoryTransport implements BusTransport {
  readonly channels = new Set<string>();
  up = false;
  closed = false;
  constructor(
    private readonly hub: MemoryHub,
    readonly events: BusEvents,
  ) {}

  async subscribe(channel: string): Promise<void> {
    if (!this.up) throw new EdgepollError('EBUS', 'memory bus is down');
    this.channels.add(channel);
    this.hub.index(channel).add(this);
  }

  async unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel);
    this.hub.index(channel).delete(this);
  }

  publish(channel: string, payload: Buffer): boolean {
    if (!this.up) return false;
    this.hub.deliver(channel, Buffer.from(payload));
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.up = false;
    this.hub.forget(this);
  }
}

class MemoryHub implements MemoryBus {
  readonly kind = 'memory' as const;
  constructor(readonly dropDelay: number | undefined) {}
  readonly #transports = new Set<MemoryTransport>();
  readonly #byChannel = new Map<string, Set<MemoryTransport>>();
  #down = false;

  open(events: BusEvents): BusTransport {
    const transport = new MemoryTransport(this, events);
    this.#transports.add(transport);
    queueMicrotask(() => {
      if (transport.closed || this.#down) return;
      transport.up = true;
      events.up();
    });
    return transport;
  }

  index(channel: string): Set<MemoryTransport> {
    let set = this.#byChannel.get(channel);
    if (!set) {
      set = new Set();
      this.#byChannel.set(channel, set);
    }
    return set;
  }

  deliver(channel: string, payload: Buffer): void {
    const receivers = [...(this.#byChannel.get(channel) ?? [])];
    queueMicrotask(() => {
      for (const transport of receivers) {
        if (transport.up && transport.channels.has(channel)) transport.events.message(channel, payload);
      }
    });
  }

  forget(transport: MemoryTransport): void {
    this.#transports.delete(transport);
    for (const channel of transport.channels) this.#byChannel.get(channel)?.delete(transport);
    transport.channels.clear();
  }

  outage(): void {
    if (this.#down) return;
    this.#down = true;
    for (const transport of this.#transports) {
      transport.up = false;
      for (const channel of transport.channels) this.#byChannel.get(channel)?.delete(transport);
      transport.channels.clear();
      transport.events.down(new EdgepollError('EBUS', 'memory bus outage'));
    }
  }

  restore(): void {
    if (!this.#down) return;
    this.#down = false;
    for (const transport of this.#transports) {
      transport.up = true;
      transport.events.up();
    }
  }

  subscribers(channel: string): number {
    return this.#byChannel.get(channel)?.size ?? 0;
  }
}

/** A bus for servers of this process: `createServer({ bus })` on each with the same object. */
export function memoryBus(options: { /** See {@link Bus.dropDelay}. @default 2000 */ dropDelay?: number } = {}): MemoryBus {
  return new MemoryHub(options.dropDelay);
}
