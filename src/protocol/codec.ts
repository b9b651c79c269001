/**
 * The framing codecs in TypeScript: splits a connection's byte stream into
 * messages (frame, length, line, raw) and validates frame headers byte by
 * byte, exactly like native/codec.cc (docs/PROTOCOL.md sections 1-2).
 * test/protocol/codec.differential.test.ts keeps the two identical; change both together.
 *
 * Owns: the partial-message state of one connection. Does not own: sockets,
 * PONG replies or close reasons (the engine acts on what it is given).
 */
import { EdgepollError, type EngineCode } from '../errors';
import { payloadView } from './view';
import {
  CONTROL_FIRST,
  HEADER_SIZE,
  MAGIC,
  MAX_PING_PAYLOAD,
  RESERVED_FLAGS,
  TYPE_GOAWAY,
  TYPE_PING,
  encodeFrame,
  encodeLength,
  type Framing,
} from './constants';

export { encodeFrame, encodeLength };

/** Who decodes: a server reads what clients send (a GOAWAY from a client is an error). */
export type Role = 'server' | 'client';

/**
 * Receives each complete message, control frames included. `type`, `flags`
 * and `seq` are 0 outside the `frame` framing. `payload` may be a view of the
 * fed chunk; it stays valid (nothing reuses it). Return `false` to stop the
 * current feed: its remaining bytes are dropped (the connection is closing).
 */
export type MessageCallback = (type: number, flags: number, seq: number, payload: Buffer) => boolean | void;

const LENGTH_PREFIX_SIZE = 4;
const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const EMPTY = Buffer.alloc(0);
/** First capacity of a line split across feeds; it doubles up to maxFrame + 1. */
const LINE_START_CAPACITY = 256;

function readU32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) | (bytes[offset + 1] << 16) | (bytes[offset + 2] << 8) | bytes[offset + 3]) >>> 0;
}

/**
 * Decoder for one connection's incoming bytes.
 *
 * - `frame`: 12-byte header checked field by field as its bytes arrive
 *   (magic, reserved flags, type, PING size, `maxFrame`), before any payload is buffered.
 * - `length`: u32 big-endian length (checked against `maxFrame` at once) then the payload.
 * - `line`: bytes up to `\n`, one `\r` directly before it stripped; a line over
 *   `maxFrame` fails once more than `maxFrame + 1` bytes are held without `\n`.
 * - `raw`: each chunk is one message; never an error.
 *
 * After an error, {@link Decoder.feed} delivers nothing more and returns the same code.
 */
export class Decoder {
  private readonly headerSize: number;
  private error: EngineCode | '' = '';
  /** Header bytes of a message whose header was split across feeds; made on the first split (most connections never see one). */
  private header: Buffer | undefined;
  private headerHave = 0;
  /** Payload length announced by the header in `header`. */
  private need = 0;
  /** Payload (frame, length) or line bytes of a message split across feeds. */
  private partial: Buffer | undefined;
  private partialHave = 0;

  /**
   * @param framing one of `frame`, `length`, `line`, `raw`
   * @param maxFrame largest payload (or stripped line) in bytes, 0 to 2^32-1
   * @param role `server` when decoding what clients send, `client` otherwise
   */
  constructor(
    readonly framing: Framing,
    readonly maxFrame: number,
    readonly role: Role,
  ) {
    this.headerSize = framing === 'frame' ? HEADER_SIZE : LENGTH_PREFIX_SIZE;
  }

  /** A message has begun (at least one byte arrived) and is not complete; the frame timeout runs. */
  get midMessage(): boolean {
    if (this.error !== '') return false;
    if (this.framing === 'frame' || this.framing === 'length') return this.headerHave > 0;
    if (this.framing === 'line') return this.partialHave > 0;
    return false;
  }

  /** Bytes held for a partial message. */
  get bufferedBytes(): number {
    return this.partialHave;
  }

  /** Decodes one chunk; returns '' or the protocol error (sticky). */
  feed(chunk: Buffer, onMessage: MessageCallback): EngineCode | '' {
    if (this.error !== '') return this.error;
    if (chunk.length === 0) return '';
    switch (this.framing) {
      case 'frame':
      case 'length':
        return this.feedHeadered(chunk, onMessage);
      case 'line':
        return this.feedLine(chunk, onMessage);
      case 'raw':
        onMessage(0, 0, 0, chunk);
        return '';
    }
  }

  private fail(code: EngineCode): EngineCode {
    this.error = code;
    this.headerHave = 0;
    this.need = 0;
    this.partial = undefined;
    this.partialHave = 0;
    return code;
  }

  /** Checks every header field whose bytes are all within `have`, in wire order. */
  private checkHeader(bytes: Uint8Array, offset: number, have: number): EngineCode | '' {
    if (this.framing === 'length') {
      if (have >= LENGTH_PREFIX_SIZE && readU32(bytes, offset) > this.maxFrame) return 'EFRAME_TOO_LARGE';
      return '';
    }
    if (have >= 1 && bytes[offset] !== MAGIC) return 'EBAD_MAGIC';
    if (have >= 2 && (bytes[offset + 1] & RESERVED_FLAGS) !== 0) return 'EBAD_FLAGS';
    if (have < 4) return '';
    const type = (bytes[offset + 2] << 8) | bytes[offset + 3];
    if (type === 0) return 'EBAD_TYPE';
    if (type >= CONTROL_FIRST) {
      if (type === CONTROL_FIRST || type > TYPE_GOAWAY) return 'EUNKNOWN_CONTROL';
      if (type === TYPE_GOAWAY && this.role === 'server') return 'EUNEXPECTED_GOAWAY';
    }
    if (have < 8) return '';
    const length = readU32(bytes, offset + 4);
    if (type === TYPE_PING && length > MAX_PING_PAYLOAD) return 'EPING_TOO_LARGE';
    if (length > this.maxFrame) return 'EFRAME_TOO_LARGE';
    return '';
  }

  private deliver(header: Uint8Array, offset: number, payload: Buffer, onMessage: MessageCallback): boolean {
    if (this.framing === 'frame') {
      return onMessage((header[offset + 2] << 8) | header[offset + 3], header[offset + 1], readU32(header, offset + 8), payload) !== false;
    }
    return onMessage(0, 0, 0, payload) !== false;
  }

  private feedHeadered(chunk: Buffer, onMessage: MessageCallback): EngineCode | '' {
    const headerSize = this.headerSize;
    const lengthOffset = this.framing === 'frame' ? 4 : 0;
    const length = chunk.length;
    const bytes = chunk.buffer as ArrayBuffer; // a view over a SharedArrayBuffer works the same
    const base = chunk.byteOffset;
    let position = 0;
    while (position < length) {
      let left = length - position;
      if (this.headerHave === 0 && left >= headerSize) {
        // Fast path: the whole header is in the chunk; a whole payload is a view.
        const code = this.checkHeader(chunk, position, headerSize);
        if (code !== '') return this.fail(code);
        const payloadLength = readU32(chunk, position + lengthOffset);
        if (left - headerSize >= payloadLength) {
          const start = position + headerSize;
          const payload = payloadLength === 0 ? EMPTY : payloadView(bytes, base + start, payloadLength);
          const headerAt = position;
          position = start + payloadLength;
          if (!this.deliver(chunk, headerAt, payload, onMessage)) return '';
          continue;
        }
        // The payload continues in a later feed: the slow path below copies it.
      }
      if (this.headerHave < headerSize) {
        const header = (this.header ??= Buffer.alloc(headerSize));
        const take = Math.min(headerSize - this.headerHave, left);
        chunk.copy(header, this.headerHave, position, position + take);
        this.headerHave += take;
        position += take;
        const code = this.checkHeader(header, 0, this.headerHave);
        if (code !== '') return this.fail(code);
        if (this.headerHave < headerSize) return '';
        this.need = readU32(header, lengthOffset);
        left = length - position;
        if (left >= this.need) {
          // The header was split but the payload is whole in this chunk.
          const payloadLength = this.need;
          const payload = payloadLength === 0 ? EMPTY : payloadView(bytes, base + position, payloadLength);
          this.headerHave = 0;
          this.need = 0;
          position += payloadLength;
          if (!this.deliver(header, 0, payload, onMessage)) return '';
          continue;
        }
        // One allocation per split message, bounded: need <= maxFrame was checked.
        this.partial = Buffer.allocUnsafe(this.need);
        this.partialHave = 0;
      }
      const partial = this.partial as Buffer;
      const take = Math.min(this.need - this.partialHave, length - position);
      chunk.copy(partial, this.partialHave, position, position + take);
      this.partialHave += take;
      position += take;
      if (this.partialHave < this.need) return '';
      this.headerHave = 0;
      this.need = 0;
      this.partial = undefined;
      this.partialHave = 0;
      if (!this.deliver(this.header!, 0, partial, onMessage)) return '';
    }
    return '';
  }

  /** Appends bytes of a line split across feeds; capacity doubles, capped at maxFrame + 1. */
  private appendLine(chunk: Buffer, start: number, end: number): void {
    const add = end - start;
    if (add === 0) return;
    const wanted = this.partialHave + add;
    let partial = this.partial;
    if (partial === undefined || partial.length < wanted) {
      const limit = this.maxFrame + 1;
      const capacity = Math.min(limit, Math.max(LINE_START_CAPACITY, wanted, (partial?.length ?? 0) * 2));
      const grown = Buffer.allocUnsafe(capacity);
      if (partial !== undefined) partial.copy(grown, 0, 0, this.partialHave);
      partial = grown;
      this.partial = grown;
    }
    chunk.copy(partial, this.partialHave, start, end);
    this.partialHave = wanted;
  }

  private feedLine(chunk: Buffer, onMessage: MessageCallback): EngineCode | '' {
    const limit = this.maxFrame + 1;
    const length = chunk.length;
    let position = 0;
    while (position < length) {
      const newline = chunk.indexOf(NEWLINE, position);
      if (newline === -1) {
        if (this.partialHave + (length - position) > limit) return this.fail('EFRAME_TOO_LARGE');
        this.appendLine(chunk, position, length);
        return '';
      }
      const start = position;
      position = newline + 1;
      if (this.partialHave === 0) {
        let end = newline;
        if (end > start && chunk[end - 1] === CARRIAGE_RETURN) end--;
        if (end - start > this.maxFrame) return this.fail('EFRAME_TOO_LARGE');
        if (onMessage(0, 0, 0, end === start ? EMPTY : chunk.subarray(start, end)) === false) return '';
        continue;
      }
      if (this.partialHave + (newline - start) > limit) return this.fail('EFRAME_TOO_LARGE');
      this.appendLine(chunk, start, newline);
      const partial = this.partial as Buffer;
      let lineLength = this.partialHave;
      if (partial[lineLength - 1] === CARRIAGE_RETURN) lineLength--;
      // The delivered line owns its buffer: drop ours so it is never overwritten.
      this.partial = undefined;
      this.partialHave = 0;
      if (lineLength > this.maxFrame) return this.fail('EFRAME_TOO_LARGE');
      if (onMessage(0, 0, 0, partial.subarray(0, lineLength)) === false) return '';
    }
    return '';
  }
}

/**
 * Encodes one outgoing message of the `length`, `line` or `raw` framing.
 * `line` appends `\n` (a payload containing `\n` becomes several lines, and a
 * trailing `\r` is stripped by the receiver); `raw` returns the bytes unchanged
 * (a Buffer view, no copy). Frames need a type and seq: use {@link encodeFrame}.
 */
export function encodeMessage(framing: Framing, payload: Uint8Array): Buffer {
  switch (framing) {
    case 'length':
      return encodeLength(payload);
    case 'line': {
      const out = Buffer.allocUnsafe(payload.length + 1);
      out.set(payload, 0);
      out[payload.length] = NEWLINE;
      return out;
    }
    case 'raw':
      return Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    case 'frame':
      throw new EdgepollError('EINVALID_OPTION', 'encodeMessage does not encode frames; use encodeFrame(flags, type, seq, payload)');
  }
}
