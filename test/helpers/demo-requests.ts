/** Requests to the demo service (ECHO 1, STATS 3) over a raw WirePeer, skipping unrelated frames. */
import { expect } from 'vitest';
import { frame, type WirePeer } from './wire';

/** ECHO with `seq`; checks the payload and resolves with the round trip in ms. */
export async function echo(peer: WirePeer, seq: number, text = `e${seq}`): Promise<number> {
  const start = performance.now();
  peer.write(frame(0, 1, seq, text));
  let reply;
  do reply = await peer.readFrame(5000);
  while (reply.seq !== seq || reply.type !== 1);
  expect(reply.payload.toString()).toBe(text);
  return performance.now() - start;
}

/** STATS with `seq`: the server's counters. */
export async function stats(peer: WirePeer, seq: number): Promise<Record<string, number>> {
  peer.write(frame(0, 3, seq));
  let reply;
  do reply = await peer.readFrame();
  while (reply.seq !== seq || reply.type !== 3);
  expect(reply.flags).toBe(1);
  return JSON.parse(reply.payload.toString());
}
