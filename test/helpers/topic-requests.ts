/** The demo's topic types (4 SUBSCRIBE … 8 SENDTO) over a raw WirePeer. */
import { expect } from 'vitest';
import { frame, type WirePeer, type WireFrame } from './wire';

/** Sends a request and resolves with its reply (RESPONSE frame of that type and seq), skipping pushes. */
export async function ask(peer: WirePeer, type: number, seq: number, payload: Uint8Array | string = ''): Promise<WireFrame> {
  peer.write(frame(0, type, seq, payload));
  for (;;) {
    const reply = await peer.readFrame(10_000);
    if (reply.seq === seq && reply.type === type && reply.flags & 1) return reply;
  }
}

export async function subscribe(peer: WirePeer, seq: number, topic: string): Promise<void> {
  const reply = await ask(peer, 4, seq, topic);
  expect(reply.flags, reply.payload.toString()).toBe(1);
}

export function publish(peer: WirePeer, seq: number, topic: string, message: string): Promise<WireFrame> {
  return ask(peer, 6, seq, Buffer.concat([Buffer.from(topic), Buffer.from([0]), Buffer.from(message)]));
}

export async function whoami(peer: WirePeer, seq: number): Promise<string> {
  const reply = await ask(peer, 7, seq);
  expect(reply.flags).toBe(1);
  return reply.payload.toString();
}

export function sendTo(peer: WirePeer, seq: number, address: string, message: string): Promise<WireFrame> {
  return ask(peer, 8, seq, Buffer.concat([Buffer.from(address), Buffer.from([0]), Buffer.from(message)]));
}
