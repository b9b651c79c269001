/**
 * What travels on a bus channel: the already encoded frame (the receiving
 * node hands it to its native fan-out as it came), who sent it, and whom it
 * is for or not for.
 *
 *   u8 version (1) | u8 kind | u8 origin length | origin |
 *   u16 BE target length | target | u8 topic length | topic | frame bytes
 *
 * kind 1 topic (target = the excepted address, or empty), 2 inbox (target =
 * the receiving address), 3 broadcast (target empty).
 * Owns: the byte layout. Runs on: any JS thread.
 */
export const KIND_TOPIC = 1;
export const KIND_INBOX = 2;
export const KIND_BROADCAST = 3;

export interface Envelope {
  kind: number;
  origin: string;
  target: string;
  topic: string;
  frame: Buffer;
}

export function encodeEnvelope(kind: number, origin: string, target: string, topic: string, frame: Uint8Array): Buffer {
  const o = Buffer.from(origin, 'utf8');
  const t = Buffer.from(target, 'utf8');
  const p = Buffer.from(topic, 'utf8');
  const out = Buffer.allocUnsafe(3 + o.length + 2 + t.length + 1 + p.length + frame.length);
  let at = 0;
  out[at++] = 1;
  out[at++] = kind;
  out[at++] = o.length;
  at += o.copy(out, at);
  out.writeUInt16BE(t.length, at);
  at += 2;
  at += t.copy(out, at);
  out[at++] = p.length;
  at += p.copy(out, at);
  out.set(frame, at);
  return out;
}

/** undefined for anything that is not a version-1 envelope (counted by the caller). */
export function decodeEnvelope(bytes: Buffer): Envelope | undefined {
  if (bytes.length < 7 || bytes[0] !== 1) return undefined;
  let at = 1;
  const kind = bytes[at++];
  const originLength = bytes[at++];
  if (at + originLength + 2 > bytes.length) return undefined;
  const origin = bytes.toString('utf8', at, at + originLength);
  at += originLength;
  const targetLength = bytes.readUInt16BE(at);
  at += 2;
  if (at + targetLength + 1 > bytes.length) return undefined;
  const target = bytes.toString('utf8', at, at + targetLength);
  at += targetLength;
  const topicLength = bytes[at++];
  if (at + topicLength > bytes.length) return undefined;
  const topic = bytes.toString('utf8', at, at + topicLength);
  at += topicLength;
  return { kind, origin, target, topic, frame: bytes.subarray(at) };
}
