// The frame handling of the benchmark's reference servers (baseline-net.mjs on
// node:net, baseline-bun.mjs on Bun.listen): what a careful user writes by hand
// to answer the demo service's ECHO (1), BROADCAST (2) and PING of
// /work/shared/PROTOCOL.md as the load generator uses them. Plain JS, no
// edgepoll code, so both runtimes run the very same per-message work and only
// the socket layer differs. Owns: parsing one connection's bytes into replies;
// runs on the server's (only) JS thread.
//
// Written for speed: every complete frame of a chunk is answered into one
// buffer, written with one write by the caller; only a partial frame at the end
// of a chunk is kept (copied, so the runtime may reuse its read buffer).

const MAGIC = 0xeb;
const RESPONSE = 1;
const ERROR = 2;
const MAX_FRAME = 1024 * 1024;
const PING = 0xff01;
const PONG = 0xff02;

/** One connection's parse state. */
export const newConnection = () => ({ pending: null, out: null, outLength: 0 });

function reserve(conn, bytes) {
  if (conn.outLength + bytes <= conn.out.length) return;
  const bigger = Buffer.allocUnsafe(Math.max(conn.out.length * 2, conn.outLength + bytes));
  conn.out.copy(bigger, 0, 0, conn.outLength);
  conn.out = bigger;
}

function header(conn, flags, type, length, seq) {
  const out = conn.out;
  const at = conn.outLength;
  out[at] = MAGIC;
  out[at + 1] = flags;
  out.writeUInt16BE(type, at + 2);
  out.writeUInt32BE(length, at + 4);
  out.writeUInt32BE(seq, at + 8);
  conn.outLength = at + 12;
}

/**
 * Answers every complete frame in `chunk` (after what the previous chunk left).
 * Returns the replies as one Buffer, null when there is nothing to send, or
 * false on a protocol error (the caller closes the connection).
 * `broadcast(push)` is called once per BROADCAST with the push frame for the
 * other connections; this connection's own copy is already in the replies,
 * in order, before the BROADCAST's reply.
 */
export function answer(conn, chunk, broadcast) {
  let input = chunk;
  if (conn.pending !== null) {
    input = Buffer.concat([conn.pending, chunk]);
    conn.pending = null;
  }
  const end = input.length;
  let at = 0;
  // Replies are never longer than their requests except for BROADCAST
  // (push + reply) and ERROR texts: reserve() grows the buffer for those.
  conn.out = null;
  conn.outLength = 0;
  while (end - at >= 12) {
    const flags = input[at + 1];
    if (input[at] !== MAGIC || (flags & 0xfc) !== 0) return false;
    const length = input.readUInt32BE(at + 4);
    if (length > MAX_FRAME) return false;
    const size = 12 + length;
    if (end - at < size) break;
    const type = input.readUInt16BE(at + 2);
    const seq = input.readUInt32BE(at + 8);
    if (conn.out === null) conn.out = Buffer.allocUnsafe(end - at);
    if (type >= 0xff00 || type === 0) {
      if (type === PING && length <= 64) {
        reserve(conn, size);
        header(conn, 0, PONG, length, seq);
        input.copy(conn.out, conn.outLength, at + 12, at + size);
        conn.outLength += length;
      } else if (type !== PONG) {
        return false; // CLOSE, GOAWAY from a client, unknown control types, type 0, an oversized PING
      }
    } else if ((flags & RESPONSE) === 0 && seq !== 0) {
      if (type === 1) {
        reserve(conn, size);
        input.copy(conn.out, conn.outLength, at, at + size);
        conn.out[conn.outLength + 1] = RESPONSE;
        conn.outLength += size;
      } else if (type === 2) {
        const push = Buffer.allocUnsafe(size);
        input.copy(push, 0, at, at + size);
        push[1] = 0;
        push.writeUInt32BE(0, 8);
        broadcast(push);
        reserve(conn, size + 12);
        push.copy(conn.out, conn.outLength);
        conn.outLength += size;
        header(conn, RESPONSE, 2, 0, seq);
      } else {
        const text = `unknown type ${type}`;
        reserve(conn, 12 + text.length);
        header(conn, RESPONSE | ERROR, type, text.length, seq);
        conn.outLength += conn.out.latin1Write(text, conn.outLength);
      }
    }
    at += size;
  }
  if (at < end) conn.pending = Buffer.from(input.subarray(at));
  if (conn.outLength === 0) return null;
  return conn.out.subarray(0, conn.outLength);
}
