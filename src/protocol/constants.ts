/** Wire constants of docs/PROTOCOL.md, and the frame header encoder. */

export const MAGIC = 0xeb;
export const HEADER_SIZE = 12;
export const FLAG_RESPONSE = 0x01;
export const FLAG_ERROR = 0x02;
export const RESERVED_FLAGS = 0xfc;
export const CONTROL_FIRST = 0xff00;
export const TYPE_PING = 0xff01;
export const TYPE_PONG = 0xff02;
export const TYPE_CLOSE = 0xff03;
export const TYPE_GOAWAY = 0xff04;
export const MAX_PING_PAYLOAD = 64;

/** One of the four framings of docs/PROTOCOL.md section 1. */
export type Framing = 'frame' | 'length' | 'line' | 'raw';
export const framings: readonly Framing[] = ['frame', 'length', 'line', 'raw'];
/** The numbering the native addon uses for framings. */
export const framingNumber: Record<Framing, number> = { frame: 0, length: 1, line: 2, raw: 3 };

/** Defaults from docs/PROTOCOL.md. */
export const DEFAULT_MAX_FRAME = 1024 * 1024;
export const DEFAULT_FRAME_TIMEOUT = 30_000;
export const DEFAULT_DRAIN_TIMEOUT = 5_000;

/** Writes a 12-byte frame header at `offset` of `out`. */
export function writeHeader(
  out: Uint8Array,
  offset: number,
  flags: number,
  type: number,
  length: number,
  seq: number,
): void {
  out[offset] = MAGIC;
  out[offset + 1] = flags;
  out[offset + 2] = type >>> 8;
  out[offset + 3] = type & 0xff;
  out[offset + 4] = length >>> 24;
  out[offset + 5] = (length >>> 16) & 0xff;
  out[offset + 6] = (length >>> 8) & 0xff;
  out[offset + 7] = length & 0xff;
  out[offset + 8] = seq >>> 24;
  out[offset + 9] = (seq >>> 16) & 0xff;
  out[offset + 10] = (seq >>> 8) & 0xff;
  out[offset + 11] = seq & 0xff;
}

/** A whole frame (header + payload) in one new Buffer. */
export function encodeFrame(flags: number, type: number, seq: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  writeHeader(out, 0, flags, type, payload.length, seq);
  out.set(payload, HEADER_SIZE);
  return out;
}

/** Encodes one message of the `length` framing (u32 BE length + payload). */
export function encodeLength(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.length);
  out.writeUInt32BE(payload.length, 0);
  out.set(payload, 4);
  return out;
}
