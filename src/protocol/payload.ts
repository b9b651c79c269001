/** What handlers and senders may give as a payload, and its conversion to bytes. */
import { EdgepollError } from '../errors';

/** Bytes, or a string sent as UTF-8. */
export type Payload = Uint8Array | string;

const empty = new Uint8Array(0);

/** Bytes of a payload, without copying when it already is bytes. */
export function toBytes(payload: Payload | null | undefined, what = 'payload'): Uint8Array {
  if (payload === undefined || payload === null) return empty;
  if (payload instanceof Uint8Array) return payload;
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  throw new EdgepollError(
    'EINVALID_OPTION',
    `${what} must be a Buffer, Uint8Array, string or nothing, got ${typeof payload}`,
  );
}
