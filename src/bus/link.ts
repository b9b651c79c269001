/**
 * One server's membership of a bus, above a {@link BusTransport}: which
 * channels it holds (its inbox, broadcast, and one per topic while it has a
 * local subscriber, dropped `dropDelay` ms after the last one leaves, to damp
 * churn), the envelope, dropping its own messages, the counters of
 * `stats().bus`, explicit resubscription after every reconnect, and one gap
 * report per outage.
 * Owns: the transport. Does not own: local membership (TopicTable) or
 * delivery (the hub hands frames to the engine). Runs on: the server's JS thread.
 */
import { EdgepollError } from '../errors';
import { BROADCAST_CHANNEL, inboxChannel, topicChannel, type Bus, type BusTransport } from './bus';
import { decodeEnvelope, encodeEnvelope, KIND_BROADCAST, KIND_INBOX, KIND_TOPIC } from './envelope';

/** How long a topic's bus subscription outlives its last local subscriber (ms). */
export const DEFAULT_DROP_DELAY = 2000;

/** Counters of one server's bus link (`stats().bus`). */
export interface BusStats {
  kind: string;
  nodeId: string;
  /** Connected now. */
  up: boolean;
  /** Bus channels held now (inbox and broadcast included). */
  channels: number;
  /** Messages handed to the bus. */
  sent: number;
  /** Messages that could not be handed to the bus (it was down): lost for every other node. */
  sendDropped: number;
  /** Messages received from other nodes and delivered locally. */
  received: number;
  /** Our own messages coming back, ignored. */
  own: number;
  /** Messages that were no valid envelope or frame, or for a topic nobody here subscribes to any more. */
  receiveDropped: number;
  /** Outages so far (each reported by one 'busgap' event once the bus is back). */
  gaps: number;
}

/** One outage, reported once the bus is back and every channel is subscribed again. */
export interface BusGap {
  /** When the bus went down / came back (ms since the epoch). */
  from: number;
  to: number;
  /** Messages this node could not send meanwhile. */
  sendDropped: number;
  /** Why it went down. */
  error: Error;
}

export interface LinkHandlers {
  topic(topic: string, frame: Buffer, except: string): void;
  inbox(target: string, frame: Buffer): void;
  broadcast(frame: Buffer): void;
  gap(gap: BusGap): void;
  error(error: Error): void;
}

interface Held {
  /** Settles when the bus subscription is in effect (or the bus was found down). */
  ready: Promise<void>;
  dropTimer: NodeJS.Timeout | undefined;
}

export class BusLink {
  readonly #transport: BusTransport;
  readonly #held = new Map<string, Held>();
  readonly #inbox: string;
  readonly #stats: BusStats;
  /**
   * Set while the bus is unreachable. It starts set (not reached yet); that
   * first one is reported only if the server had to do without the bus
   * meanwhile (a message not sent, a subscription made locally only).
   */
  #outage: { from: number; sendDropped: number; error: Error; initial: boolean; missed: boolean } | undefined;
  #closed = false;
  #reached!: () => void;
  /** Settles once the bus was first reached and this node's channels are subscribed. */
  readonly reached = new Promise<void>((resolve) => (this.#reached = resolve));

  constructor(
    bus: Bus,
    readonly nodeId: string,
    private readonly handlers: LinkHandlers,
    private readonly dropDelay = bus.dropDelay ?? DEFAULT_DROP_DELAY,
  ) {
    this.#inbox = inboxChannel(nodeId);
    this.#stats = {
      kind: bus.kind, nodeId, up: false, channels: 0, sent: 0, sendDropped: 0, received: 0, own: 0, receiveDropped: 0, gaps: 0,
    };
    this.#outage = {
      from: Date.now(),
      sendDropped: 0,
      error: new EdgepollError('EBUS', `the ${bus.kind} bus was not reached yet`),
      initial: true,
      missed: false,
    };
    this.#transport = bus.open({
      message: (channel, payload) => this.#onMessage(channel, payload),
      up: () => this.#onUp(),
      down: (error) => this.#onDown(error),
    });
    this.#hold(this.#inbox);
    this.#hold(BROADCAST_CHANNEL);
    this.#outage.missed = false; // holding our own channels before the first connection is no miss
  }

  get stats(): BusStats {
    return { ...this.#stats, up: this.#transport.up, channels: this.#held.size };
  }

  /** Holds the topic's channel; resolves once a publish made anywhere from then on reaches this node (or at once while the bus is down). */
  want(topic: string): Promise<void> {
    const channel = topicChannel(topic);
    const held = this.#held.get(channel);
    if (held) {
      if (held.dropTimer) clearTimeout(held.dropTimer);
      held.dropTimer = undefined;
      return held.ready;
    }
    return this.#hold(channel).ready;
  }

  /** The topic's last local subscriber left: drop the channel after the delay, unless wanted again. */
  unwant(topic: string): void {
    const channel = topicChannel(topic);
    const held = this.#held.get(channel);
    if (!held || held.dropTimer) return;
    held.dropTimer = setTimeout(() => {
      this.#held.delete(channel);
      if (this.#transport.up) this.#transport.unsubscribe(channel).catch(() => undefined);
    }, this.dropDelay);
    held.dropTimer.unref();
  }

  /** Whether the node holds the topic's channel (interest routing; tests). */
  holds(topic: string): boolean {
    return this.#held.has(topicChannel(topic));
  }

  publish(topic: string, frame: Uint8Array, except: string): void {
    this.#send(topicChannel(topic), encodeEnvelope(KIND_TOPIC, this.nodeId, except, topic, frame));
  }

  sendTo(node: string, address: string, frame: Uint8Array): void {
    this.#send(inboxChannel(node), encodeEnvelope(KIND_INBOX, this.nodeId, address, '', frame));
  }

  broadcast(frame: Uint8Array): void {
    this.#send(BROADCAST_CHANNEL, encodeEnvelope(KIND_BROADCAST, this.nodeId, '', '', frame));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#reached();
    for (const held of this.#held.values()) if (held.dropTimer) clearTimeout(held.dropTimer);
    this.#held.clear();
    await this.#transport.close().catch(() => undefined);
  }

  #send(channel: string, payload: Buffer): void {
    if (this.#closed) return;
    if (this.#transport.up && this.#transport.publish(channel, payload)) this.#stats.sent++;
    else this.#stats.sendDropped++;
  }

  #hold(channel: string): Held {
    const held: Held = { ready: Promise.resolve(), dropTimer: undefined };
    this.#held.set(channel, held);
    held.ready = this.#subscribe(channel);
    return held;
  }

  /** Never rejects: while the bus is down the local subscription is all there is, and #onUp renews this one. */
  #subscribe(channel: string): Promise<void> {
    if (!this.#transport.up) {
      if (this.#outage) this.#outage.missed = true;
      return Promise.resolve();
    }
    return this.#transport.subscribe(channel).catch((error: unknown) => {
      if (this.#transport.up && !this.#closed) {
        this.handlers.error(new EdgepollError('EBUS', `bus subscribe ${channel} failed`, { cause: error }));
      }
    });
  }

  #onUp(): void {
    if (this.#closed) return;
    const outage = this.#outage;
    this.#outage = undefined;
    const renewals = [...this.#held.entries()].map(([channel, held]) => {
      held.ready = this.#subscribe(channel);
      return held.ready;
    });
    void Promise.all(renewals).then(() => this.#reached());
    if (!outage) return;
    if (outage.initial && !outage.missed && this.#stats.sendDropped === 0) return;
    this.#stats.gaps++;
    void Promise.all(renewals).then(() => {
      this.handlers.gap({
        from: outage.from,
        to: Date.now(),
        sendDropped: this.#stats.sendDropped - outage.sendDropped,
        error: outage.error,
      });
    });
  }

  #onDown(error: Error): void {
    if (this.#closed || this.#outage) return;
    this.#outage = { from: Date.now(), sendDropped: this.#stats.sendDropped, error, initial: false, missed: false };
  }

  #onMessage(channel: string, payload: Buffer): void {
    if (this.#closed) return;
    const envelope = decodeEnvelope(payload);
    if (!envelope) {
      this.#stats.receiveDropped++;
      return;
    }
    if (envelope.origin === this.nodeId) {
      this.#stats.own++;
      return;
    }
    if (!this.#held.has(channel)) {
      this.#stats.receiveDropped++; // a late message on a channel being dropped
      return;
    }
    this.#stats.received++;
    switch (envelope.kind) {
      case KIND_TOPIC:
        this.handlers.topic(envelope.topic, envelope.frame, envelope.target);
        break;
      case KIND_INBOX:
        this.handlers.inbox(envelope.target, envelope.frame);
        break;
      case KIND_BROADCAST:
        this.handlers.broadcast(envelope.frame);
        break;
      default:
        this.#stats.received--;
        this.#stats.receiveDropped++;
    }
  }
}
