/**
 * The native engine's TypeScript side: decodes the batches the addon's loops
 * hand over (docs/internals.md) into {@link EngineSink} calls, and corks
 * writes into one command buffer per loop, submitted once per batch dispatch
 * or once per tick.
 *
 * Owns: the per-loop command buffers, the retry queue for full inboxes, the
 * per-connection buffered estimate. Does not own: sockets, framing, PING/PONG,
 * heartbeats (all native), Connection objects (the server).
 * Runs on: the JS thread that created it.
 */
import { Buffer } from 'node:buffer';
import type { NativeAddon, NativeEngine } from './binding';
import { trimWhenFreed } from './heap-trim';
import { payloadView } from '../../protocol/view';
import { EdgepollError, type EngineCode } from '../../errors';
import { HEADER_SIZE, MAGIC, framingNumber } from '../../protocol/constants';
import { connectionTls, decodeProxyTls } from '../../proxy/header';
import type { Engine, EngineOptions, EngineSink, EngineStats, ListenAddress } from '../engine';
import { ID_LOOP_SPAN, ID_SLOT_SPAN, idGeneration, idLoop, idSlot } from '../engine';

/**
 * Loop threads when the options leave it open.
 *
 * Measured on the shared 2-core box (raw echo through JS, 64-byte ping-pong
 * on 100 connections for 5 s, Node client in a second process; /tmp script,
 * 5 alternating runs each): 1 thread 25.6k-58.3k round trips/s (median
 * 39.9k), 2 threads 39.8k-51.2k/s (median 41.1k); p99 9-19 ms either way.
 * No difference beyond the noise: the Node client and the JS thread use the
 * cores, not the loops. 1 thread leaves a core to JS and to the peers, and
 * earlier runs showed more busy threads than free cores costing p99.
 * Re-measure with the native load generator before changing this.
 * @default 1
 */
export const defaultNativeThreads = 1;

const RECORD_SIZE = 32;
const COMMAND_HEADER = 16;
const OP_WRITE = 1;
const OP_END = 2;
const OP_DESTROY = 3;
const OP_CLOSE = 4;
const OP_SUBSCRIBE = 5;
const OP_UNSUBSCRIBE = 6;
const KIND_OPEN = 1;
const KIND_MESSAGE = 2;
const KIND_DATA = 3;
const KIND_DRAIN = 4;
const KIND_BACKPRESSURE = 5;
const KIND_END = 6;
const KIND_CLOSE = 7;
const KIND_ERROR = 8;
/** Wait before retrying a submit that found an inbox full (the loop drains it within microseconds). */
const RETRY_DELAY_MS = 1;
/**
 * Hard bound on the bytes waiting in `pending` for full inboxes (README
 * "Backpressure"). At the bound a write is refused (false, the bytes dropped,
 * the connection closed with ESLOW_CONSUMER) and a broadcast is dropped
 * (false). It is reached only when the loops are not keeping up at all: one
 * inbox alone takes 64 MiB.
 */
export const PENDING_LIMIT = 16 * 1024 * 1024;
/** What one `pending` entry costs beyond its bytes (object, arrays), so tiny blocks are bounded too. */
const PENDING_ENTRY_COST = 128;
const BUFFER_SIZE = 16 * 1024;
/** A command buffer grown past this by one large write goes back to BUFFER_SIZE once submitted. */
const BUFFER_KEEP = 256 * 1024;

/** One loop's corked commands: grows by doubling, reused after each submit, shrunk after a large one. */
class CommandBuffer {
  bytes = Buffer.allocUnsafe(BUFFER_SIZE);
  /** The same bytes for the headers' 32-bit fields (DataView stores are inlined; Buffer's writeUInt32LE checks ranges). */
  view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
  length = 0;
  /** Connections with bytes in this buffer. */
  corked: Outbound[] = [];
  /** Where the last command starts when it is a write, and whose: the next write to it extends that command. */
  lastWrite = -1;
  lastState: Outbound | undefined;

  /** Makes room for `extra` more bytes and returns the offset they start at. */
  reserve(extra: number): number {
    const need = this.length + extra;
    if (need > this.bytes.length) {
      let size = this.bytes.length * 2;
      while (size < need) size *= 2;
      const grown = Buffer.allocUnsafe(size);
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
      this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
    }
    const at = this.length;
    this.length = need;
    return at;
  }

  /** Empties the buffer; one burst must not keep its memory for the server's lifetime. */
  clear(): void {
    this.length = 0;
    this.lastWrite = -1;
    this.lastState = undefined;
    if (this.bytes.length > BUFFER_KEEP) {
      this.bytes = Buffer.allocUnsafe(BUFFER_SIZE);
      this.view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
    }
  }
}

/** What JS knows about one connection's outbound queue. */
interface Outbound {
  /** The connection's id (computed once: above 2^31 it is a heap number), loop, slot and generation. */
  id: number;
  loop: number;
  slot: number;
  generation: number;
  /** Native's last report (BACKPRESSURE / DRAIN value). */
  reported: number;
  /** Bytes corked since the last flush. */
  corked: number;
  /** Bytes in `pending` blocks: still JS's, counted until a loop takes the block. */
  pending: number;
  /** What the sink's open() returned, handed to its messageOf/dataOf instead of the id; undefined: use the id. */
  handle: unknown;
  /** end(), close() or destroy() was called: later writes are refused (false), as on the net engine. */
  closing?: boolean;
}

/** A submit that found its inbox full, kept in issue order (loop -1 = broadcast). */
interface Pending {
  loop: number;
  bytes: Buffer;
  /** What it counts against PENDING_LIMIT. */
  cost: number;
  /** The connections with bytes in the block, and how many each. */
  states: Outbound[];
  amounts: number[];
  /** A publish (loop -1): its topic and excepted connection. */
  publish?: { topic: Buffer; except: number };
}

class NativeEngineAdapter implements Engine {
  readonly kind = 'native' as const;
  private readonly native: NativeEngine;
  private readonly buffers: CommandBuffer[];
  /**
   * Per loop, by slot: the open connections' state. An array indexed by slot
   * with the generation checked apart, not a Map by id: ids above 2^31 are heap
   * numbers, and a Map lookup per message showed in the S3 profile.
   */
  private readonly slots: Array<Array<Outbound | undefined>>;
  /**
   * The connection whose message is being handled: its replies (the common
   * case, often many in a row) skip the lookup by id, which was a tenth of
   * the JS thread's time under pipelined load. Valid until its CLOSE record.
   */
  private currentId = -1;
  private currentState: Outbound | undefined;
  private readonly codeNames: string[];
  private readonly pending: Pending[] = [];
  /** Connections above the high-water mark (native's BACKPRESSURE until its DRAIN, or corked above it). */
  private readonly backloggedIds = new Set<number>();
  private pendingBytes = 0;
  /** A broadcast returned false: 'broadcastDrain' is owed once `pending` empties. */
  private broadcastWanted = false;
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Set while listening: ends the freed-heap trims (heap-trim.ts). */
  private untrim: (() => void) | undefined;
  /** Per loop: writes that crossed the high-water mark (returned false), and submits that found the inbox full (kept in `pending`). */
  private readonly backpressure: number[];
  private readonly inboxFull: number[];

  constructor(
    addon: NativeAddon,
    private readonly options: EngineOptions,
    private readonly sink: EngineSink,
  ) {
    // 0: the one loop runs on this thread (native/driver.h); JS still sees loop 0.
    const threads = options.threads > 0 ? options.threads : options.threads === 0 ? 0 : defaultNativeThreads;
    const loops = Math.max(1, threads);
    this.codeNames = addon.errorNames;
    this.native = new addon.Engine(
      {
        threads,
        framing: framingNumber[options.framing],
        maxFrame: options.maxFrame,
        highWaterMark: options.highWaterMark,
        maxBufferedAmount: options.maxBufferedAmount,
        heartbeatInterval: options.heartbeatInterval,
        heartbeatTimeout: options.heartbeatTimeout,
        idleTimeout: options.idleTimeout,
        frameTimeout: options.frameTimeout,
        maxConnections: options.maxConnections,
        acceptMode: options.acceptMode,
        nativeEcho: options.nativeEcho,
        triggerMode: options.triggerMode,
        proxyProtocol: Boolean(options.proxyProtocol),
        proxyTrusted: options.proxyProtocol ? options.proxyProtocol.trusted : [],
        proxyTimeout: options.proxyProtocol ? options.proxyProtocol.timeout : 0,
        maxPartialBytes: options.maxPartialBytes,
        // Test suites only (never documented): every native bound shrunk, so
        // that reads pause all the time (native/loop.h LoopBounds::tiny).
        debugTinyBounds: process.env.EDGEPOLL_DEBUG_TINY_BOUNDS === '1',
      },
      (loop, batch, records) => this.onBatch(loop, batch, records),
    );
    this.buffers = Array.from({ length: loops }, () => new CommandBuffer());
    this.backpressure = new Array<number>(loops).fill(0);
    this.inboxFull = new Array<number>(loops).fill(0);
    this.slots = Array.from({ length: loops }, () => []);
  }

  /** The open connection `id` names, if any. */
  private state(id: number): Outbound | undefined {
    if (id === this.currentId) return this.currentState;
    // Math.floor, not %: an id above 2^31 is a double, and % of doubles is a call to fmod.
    const high = Math.floor(id / ID_LOOP_SPAN);
    const table = this.slots[id - high * ID_LOOP_SPAN];
    if (table === undefined) return undefined;
    const generation = Math.floor(high / ID_SLOT_SPAN);
    const state = table[high - generation * ID_SLOT_SPAN];
    return state !== undefined && state.generation === generation ? state : undefined;
  }

  async listen(host: string, port: number, backlog: number, path?: string): Promise<ListenAddress> {
    try {
      if (path !== undefined) {
        this.native.listen('', 0, backlog, path);
        this.trimWhileServing();
        return { host: '', port: 0, path };
      }
      const bound = this.native.listen(host, port, backlog);
      this.trimWhileServing();
      return { host, port: bound };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'EIO';
      throw new EdgepollError(code, `listen ${path ?? `${host}:${port}`}: ${code}`, { cause: error });
    }
  }

  /**
   * Serves a listening socket made elsewhere (a workers primary's, passed as
   * `fd`): every loop holds a dup with EPOLLEXCLUSIVE; `fd` stays the caller's.
   */
  adopt(fd: number, host: string): ListenAddress {
    try {
      const port = this.native.listen(fd);
      this.trimWhileServing();
      return { host, port };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'EIO';
      throw new EdgepollError(code, `listen on the shared socket (fd ${fd}): ${code}`, { cause: error });
    }
  }

  private trimWhileServing(): void {
    this.untrim ??= trimWhenFreed(this.native);
  }

  write(id: number, bytes: Uint8Array): boolean {
    const state = this.state(id);
    // Closed or closing: dropped. false as on node:net and the net engine; 'close', not 'drain', follows.
    if (!state || state.closing) return false;
    if (this.pendingBytes >= PENDING_LIMIT) return this.overflow(id);
    const above = this.above(state, bytes.length);
    if (above) this.backloggedIds.add(id);
    const buffer = this.command(state, OP_WRITE, above ? 1 : 0, 0, bytes.length);
    buffer.bytes.set(bytes, buffer.length - bytes.length);
    return !above;
  }

  sendFrame(id: number, flags: number, type: number, seq: number, payload: Uint8Array): boolean {
    const state = this.state(id);
    if (!state || state.closing) return false;
    if (this.pendingBytes >= PENDING_LIMIT) return this.overflow(id);
    const size = HEADER_SIZE + payload.length;
    const above = this.above(state, size);
    if (above) this.backloggedIds.add(id);
    const buffer = this.command(state, OP_WRITE, above ? 1 : 0, 0, size);
    const at = buffer.length - size;
    // The frame header (docs/PROTOCOL.md: magic, flags, type, length, seq; big-endian) as three 32-bit stores.
    const view = buffer.view;
    view.setUint32(at, (MAGIC << 24) | (flags << 16) | type, false);
    view.setUint32(at + 4, payload.length, false);
    view.setUint32(at + 8, seq, false);
    buffer.bytes.set(payload, at + HEADER_SIZE);
    return !above;
  }

  bufferedAmount(id: number): number {
    const state = this.state(id);
    return state ? state.reported + state.corked + state.pending : 0;
  }

  end(id: number): void {
    const state = this.state(id);
    if (!state) return;
    state.closing = true;
    this.command(state, OP_END, 0, 0, 0);
  }

  destroy(id: number): void {
    const state = this.state(id);
    if (!state) return;
    state.closing = true;
    this.command(state, OP_DESTROY, 0, 0, 0);
  }

  close(id: number, code: EngineCode, reason?: string): void {
    const state = this.state(id);
    if (!state) return;
    state.closing = true;
    let index = this.codeNames.indexOf(code);
    if (index < 0) index = this.codeNames.indexOf('EIO');
    const text = reason ? Buffer.from(reason, 'utf8') : undefined;
    const buffer = this.command(state, OP_CLOSE, 0, index, text ? text.length : 0);
    if (text) text.copy(buffer.bytes, buffer.length - text.length);
  }

  broadcast(bytes: Uint8Array): boolean {
    if (this.stopped || bytes.length === 0) return true;
    // Commands corked before the broadcast must reach the loops before it.
    this.flush();
    if (this.pending.length === 0 && this.native.broadcast(bytes)) return true;
    this.broadcastWanted = true;
    if (this.pendingBytes >= PENDING_LIMIT) return false; // dropped: see PENDING_LIMIT
    const cost = bytes.length + PENDING_ENTRY_COST;
    this.pending.push({ loop: -1, bytes: Buffer.from(bytes), cost, states: [], amounts: [] });
    this.pendingBytes += cost;
    this.scheduleRetry();
    return false;
  }

  subscribe(id: number, _topic: string, bytes: Buffer): void {
    this.topicCommand(id, OP_SUBSCRIBE, bytes);
  }

  unsubscribe(id: number, _topic: string, bytes: Buffer): void {
    this.topicCommand(id, OP_UNSUBSCRIBE, bytes);
  }

  private topicCommand(id: number, op: number, topic: Buffer): void {
    const state = this.state(id);
    if (!state) return;
    const buffer = this.command(state, op, 0, 0, topic.length);
    topic.copy(buffer.bytes, buffer.length - topic.length);
  }

  publish(_topic: string, bytes: Buffer, frame: Uint8Array, except: number): boolean {
    if (this.stopped || frame.length === 0) return true;
    // Commands corked before (writes, SUBSCRIBE) must reach the loops before it.
    this.flush();
    const loop = except < 0 ? 0xffffffff : idLoop(except);
    const slot = except < 0 ? 0 : idSlot(except);
    const generation = except < 0 ? 0 : idGeneration(except);
    if (this.pending.length === 0 && this.native.publish(bytes, frame, loop, slot, generation)) return true;
    if (this.pendingBytes >= PENDING_LIMIT) return false; // dropped: see PENDING_LIMIT
    const cost = frame.length + bytes.length + PENDING_ENTRY_COST;
    this.pending.push({ loop: -1, bytes: Buffer.from(frame), cost, states: [], amounts: [], publish: { topic: Buffer.from(bytes), except } });
    this.pendingBytes += cost;
    this.scheduleRetry();
    return false;
  }

  backlogged(): ReadonlySet<number> {
    return this.backloggedIds;
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.stopped) return;
    if (this.pending.length > 0) this.retryPending();
    for (let loop = 0; loop < this.buffers.length; loop++) {
      const buffer = this.buffers[loop];
      if (buffer.length === 0) continue;
      const corked = buffer.corked;
      if (this.pending.length > 0 || !this.native.submit(loop, buffer.bytes, buffer.length)) {
        // Inbox full: keep a copy in order; its bytes count against each
        // connection (write() returns false above the high-water mark) until a loop takes it.
        const amounts = corked.map((state) => {
          const amount = state.corked;
          state.pending += amount;
          state.corked = 0;
          return amount;
        });
        const cost = buffer.length + PENDING_ENTRY_COST;
        this.inboxFull[loop]++;
        const bytes = Buffer.from(buffer.bytes.subarray(0, buffer.length));
        this.pending.push({ loop, bytes, cost, states: corked, amounts });
        this.pendingBytes += cost;
        buffer.corked = [];
        this.scheduleRetry();
      } else {
        for (const state of corked) state.corked = 0;
        corked.length = 0;
      }
      buffer.clear();
    }
  }

  async stopAccepting(): Promise<void> {
    if (!this.stopped) this.native.stopAccepting();
  }

  async stats(): Promise<EngineStats> {
    const loops = this.native.stats().loops.map((loop: Record<string, number>, i: number): Record<string, number> => ({
      ...loop,
      backpressure: this.backpressure[i] ?? 0,
      inboxFull: this.inboxFull[i] ?? 0,
    }));
    const sum = (key: string): number => loops.reduce((total, loop) => total + (loop[key] ?? 0), 0);
    return {
      engine: 'native',
      connections: sum('connections'),
      accepted: sum('accepted'),
      rejected: sum('rejected'),
      protocolErrors: sum('protocolErrors'),
      loops,
    };
  }

  async shutdown(): Promise<void> {
    if (this.stopped) return;
    this.flush();
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.pending.length = 0;
    this.pendingBytes = 0;
    this.untrim?.();
    this.untrim = undefined;
    this.native.stop();
    for (const table of this.slots) table.length = 0;
    this.currentId = -1;
    this.currentState = undefined;
  }

  ref(): void {
    this.native.ref();
  }

  unref(): void {
    this.native.unref();
  }

  /** Whether queuing `extra` more bytes puts the connection above the high-water mark. */
  private above(state: Outbound, extra: number): boolean {
    if (state.corked === 0) this.buffers[state.loop].corked.push(state);
    const limit = this.options.highWaterMark;
    const before = state.reported + state.corked + state.pending;
    state.corked += extra;
    const above = before + extra > limit;
    if (above && before <= limit) this.backpressure[state.loop]++;
    return above;
  }

  /** A write past PENDING_LIMIT: dropped, and its connection closed (README "Backpressure"). */
  private overflow(id: number): boolean {
    this.close(id, 'ESLOW_CONSUMER');
    return false;
  }

  /** Appends a command header (+ room for `length` bytes) to the connection's loop buffer. */
  private command(state: Outbound, op: number, flags: number, code: number, length: number): CommandBuffer {
    const buffer = this.buffers[state.loop];
    if (op === OP_WRITE && length > 0 && buffer.lastState === state && buffer.lastWrite >= 0) {
      // Consecutive writes to one connection (a batch's replies to one peer)
      // become one command: one header, and one outbox append on the loop
      // instead of a chunk regrown per reply.
      buffer.reserve(length);
      const last = buffer.lastWrite;
      buffer.bytes[last + 1] |= flags;
      buffer.view.setUint32(last + 12, buffer.view.getUint32(last + 12, true) + length, true);
      return buffer;
    }
    const at = buffer.reserve(COMMAND_HEADER + length);
    buffer.lastWrite = op === OP_WRITE ? at : -1;
    buffer.lastState = state;
    // Four 32-bit stores: this runs once per message (and Buffer's writeUInt*LE range checks showed in profiles).
    const view = buffer.view;
    view.setUint32(at, op | (flags << 8) | (code << 16), true);
    view.setUint32(at + 4, state.slot, true);
    view.setUint32(at + 8, state.generation, true);
    view.setUint32(at + 12, length, true);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(() => {
        if (this.flushScheduled) this.flush();
      });
    }
    return buffer;
  }

  private retryPending(): void {
    while (this.pending.length > 0) {
      const next = this.pending[0];
      const publish = next.publish;
      const taken = publish
        ? this.native.publish(
            publish.topic,
            next.bytes,
            publish.except < 0 ? 0xffffffff : idLoop(publish.except),
            publish.except < 0 ? 0 : idSlot(publish.except),
            publish.except < 0 ? 0 : idGeneration(publish.except),
          )
        : next.loop < 0
          ? this.native.broadcast(next.bytes)
          : this.native.submit(next.loop, next.bytes, next.bytes.length);
      if (!taken) return;
      this.pending.shift();
      this.pendingBytes -= next.cost;
      for (let i = 0; i < next.states.length; i++) next.states[i].pending -= next.amounts[i];
    }
    if (this.broadcastWanted) {
      this.broadcastWanted = false;
      this.sink.broadcastDrain?.();
    }
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.flush();
      if (this.pending.length > 0) this.scheduleRetry();
    }, RETRY_DELAY_MS);
  }

  private onBatch(loop: number, batch: ArrayBuffer, records: number): void {
    const view = new DataView(batch);
    // The records' fields as 32-bit words (the addon writes them little-endian,
    // as the host is: native/batch.cc): element loads, not DataView calls.
    const words = new Uint32Array(batch, 0, records * (RECORD_SIZE / 4));
    const slab = records * RECORD_SIZE;
    const table = this.slots[loop];
    let failure: unknown;
    for (let i = 0; i < records; i++) {
      const at = i * RECORD_SIZE;
      const w = i * (RECORD_SIZE / 4);
      const head = words[w];
      const kind = head & 0xff;
      const slot = words[w + 1];
      const generation = words[w + 2];
      const known = table[slot];
      const id =
        known !== undefined && known.generation === generation
          ? known.id
          : generation * (ID_LOOP_SPAN * ID_SLOT_SPAN) + slot * ID_LOOP_SPAN + loop;
      const offset = slab + words[w + 4];
      const length = words[w + 5];
      const value = words[w + 6];
      // A throwing sink must not cost the rest of the batch (those bytes would be lost).
      try {
        switch (kind) {
          case KIND_OPEN: {
            const state: Outbound = { id, loop, slot, generation, reported: 0, corked: 0, pending: 0, handle: undefined };
            table[slot] = state;
            // flags bit 0: the PROXY header's TLS details follow the address (seq = its length).
            const withTls = (view.getUint8(at + 1) & 1) !== 0;
            const addressLength = withTls ? view.getUint32(at + 12, true) : length;
            const fields = withTls ? decodeProxyTls(Buffer.from(batch, offset + addressLength, length - addressLength)) : undefined;
            state.handle = this.sink.open(
              id,
              Buffer.from(batch, offset, addressLength).toString('latin1'),
              value,
              fields ? connectionTls(fields) : undefined,
            );
            break;
          }
          case KIND_MESSAGE: {
            const type = head >>> 16;
            const flags = (head >>> 8) & 0xff;
            const seq = words[w + 3];
            const payload = payloadView(batch, offset, length);
            // The connection's handle when the sink gave one: no lookup by id per message.
            if (known !== undefined && known.generation === generation && known.handle !== undefined && this.sink.messageOf) {
              this.currentId = id;
              this.currentState = known;
              this.sink.messageOf(known.handle, type, flags, seq, payload);
            } else {
              this.sink.message(id, type, flags, seq, payload);
            }
            break;
          }
          case KIND_DATA: {
            const payload = payloadView(batch, offset, length);
            if (known !== undefined && known.generation === generation && known.handle !== undefined && this.sink.dataOf) {
              this.currentId = id;
              this.currentState = known;
              this.sink.dataOf(known.handle, payload);
            } else {
              this.sink.data(id, payload);
            }
            break;
          }
          case KIND_DRAIN: {
            this.backloggedIds.delete(id);
            if (known !== undefined && known.generation === generation) known.reported = value;
            this.sink.drain(id);
            break;
          }
          case KIND_BACKPRESSURE: {
            this.backloggedIds.add(id);
            if (known !== undefined && known.generation === generation) known.reported = value;
            break;
          }
          case KIND_END:
            this.sink.end(id);
            break;
          case KIND_CLOSE:
            if (known !== undefined && known.generation === generation) table[slot] = undefined;
            if (id === this.currentId) {
              this.currentId = -1;
              this.currentState = undefined;
            }
            this.backloggedIds.delete(id);
            this.sink.close(
              id,
              this.codeNames[view.getUint16(at + 28, true)] ?? 'EIO',
              Buffer.from(batch, offset, length).toString('utf8'),
            );
            break;
          case KIND_ERROR: {
            const code = this.codeNames[view.getUint16(at + 28, true)] ?? 'EIO';
            this.sink.error(new EdgepollError(code, `native engine: ${code}`));
            break;
          }
          default:
            break;
        }
      } catch (error) {
        failure ??= error;
      }
    }
    try {
      this.sink.batchEnd();
    } finally {
      this.flush();
    }
    if (failure !== undefined) throw failure;
  }
}

/** The native engine, plus what a workers process needs of it (src/engines/workers/worker.ts). */
export type NativeEngineInstance = Engine & { adopt(fd: number, host: string): ListenAddress };

/** Builds the native engine over a loaded addon. */
export function createNativeEngine(addon: NativeAddon, options: EngineOptions, sink: EngineSink): NativeEngineInstance {
  return new NativeEngineAdapter(addon, options, sink);
}
