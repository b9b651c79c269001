/**
 * Three `edgepoll serve --bus …` processes (docs/PROTOCOL.md sections 5-6) on a
 * real redis-server and nats-server: subscribers on A and C, a publisher on
 * B; SENDTO and BROADCAST across; interest routing seen with PUBSUB
 * SHARDNUMSUB; a node SIGSTOPped long enough for Redis to cut it off
 * (client-output-buffer-limit pubsub) recovers after SIGCONT while the
 * others never notice.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { root, startFixture, type Fixture } from '../helpers/fixture';
import { have, startBroker, type Broker } from '../helpers/brokers';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';
import { ask, subscribe, whoami } from '../helpers/topic-requests';
import { stats } from '../helpers/demo-requests';

const cli = path.join(root, 'dist', 'cli', 'main.js');

async function serve(url: string, nodeId: string, engine: string): Promise<Fixture> {
  const fixture = await startFixture({}, cli, ['serve', '--port', '0', '--engine', engine, '--bus', url, '--node-id', nodeId, '--drain-timeout', '200']);
  onTestFinished(() => void fixture.stop('SIGKILL'));
  return fixture;
}

async function busUp(peer: WirePeer): Promise<void> {
  const deadline = Date.now() + 15_000;
  let seq = 5000;
  while (Date.now() < deadline) {
    const s = (await stats(peer, seq++)) as unknown as { bus?: { up: boolean } };
    if (s.bus?.up) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('bus not up');
}

async function nothingMore(peer: WirePeer, seq: number): Promise<void> {
  peer.write(frame(0, 1, seq, 'end'));
  expect(await peer.readFrame(10_000)).toMatchObject({ type: 1, seq, flags: 1 });
}

const engines = ['native', 'net', 'native'];

for (const kind of ['redis', 'nats'] as const) {
  const available = Boolean(process.env.CI) || (kind === 'redis' ? have('redis-server') && have('redis-cli') : have('nats-server'));
  describe.skipIf(!available)(`edgepoll serve --bus ${kind}://`, () => {
    let broker: Broker;
    beforeAll(async () => {
      broker = await startBroker(kind, kind === 'redis' ? ['--client-output-buffer-limit', 'pubsub 256kb 128kb 1'] : []);
    });
    afterAll(async () => {
      await broker?.kill();
    });

    it('publish on B reaches the subscribers on A and C exactly once; SENDTO and BROADCAST cross nodes', async () => {
      const [A, B, C] = await Promise.all(['A', 'B', 'C'].map((id, i) => serve(broker.url, `serve-${id}`, engines[i]!)));
      const onA = await connectPeer(A!.port);
      const onB = await connectPeer(B!.port);
      const onC = await connectPeer(C!.port);
      for (const peer of [onA, onB, onC]) await busUp(peer);
      await subscribe(onA, 1, 'lobby');
      await subscribe(onC, 1, 'lobby');
      if (kind === 'redis') {
        // Interest routing: A and C hold the topic's shard channel, B (no subscriber) does not.
        const out = (await broker.redis('PUBSUB', 'SHARDNUMSUB', 'edgepoll:t:lobby')).split('\n');
        expect(Number(out[1])).toBe(2);
      }
      const count = 50;
      for (let i = 0; i < count; i++) onB.write(frame(0, 6, 100 + i, `lobby\0n${i}`));
      for (let i = 0; i < count; i++) expect((await onB.readFrame()).seq).toBe(100 + i);
      for (const peer of [onA, onC]) {
        const got = await peer.readFrames(count, 15_000);
        expect(got.map((f) => f.payload.toString())).toEqual(Array.from({ length: count }, (_, i) => `lobby\0n${i}`));
      }
      const addressC = await whoami(onC, 2);
      expect(addressC.startsWith('serve-C/')).toBe(true);
      expect((await ask(onA, 8, 3, `${addressC}\0to C`)).flags).toBe(1);
      expect(await onC.readFrame(10_000)).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('to C') });
      expect((await ask(onB, 2, 4, 'all')).flags).toBe(1);
      for (const peer of [onA, onC]) expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('all') });
      for (const peer of [onA, onB, onC]) await nothingMore(peer, 9);
    }, 60_000);

    it.skipIf(kind !== 'redis')('a SIGSTOPped node cut off by Redis recovers after SIGCONT; the others never notice', async () => {
      const [A, B, C] = await Promise.all(['A', 'B', 'C'].map((id, i) => serve(broker.url, `stop-${id}`, engines[i]!)));
      const onA = await connectPeer(A!.port);
      const onB = await connectPeer(B!.port);
      const onC = await connectPeer(C!.port);
      for (const peer of [onA, onB, onC]) await busUp(peer);
      await subscribe(onA, 1, 'flood');
      await subscribe(onC, 1, 'flood');
      let cReceived = 0;
      onC.socket.removeAllListeners('data');
      onC.socket.on('data', (chunk: Buffer) => (cReceived += chunk.length));
      A!.child.kill('SIGSTOP');
      try {
        // 16 MiB towards A's subscriber connection: more than loopback's socket
        // buffers hold, so Redis' output buffer for A passes the 256 KiB pubsub limit.
        const message = 'x'.repeat(4096);
        const count = 4096;
        for (let i = 0; i < count; i++) onB.write(frame(0, 6, 0, `flood\0${message}`));
        const perFrame = 12 + 'flood\0'.length + 4096;
        await expect.poll(() => cReceived, { timeout: 30_000 }).toBe(count * perFrame);
        // Redis has closed A's subscriber connection (A cannot read it while stopped).
        await expect.poll(async () => (await broker.redis('CLIENT', 'LIST', 'TYPE', 'pubsub')).split('\n').filter(Boolean).length, { timeout: 10_000 }).toBe(2);
      } finally {
        A!.child.kill('SIGCONT');
      }
      await expect.poll(() => A!.stderr(), { timeout: 15_000 }).toMatch(/bus back after/);
      // A is resubscribed: a publish reaches it again.
      const reading = (async () => {
        for (;;) {
          const f = await onA.readFrame(15_000);
          if (f.payload.toString() === 'flood\0after') return;
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 200));
      onB.write(frame(0, 6, 0, 'flood\0after'));
      await reading;
      expect(B!.stderr()).not.toMatch(/bus back after/);
      expect(C!.stderr()).not.toMatch(/bus back after/);
    }, 60_000);
  });
}
