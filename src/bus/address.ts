/**
 * Node ids and connection addresses (PROTOCOL.md section 6): an address is
 * `nodeId/epoch-serial`, where `epoch` is when the server started (ms, base
 * 36) and `serial` counts its connections, so an address is never reused,
 * not even by a restarted server with the same node id.
 * Owns: the address format only. Runs on: any JS thread.
 */
import { randomBytes } from 'node:crypto';
import { EdgepollError, invalidOption } from '../errors';

const NODE_ID = /^[A-Za-z0-9._:-]{1,64}$/;

/** A fresh, unique node id. */
export function generateNodeId(): string {
  return `n-${randomBytes(6).toString('hex')}`;
}

export function checkNodeId(value: unknown): string {
  if (typeof value !== 'string' || !NODE_ID.test(value)) {
    throw invalidOption('nodeId', '1 to 64 characters of A-Z a-z 0-9 . _ : -', value);
  }
  return value;
}

/** Hands out the addresses of one server's connections. */
export class AddressBook {
  readonly #prefix: string;
  #serial = 0;

  constructor(readonly nodeId: string) {
    this.#prefix = `${nodeId}/${Date.now().toString(36)}-`;
  }

  next(): string {
    this.#serial++;
    return this.#prefix + this.#serial.toString(36);
  }
}

/** The node id part of an address; throws EBAD_ADDRESS when it is none. */
export function nodeOf(address: unknown): string {
  if (typeof address === 'string') {
    const slash = address.lastIndexOf('/');
    if (slash > 0 && slash < address.length - 1 && NODE_ID.test(address.slice(0, slash))) return address.slice(0, slash);
  }
  let shown: string;
  try {
    shown = JSON.stringify(address) ?? String(address);
  } catch {
    shown = typeof address;
  }
  throw new EdgepollError('EBAD_ADDRESS', `not a connection address (nodeId/connection): ${shown}`);
}
