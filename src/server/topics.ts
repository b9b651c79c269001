/**
 * Topic names and the local membership table of one server (issue 14).
 * A name is 1 to 200 bytes of UTF-8 without 0x00 (docs/PROTOCOL.md section 5).
 * The table is the JS mirror of what the engine holds (the native loops keep
 * their own, native/topics.h): it answers `topics`/`subscriptions` in STATS,
 * tells the bus which topics this node wants, and lets publish() check
 * subscribers' backpressure without asking the loops.
 * Owns: membership by connection id. Does not own: connections, the engine,
 * the bus. Runs on: the server's JS thread.
 */
import { EdgepollError } from '../errors';

export const MAX_TOPIC_BYTES = 200;

/** The UTF-8 bytes of a valid topic name; throws EBAD_TOPIC otherwise. */
export function topicBytes(topic: unknown): Buffer {
  if (typeof topic !== 'string') {
    throw new EdgepollError('EBAD_TOPIC', `a topic name must be a string, got ${typeof topic}`);
  }
  const bytes = Buffer.from(topic, 'utf8');
  if (bytes.length < 1 || bytes.length > MAX_TOPIC_BYTES) {
    throw new EdgepollError('EBAD_TOPIC', `a topic name must be 1 to ${MAX_TOPIC_BYTES} bytes of UTF-8, got ${bytes.length}`);
  }
  if (bytes.includes(0)) throw new EdgepollError('EBAD_TOPIC', 'a topic name must not contain 0x00');
  // A lone surrogate would be replaced by U+FFFD: the name on the wire would differ from the one given.
  if (bytes.toString('utf8') !== topic) {
    throw new EdgepollError('EBAD_TOPIC', 'a topic name must be valid Unicode (no lone surrogates)');
  }
  return bytes;
}

/** A topic name received as bytes (the demo's SUBSCRIBE payload): valid UTF-8 required. */
export function topicFromBytes(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes)) throw new EdgepollError('EBAD_TOPIC', 'a topic name must be valid UTF-8');
  topicBytes(text);
  return text;
}

/** topic → ids of local subscribers. */
export class TopicTable {
  readonly #members = new Map<string, Set<number>>();
  #subscriptions = 0;

  /** Returns true when this made `topic` go from no local member to one. */
  join(topic: string, id: number): boolean {
    let set = this.#members.get(topic);
    const first = set === undefined;
    if (!set) {
      set = new Set();
      this.#members.set(topic, set);
    }
    if (set.has(id)) return false;
    set.add(id);
    this.#subscriptions++;
    return first;
  }

  /** Returns true when `topic` has no local member any more because of this. */
  leave(topic: string, id: number): boolean {
    const set = this.#members.get(topic);
    if (!set || !set.delete(id)) return false;
    this.#subscriptions--;
    if (set.size > 0) return false;
    this.#members.delete(topic);
    return true;
  }

  members(topic: string): ReadonlySet<number> | undefined {
    return this.#members.get(topic);
  }

  /** Topics with at least one local subscriber. */
  get topics(): number {
    return this.#members.size;
  }

  /** Connection-topic pairs. */
  get subscriptions(): number {
    return this.#subscriptions;
  }

  names(): IterableIterator<string> {
    return this.#members.keys();
  }
}
