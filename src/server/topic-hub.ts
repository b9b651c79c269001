/**
 * Topics, addresses and the bus for one server (issue 14, docs/PROTOCOL.md
 * sections 5-6): validates and limits subscriptions, keeps the JS mirror of
 * membership (TopicTable), tells the engine (which does the fan-out: native
 * loops share one encoded frame between members, JS is not woken per
 * receiver), and bridges to the bus: publishes, broadcasts and sendTo leave
 * through the BusLink; what arrives from it goes to the same engine fan-out
 * as a local publish.
 * Owns: the TopicTable, the address → connection map, the BusLink.
 * Does not own: connections (the server), sockets (the engine).
 * Runs on: the server's JS thread.
 */
import type { Connection } from './connection';
import type { Engine } from '../engines/engine';
import { EdgepollError } from '../errors';
import { AddressBook, nodeOf } from '../bus/address';
import type { Bus } from '../bus/bus';
import { BusLink, type BusGap, type BusStats } from '../bus/link';
import { HEADER_SIZE, MAGIC, type Framing } from '../protocol/constants';
import { TopicTable, topicBytes } from './topics';

export interface HubOptions {
  nodeId: string;
  maxTopicsPerConnection: number;
  framing: Framing;
  /** Whether broadcasts should also travel the bus (not when the engine already spans the processes). */
  busBroadcast: boolean;
}

export interface HubEvents {
  gap(gap: BusGap): void;
  error(error: Error): void;
}

const noTopics: ReadonlySet<string> = new Set();

export class TopicHub {
  readonly table = new TopicTable();
  readonly #addresses: AddressBook;
  readonly #byAddress = new Map<string, Connection>();
  /** Each connection's topics (the public `connection.topics`). */
  readonly #topicsOf = new Map<Connection, Set<string>>();
  #link: BusLink | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly options: HubOptions,
    private readonly events: HubEvents,
  ) {
    this.#addresses = new AddressBook(options.nodeId);
  }

  get nodeId(): string {
    return this.options.nodeId;
  }

  /** Joins the bus (at listen()). The server serves whether or not it is reachable. */
  join(bus: Bus): void {
    if (this.#link) return;
    this.#link = new BusLink(bus, this.options.nodeId, {
      topic: (topic, frame, except) => this.#fromBus(topic, frame, except),
      inbox: (target, frame) => {
        const connection = this.#byAddress.get(target);
        if (connection && this.#valid(frame)) this.engine.write(connection.id, frame);
      },
      broadcast: (frame) => {
        if (!this.#valid(frame)) return;
        if (this.engine.broadcastLocal) this.engine.broadcastLocal(frame);
        else this.engine.broadcast(frame);
      },
      gap: (gap) => this.events.gap(gap),
      error: (error) => this.events.error(error),
    });
  }

  /** Resolves once the bus is reached (its own channels subscribed), or after `timeout` ms while it is not. */
  async reached(timeout: number): Promise<void> {
    const link = this.#link;
    if (!link) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([link.reached, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeout)))]);
    clearTimeout(timer);
  }

  async leave(): Promise<void> {
    const link = this.#link;
    this.#link = undefined;
    await link?.close();
  }

  get busStats(): BusStats | undefined {
    return this.#link?.stats;
  }

  /** The bus holds this topic's channel for this node (interest routing). */
  holdsOnBus(topic: string): boolean {
    return this.#link?.holds(topic) ?? false;
  }

  /** An address for a connection that is gone: unique, reaching nobody. */
  unlisted(): string {
    return this.#addresses.next();
  }

  /** A connection's address, made when it is first asked for (never reused). */
  opened(connection: Connection): string {
    const address = this.#addresses.next();
    this.#byAddress.set(address, connection);
    return address;
  }

  /** The connection closed: the engine dropped its memberships itself; the mirror and the bus interest follow. */
  closed(connection: Connection, address: string | undefined): void {
    if (address !== undefined) this.#byAddress.delete(address);
    const topics = this.#topicsOf.get(connection);
    if (!topics) return;
    this.#topicsOf.delete(connection);
    for (const topic of topics) {
      if (this.table.leave(topic, connection.id)) this.#link?.unwant(topic);
    }
  }

  topicsOf(connection: Connection): ReadonlySet<string> {
    return this.#topicsOf.get(connection) ?? noTopics;
  }

  subscribe(connection: Connection, topic: string): Promise<void> {
    const bytes = topicBytes(topic);
    let topics = this.#topicsOf.get(connection);
    if (topics?.has(topic)) return this.#link?.want(topic) ?? Promise.resolve();
    if (topics && topics.size >= this.options.maxTopicsPerConnection) {
      throw new EdgepollError(
        'ETOO_MANY_TOPICS',
        `connection ${connection.address} is subscribed to ${topics.size} topics, the limit (maxTopicsPerConnection)`,
      );
    }
    if (!topics) {
      topics = new Set();
      this.#topicsOf.set(connection, topics);
    }
    topics.add(topic);
    this.table.join(topic, connection.id);
    // Queued behind the connection's earlier writes and before any later publish (publish flushes first).
    this.engine.subscribe(connection.id, topic, bytes);
    return this.#link?.want(topic) ?? Promise.resolve();
  }

  unsubscribe(connection: Connection, topic: string): void {
    const bytes = topicBytes(topic);
    const topics = this.#topicsOf.get(connection);
    if (!topics?.delete(topic)) return;
    if (topics.size === 0) this.#topicsOf.delete(connection);
    this.engine.unsubscribe(connection.id, topic, bytes);
    if (this.table.leave(topic, connection.id)) this.#link?.unwant(topic);
  }

  /**
   * Local fan-out (engine) plus the bus. Returns false when a local subscriber
   * is above its high-water mark or the engine had to queue the publish.
   */
  publish(topic: string, frame: Buffer, except: Connection | string | undefined): boolean {
    const bytes = topicBytes(topic);
    let exceptAddress = '';
    let exceptId = -1;
    if (typeof except === 'string') {
      nodeOf(except);
      exceptAddress = except;
      const local = this.#byAddress.get(except);
      if (local) exceptId = local.id;
    } else if (except) {
      exceptAddress = except.address;
      exceptId = except.closed ? -1 : except.id;
    }
    let below = true;
    const members = this.table.members(topic);
    if (members) {
      below = this.engine.publish(topic, bytes, frame, exceptId);
      if (below) below = !anyIn(members, this.engine.backlogged(), exceptId);
    }
    this.#link?.publish(topic, frame, exceptAddress);
    return below;
  }

  /** Reaches the connection with that address, here or on another node of the bus. false = above its high-water mark. */
  sendTo(address: string, frame: Buffer): boolean {
    const node = nodeOf(address);
    if (node === this.options.nodeId) {
      const connection = this.#byAddress.get(address);
      return connection ? this.engine.write(connection.id, frame) : true;
    }
    this.#link?.sendTo(node, address, frame);
    return true;
  }

  /** The bus part of a broadcast (the engine did the local part). */
  broadcast(frame: Buffer): void {
    if (this.options.busBroadcast) this.#link?.broadcast(frame);
  }

  #valid(frame: Buffer): boolean {
    return this.options.framing !== 'frame' || validFrame(frame);
  }

  #fromBus(topic: string, frame: Buffer, except: string): void {
    const members = this.table.members(topic);
    if (!members || !this.#valid(frame)) return;
    let bytes: Buffer;
    try {
      bytes = topicBytes(topic);
    } catch {
      return;
    }
    const local = except ? this.#byAddress.get(except) : undefined;
    this.engine.publish(topic, bytes, frame, local ? local.id : -1);
  }
}

function anyIn(members: ReadonlySet<number>, backlogged: ReadonlySet<number>, except: number): boolean {
  if (backlogged.size === 0) return false;
  const [small, large] = members.size < backlogged.size ? [members, backlogged] : [backlogged, members];
  for (const id of small) if (id !== except && large.has(id)) return true;
  return false;
}

/** A frame from another node is written to sockets as it is: it must be one whole, well-formed frame. */
function validFrame(frame: Buffer): boolean {
  return frame.length >= HEADER_SIZE && frame[0] === MAGIC && frame.readUInt32BE(4) === frame.length - HEADER_SIZE;
}
