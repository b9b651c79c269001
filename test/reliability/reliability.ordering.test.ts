/**
 * docs/reliability.md T27 (fd reuse across threads, ABA) and T28 (per-connection
 * ordering with a thread pool while broadcasts flow), black-box: native with
 * 1, 2 and 4 threads, net, cluster.
 */
import { describe, expect, it } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';
import { echo } from '../helpers/demo-requests';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { sleep } from '../helpers/reliability-fixtures/proc';

const hasNative = tryLoadNative() !== undefined;

/**
 * One connection sends 10,000 numbered ORDER frames (odd: pushes, even:
 * requests) while another floods BROADCASTs. The server's handler checks the
 * per-connection arrival order; the peer checks reply order and that the
 * broadcasts it receives keep the broadcaster's order.
 */
async function orderingRun(port: number): Promise<void> {
  const peer = await connectPeer(port);
  const broadcaster = await connectPeer(port);
  await echo(peer, 1_000_000);
  let broadcasting = true;
  let sentBroadcasts = 0;
  const flow = (async () => {
    while (broadcasting) {
      broadcaster.write(frame(0, 2, 0, String(++sentBroadcasts)));
      await sleep(1);
    }
  })();
  const total = 10_000;
  const chunks: Buffer[] = [];
  for (let n = 1; n <= total; n++) chunks.push(frame(0, 30, n % 2 === 0 ? n : 0, String(n)));
  for (let i = 0; i < chunks.length; i += 500) {
    peer.write(Buffer.concat(chunks.slice(i, i + 500)));
    await sleep(1);
  }
  peer.write(frame(0, 31, 1_000_001));
  const replies: number[] = [];
  const broadcasts: number[] = [];
  let result = '';
  while (!result) {
    const f = await peer.readFrame(10_000);
    if (f.type === 30) replies.push(Number(f.payload.toString()));
    else if (f.type === 2) broadcasts.push(Number(f.payload.toString()));
    else if (f.type === 31) result = f.payload.toString();
  }
  broadcasting = false;
  await flow;
  expect(result).toBe(`${total} 0`);
  expect(replies).toEqual(Array.from({ length: total / 2 }, (_, i) => 2 * (i + 1)));
  expect(broadcasts.length).toBeGreaterThan(0);
  for (let i = 1; i < broadcasts.length; i++) expect(broadcasts[i]).toBe(broadcasts[i - 1]! + 1);
}

/**
 * 8 lanes for 2 s: A sends a request whose reply is due in 5 ms and closes at
 * once; B connects right away (it often gets A's fd) and must see only its
 * own replies, also after A's reply would have been due.
 */
async function reuseRun(port: number): Promise<void> {
  const until = Date.now() + 2000;
  let pairs = 0;
  const lane = async (lane: number): Promise<void> => {
    while (Date.now() < until) {
      const a = await connectPeer(port);
      a.write(frame(0, 13, 0xa000 + lane, '5'));
      a.destroy();
      const b = await connectPeer(port);
      b.write(frame(0, 1, 0xb000 + lane, 'b'));
      expect(await b.readFrame()).toMatchObject({ type: 1, seq: 0xb000 + lane, payload: Buffer.from('b') });
      await sleep(10);
      b.write(frame(0, 1, 0xc000 + lane, 'c'));
      expect(await b.readFrame()).toMatchObject({ type: 1, seq: 0xc000 + lane });
      b.destroy();
      pairs++;
    }
  };
  await Promise.all(Array.from({ length: 8 }, (_, i) => lane(i)));
  expect(pairs).toBeGreaterThan(50);
}

describe.each([1, 2, 4].map((threads) => ({ threads })))('native threads=$threads', ({ threads }) => {
  it.skipIf(!hasNative)('T28 10,000 numbered pushes and requests keep their order while broadcasts flow', async () => {
    const server = await startServer({ engine: 'native', threads, heartbeat: false });
    await orderingRun(server.port);
  });

  it.skipIf(!hasNative || threads !== 4)('T27 fd reuse across 4 threads: nothing for a closed connection reaches its successor', async () => {
    const server = await startServer({ engine: 'native', threads, heartbeat: false });
    await reuseRun(server.port);
  });
});

describe.each(engineCases().filter((c) => c.options.engine !== 'native'))('ordering and reuse on $name', ({ options }) => {
  it('T28 10,000 numbered pushes and requests keep their order while broadcasts flow', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    await orderingRun(server.port);
  });

  it('T27 fd reuse: nothing for a closed connection reaches its successor', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    await reuseRun(server.port);
  });
});
