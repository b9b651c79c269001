/**
 * A payload view: a Buffer (Buffer.prototype, Buffer.isBuffer) over part of
 * an ArrayBuffer, made without Buffer.from's argument dispatch and range
 * checks or subarray's `buffer` getter, for callers whose offsets are right
 * by construction (a decoded frame, a batch record). Measured on Node 20:
 * 19 ns a view, against 40 ns for buf.subarray() and 50 ns for
 * Buffer.from(arrayBuffer, offset, length); made once per message.
 */
import { Buffer } from 'node:buffer';

class PayloadView extends Uint8Array {}
Object.setPrototypeOf(PayloadView.prototype, Buffer.prototype);

export const payloadView = (bytes: ArrayBuffer, offset: number, length: number): Buffer =>
  new PayloadView(bytes, offset, length) as unknown as Buffer;
