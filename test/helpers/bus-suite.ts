/**
 * The cross-server suite every bus adapter runs (memory, Redis, NATS):
 * several in-process servers (native and net engines mixed) on one bus,
 * driven through the demo's types over raw sockets.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, type Server } from '../../src/index';
import type { Bus } from '../../src/bus/bus';
import type { BusGap } from '../../src/bus/link';
import { tryLoadNative } from '../../src/engines/native/binding';
import { installDemo } from '../../src/cli/demo';
import { connectPeer, frame, type WirePeer } from './wire';
import { ask, subscribe, whoami } from './topic-requests';

export interface BusUnderTest {
  /** A bus adapter for one more server (memory: the same object each time). */
  bus(): Bus;
  /** The broker goes away / comes back (same address). */
  outage(): Promise<void>;
  restore(): Promise<void>;
  /** Nodes subscribed to a channel, as the broker sees it; undefined when the broker cannot tell. */
  holders?(channel: string): Promise<number | undefined>;
}

const engines = tryLoadNative() ? (['native', 'net', 'native'] as const) : (['net', 'net', 'net'] as const);

export async function node(b: BusUnderTest, nodeId: string, engine: 'native' | 'net' = 'net'): Promise<{ server: Server; port: number }> {
  const server = createServer({ engine, bus: b.bus(), nodeId, drainTimeout: 200 });
  server.on('error', () => undefined);
  installDemo(server);
  onTestFinished(() => server.close());
  const { port } = await server.listen({ port: 0 });
  return { server, port };
}

/** Resolves once every server reports the bus up (the first subscriptions are then in effect). */
export async function busUp(...servers: Server[]): Promise<void> {
  for (const server of servers) {
    await expect.poll(async () => (await server.stats()).bus?.up, { timeout: 15_000, interval: 50 }).toBe(true);
  }
}

function nextGap(server: Server): Promise<BusGap> {
  return new Promise((resolve) => server.once('busgap', resolve));
}

/** No further frame arrives on `peer` before the ECHO answer (so nothing was delivered twice or astray). */
async function nothingMore(peer: WirePeer, seq: number): Promise<void> {
  peer.write(frame(0, 1, seq, 'end'));
  expect(await peer.readFrame(10_000)).toMatchObject({ type: 1, seq, flags: 1 });
}

export function busSuite(name: string, setup: () => BusUnderTest): void {
  describe(`bus: ${name}`, () => {
    it('a publish on B reaches the subscribers on A and C exactly once, in order, and nobody else', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      const B = await node(b, 'node-b', engines[1]);
      const C = await node(b, 'node-c', engines[2]);
      await busUp(A.server, B.server, C.server);
      const onA = await connectPeer(A.port);
      const onC = await connectPeer(C.port);
      const idleOnB = await connectPeer(B.port);
      const otherTopicOnC = await connectPeer(C.port);
      await subscribe(onA, 1, 'room');
      await subscribe(onC, 1, 'room');
      await subscribe(otherTopicOnC, 1, 'elsewhere');
      // Interest routing: B has no subscriber, so it holds only its inbox and broadcast channels.
      expect((await B.server.stats()).bus!.channels).toBe(2);
      expect((await A.server.stats()).bus!.channels).toBe(3);
      if (b.holders) {
        const holders = await b.holders('edgepoll:t:room');
        if (holders !== undefined) expect(holders).toBe(2);
      }
      const publisher = await connectPeer(B.port);
      const count = 100;
      for (let i = 0; i < count; i++) publisher.write(frame(0, 6, 1000 + i, `room\0m${i}`));
      for (let i = 0; i < count; i++) expect((await publisher.readFrame()).seq).toBe(1000 + i);
      const expected = Array.from({ length: count }, (_, i) => `room\0m${i}`);
      for (const peer of [onA, onC]) {
        const got = await peer.readFrames(count, 15_000);
        expect(got.map((f) => f.payload.toString())).toEqual(expected);
        expect(got.every((f) => f.type === 6 && f.seq === 0)).toBe(true);
        await nothingMore(peer, 9);
      }
      await nothingMore(idleOnB, 9);
      await nothingMore(otherTopicOnC, 9);
      const stats = (await B.server.stats()).bus!;
      expect(stats.sent).toBeGreaterThanOrEqual(count);
      expect(stats.sendDropped).toBe(0);
      expect((await A.server.stats()).bus!.received).toBeGreaterThanOrEqual(count);
    });

    it('a node gets its own publish once (its echo from the bus is dropped and counted)', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      const C = await node(b, 'node-c', engines[2]);
      await busUp(A.server, C.server);
      const local = await connectPeer(A.port);
      const remote = await connectPeer(C.port);
      await subscribe(local, 1, 'echoes');
      await subscribe(remote, 1, 'echoes');
      local.write(frame(0, 6, 2, 'echoes\0once'));
      expect(await local.readFrame()).toMatchObject({ seq: 0, payload: Buffer.from('echoes\0once') });
      expect(await local.readFrame()).toMatchObject({ seq: 2, flags: 1 });
      expect((await remote.readFrame()).payload.toString()).toBe('echoes\0once');
      await expect.poll(async () => (await A.server.stats()).bus!.own, { timeout: 10_000 }).toBeGreaterThanOrEqual(1);
      await nothingMore(local, 3);
      await nothingMore(remote, 3);
    });

    it('SENDTO and BROADCAST reach connections on the other servers', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      const B = await node(b, 'node-b', engines[1]);
      await busUp(A.server, B.server);
      const onA = await connectPeer(A.port);
      const onB = await connectPeer(B.port);
      const address = await whoami(onA, 1);
      expect(address.startsWith('node-a/')).toBe(true);
      expect((await ask(onB, 8, 2, Buffer.concat([Buffer.from(address), Buffer.from([0]), Buffer.from('direct')]))).flags).toBe(1);
      expect(await onA.readFrame(10_000)).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('direct') });
      B.server.sendTo(address, 9, 'api');
      expect((await onA.readFrame(10_000)).payload.toString()).toBe('api');
      expect((await ask(onB, 2, 3, 'everyone')).flags).toBe(1);
      expect(await onA.readFrame(10_000)).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('everyone') });
      await nothingMore(onA, 4);
      await nothingMore(onB, 4);
    });

    it('the last local subscriber leaving drops the channel after the delay', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      await busUp(A.server);
      const peer = await connectPeer(A.port);
      await subscribe(peer, 1, 'short-lived');
      expect((await A.server.stats()).bus!.channels).toBe(3);
      expect((await ask(peer, 5, 2, 'short-lived')).flags).toBe(1);
      await expect.poll(async () => (await A.server.stats()).bus!.channels, { timeout: 10_000 }).toBe(2);
      if (b.holders) {
        const holders = await b.holders('edgepoll:t:short-lived');
        if (holders !== undefined) expect(holders).toBe(0);
      }
    });

    it('a bus outage costs deliveries (counted), never the servers; one gap event each; resubscribed after', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      const B = await node(b, 'node-b', engines[1]);
      await busUp(A.server, B.server);
      const onA = await connectPeer(A.port);
      const onB = await connectPeer(B.port);
      await subscribe(onA, 1, 'news');
      await subscribe(onB, 1, 'news');
      const gapsA: BusGap[] = [];
      const gapsB: BusGap[] = [];
      A.server.on('busgap', (gap) => gapsA.push(gap));
      B.server.on('busgap', (gap) => gapsB.push(gap));
      await b.outage();
      await expect.poll(async () => (await B.server.stats()).bus!.up, { timeout: 15_000 }).toBe(false);
      // Local delivery goes on; the remote part is counted as dropped.
      const dropped = (await B.server.stats()).bus!.sendDropped;
      for (let i = 0; i < 5; i++) B.server.publish('news', 9, `lost${i}`);
      for (let i = 0; i < 5; i++) expect((await onB.readFrame()).payload.toString()).toBe(`lost${i}`);
      expect((await B.server.stats()).bus!.sendDropped).toBe(dropped + 5);
      expect((await ask(onA, 1, 2, 'alive')).payload.toString()).toBe('alive');
      // A SUBSCRIBE while the bus is down is answered once the local subscription holds.
      const late = await connectPeer(A.port);
      await subscribe(late, 1, 'news');
      const gapA = nextGap(A.server);
      const gapB = nextGap(B.server);
      await b.restore();
      const [g] = await Promise.all([gapA, gapB]);
      expect(g.to).toBeGreaterThanOrEqual(g.from);
      expect(gapsB[0]!.sendDropped).toBeGreaterThanOrEqual(5);
      // Resubscribed: a publish on B reaches A's subscribers again (the late one too).
      B.server.publish('news', 9, 'back');
      expect((await onA.readFrame(15_000)).payload.toString()).toBe('back');
      expect((await late.readFrame(15_000)).payload.toString()).toBe('back');
      expect((await onB.readFrame()).payload.toString()).toBe('back');
      expect(gapsA.length).toBe(1);
      expect(gapsB.length).toBe(1);
      expect((await A.server.stats()).bus!.gaps).toBe(1);
    });

    it('a bus unreachable at startup: the server serves locally and joins when it comes', async () => {
      const b = setup();
      const A = await node(b, 'node-a', engines[0]);
      await busUp(A.server);
      await b.outage();
      await expect.poll(async () => (await A.server.stats()).bus!.up, { timeout: 15_000 }).toBe(false);
      const D = await node(b, 'node-d', engines[1]);
      const onD = await connectPeer(D.port);
      const onA = await connectPeer(A.port);
      await subscribe(onD, 1, 'later');
      await subscribe(onA, 1, 'later');
      D.server.publish('later', 9, 'local only');
      expect((await onD.readFrame()).payload.toString()).toBe('local only');
      const joined = nextGap(D.server);
      await b.restore();
      const gap = await joined;
      expect(gap.sendDropped).toBeGreaterThanOrEqual(1);
      await busUp(A.server, D.server);
      // A renews its subscriptions on its own schedule: probe until one arrives, then nothing else but probes.
      const timer = setInterval(() => A.server.publish('later', 9, 'probe'), 200);
      try {
        expect((await onD.readFrame(15_000)).payload.toString()).toBe('probe');
      } finally {
        clearInterval(timer);
      }
      expect((await onA.readFrame(15_000)).payload.toString()).toBe('probe');
    });
  });
}
