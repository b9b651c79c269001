/**
 * Topics within one server (issue 14, docs/PROTOCOL.md sections 5-6) over every
 * in-process engine, through the API and the demo's SUBSCRIBE/UNSUBSCRIBE/
 * PUBLISH/WHOAMI/SENDTO over raw sockets; the cluster engine in its own block.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, EdgepollError, type Connection, type Server } from '../../src/index';
import { installDemo } from '../../src/cli/demo';
import type { ServerOptions } from '../../src/server/options';
import { connectPeer, frame, nonReader, type WirePeer } from '../helpers/wire';
import { engineCases, startFixture } from '../helpers/fixture';
import { stats } from '../helpers/demo-requests';
import { ask, subscribe, publish, whoami } from '../helpers/topic-requests';

async function demoServer(options: ServerOptions): Promise<{ server: Server; port: number }> {
  const server = createServer({ drainTimeout: 200, ...options });
  onTestFinished(() => server.close());
  installDemo(server);
  const address = await server.listen({ port: 0 });
  return { server, port: address.port };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(EdgepollError);
    return (error as EdgepollError).code as string;
  }
  return undefined;
}

describe.each(engineCases({ cluster: false }))('topics on $name', ({ options }) => {
  it('publish reaches every subscriber exactly once and in order, nobody else, and honours except', async () => {
    const { server, port } = await demoServer(options);
    const connections: Connection[] = [];
    server.on('connection', (c) => connections.push(c));
    const a = await connectPeer(port);
    const b = await connectPeer(port);
    const c = await connectPeer(port);
    await subscribe(a, 1, 'room');
    await subscribe(b, 1, 'room');
    await subscribe(c, 1, 'other');
    const addressA = await whoami(a, 2);
    // With 2 loops 'connection' events may come in either order: pair them by address.
    const ca = connections.find((x) => x.address === addressA);
    const cb = connections.find((x) => x.address !== addressA && x.topics.has('room'));
    expect([...ca!.topics]).toEqual(['room']);
    for (let i = 0; i < 200; i++) server.publish('room', 9, `m${i}`);
    server.publish('room', 9, 'not for a', { except: ca });
    server.publish('room', 9, 'not for b', { except: cb!.address });
    server.publish('other', 9, 'for c');
    const fromA = await a.readFrames(201);
    const fromB = await b.readFrames(201);
    const expected = [...Array.from({ length: 200 }, (_, i) => `m${i}`)];
    expect(fromA.map((f) => f.payload.toString())).toEqual([...expected, 'not for b']);
    expect(fromB.map((f) => f.payload.toString())).toEqual([...expected, 'not for a']);
    expect(fromA.every((f) => f.type === 9 && f.seq === 0 && f.flags === 0)).toBe(true);
    expect((await c.readFrame()).payload.toString()).toBe('for c');
    // Exactly once: nothing else arrives (an ECHO answer comes next, and only it).
    a.write(frame(0, 1, 77, 'x'));
    expect(await a.readFrame()).toMatchObject({ type: 1, seq: 77, flags: 1 });
  });

  it('unsubscribe and close stop deliveries; STATS counts topics and subscriptions', async () => {
    const { server, port } = await demoServer(options);
    const a = await connectPeer(port);
    const b = await connectPeer(port);
    await subscribe(a, 1, 't1');
    await subscribe(a, 2, 't2');
    await subscribe(b, 1, 't1');
    await subscribe(b, 2, 't1'); // again: not an error, not counted twice
    let s = await stats(a, 3);
    expect(s.topics).toBe(2);
    expect(s.subscriptions).toBe(3);
    expect(await ask(a, 5, 4, 't1')).toMatchObject({ flags: 1 });
    expect(await ask(a, 5, 5, 'never-joined')).toMatchObject({ flags: 1, payload: Buffer.alloc(0) });
    s = await stats(a, 6);
    expect(s).toMatchObject({ topics: 2, subscriptions: 2 });
    server.publish('t1', 9, 'only b');
    expect((await b.readFrame()).payload.toString()).toBe('only b');
    a.write(frame(0, 1, 7, 'e'));
    expect(await a.readFrame()).toMatchObject({ type: 1, seq: 7 });
    b.destroy();
    await expect.poll(async () => (await server.stats()).subscriptions, { timeout: 5000 }).toBe(1);
    expect((await server.stats()).topics).toBe(1);
  });

  it('PUBLISH: the sender\'s own push arrives before the reply, with the payload `topic 0x00 message`', async () => {
    const { port } = await demoServer(options);
    const a = await connectPeer(port);
    const b = await connectPeer(port);
    await subscribe(a, 1, 'chat');
    await subscribe(b, 1, 'chat');
    const payload = Buffer.concat([Buffer.from('chat'), Buffer.from([0]), Buffer.from('hello')]);
    a.write(frame(0, 6, 2, payload));
    const first = await a.readFrame();
    expect(first).toEqual({ flags: 0, type: 6, seq: 0, payload });
    expect(await a.readFrame()).toEqual({ flags: 1, type: 6, seq: 2, payload: Buffer.alloc(0) });
    expect(await b.readFrame()).toEqual({ flags: 0, type: 6, seq: 0, payload });
    // A publisher that did not subscribe gets just the reply.
    const c = await connectPeer(port);
    expect(await publish(c, 3, 'chat', 'from c')).toMatchObject({ flags: 1 });
    expect((await a.readFrame()).payload.toString()).toBe('chat\0from c');
  });

  it('bad topic names and too many topics are errors with a code; ERROR replies in the demo', async () => {
    const { server, port } = await demoServer({ ...options, maxTopicsPerConnection: 3 });
    let connection: Connection | undefined;
    server.once('connection', (c) => (connection = c));
    const a = await connectPeer(port);
    await expect.poll(() => connection).toBeDefined();
    expect(codeOf(() => connection!.subscribe(''))).toBe('EBAD_TOPIC');
    expect(codeOf(() => connection!.subscribe('x'.repeat(201)))).toBe('EBAD_TOPIC');
    expect(codeOf(() => connection!.subscribe('é'.repeat(101)))).toBe('EBAD_TOPIC'); // 202 bytes
    expect(codeOf(() => connection!.subscribe('a\0b'))).toBe('EBAD_TOPIC');
    expect(codeOf(() => connection!.subscribe('\ud800'))).toBe('EBAD_TOPIC');
    expect(codeOf(() => connection!.subscribe(42 as never))).toBe('EBAD_TOPIC');
    expect(codeOf(() => server.publish('', 9, 'x'))).toBe('EBAD_TOPIC');
    await connection!.subscribe('x'.repeat(200));
    await connection!.subscribe('é'.repeat(100));
    await connection!.subscribe('three');
    expect(codeOf(() => connection!.subscribe('four'))).toBe('ETOO_MANY_TOPICS');
    connection!.unsubscribe('three');
    await connection!.subscribe('four');
    // Over the wire: ERROR replies, connection stays open.
    expect((await ask(a, 4, 1, '')).flags).toBe(3);
    expect((await ask(a, 4, 2, Buffer.from([0xff, 0xfe]))).flags).toBe(3); // not UTF-8
    expect((await ask(a, 4, 3, 'five')).flags).toBe(3); // over the limit
    expect((await ask(a, 6, 4, 'no-zero-byte')).flags).toBe(3);
    expect((await ask(a, 1, 5, 'still open')).payload.toString()).toBe('still open');
  });

  it('a subscriber that does not read is closed as slow consumer without holding up the others', async () => {
    const { server, port } = await demoServer({ ...options, highWaterMark: 16 * 1024, maxBufferedAmount: 1024 * 1024 });
    const fast = await connectPeer(port);
    await subscribe(fast, 1, 'firehose');
    // Count bytes, not frames: the fast reader must keep up easily.
    let fastBytes = 0;
    fast.socket.removeAllListeners('data');
    fast.socket.on('data', (chunk: Buffer) => (fastBytes += chunk.length));
    const slowConnection = new Promise<Connection>((resolve) => server.once('connection', resolve));
    const slow = await nonReader(port);
    const conn = await slowConnection;
    await conn.subscribe('firehose');
    const closed = new Promise<string>((resolve) => conn.once('close', (code) => resolve(code)));
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let sawBackpressure = false;
    const total = 1000; // 16 MiB: far beyond the slow peer's kernel buffers + 1 MiB
    const size = 12 + chunk.length;
    for (let i = 0; i < total; i++) {
      if (!server.publish('firehose', 9, chunk)) sawBackpressure = true;
      // The fast reader lives on this thread: let it stay within 20 chunks (320 KiB) of the publisher.
      if (i % 10 === 9) await expect.poll(() => fastBytes, { timeout: 20_000, interval: 2 }).toBeGreaterThanOrEqual((i + 1 - 20) * size);
    }
    expect(await closed).toBe('ESLOW_CONSUMER');
    slow.destroy();
    await expect.poll(() => fastBytes, { timeout: 20_000 }).toBe(total * size);
    expect(sawBackpressure).toBe(true);
    expect(fast.closed).toBe(false);
  });

  it('WHOAMI and SENDTO: addresses name the node and the connection, are never reused', async () => {
    const { server, port } = await demoServer({ ...options, nodeId: 'node-A' });
    expect(server.nodeId).toBe('node-A');
    const a = await connectPeer(port);
    const b = await connectPeer(port);
    const addressA = await whoami(a, 1);
    const addressB = await whoami(b, 1);
    expect(addressA).toMatch(/^node-A\//);
    expect(addressA).not.toBe(addressB);
    b.write(frame(0, 8, 2, Buffer.concat([Buffer.from(addressA), Buffer.from([0]), Buffer.from('psst')])));
    expect(await a.readFrame()).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('psst') });
    expect(await b.readFrame()).toMatchObject({ flags: 1, type: 8, seq: 2 });
    a.destroy();
    const seen = new Set([addressA, addressB]);
    for (let i = 0; i < 5; i++) {
      const p = await connectPeer(port);
      const address = await whoami(p, 1);
      expect(seen.has(address)).toBe(false);
      seen.add(address);
      p.destroy();
    }
    // A gone address is not an error; a malformed one is.
    expect(await ask(b, 8, 3, Buffer.concat([Buffer.from(addressA), Buffer.from([0, 0x78])]))).toMatchObject({ flags: 1 });
    expect((await ask(b, 8, 4, Buffer.from('nonsense\0x'))).flags).toBe(3);
    expect(server.sendTo(addressB, 9, 'api')).toBe(true);
    expect((await b.readFrame()).payload.toString()).toBe('api');
  });
});

describe('topics on the cluster engine (workers=2): one space through the workers\' IPC bus', () => {
  it('PUBLISH, SENDTO and BROADCAST reach connections of every worker exactly once', async () => {
    const fixture = await startFixture({ engine: 'cluster', workers: 2, drainTimeout: 200 });
    onTestFinished(() => fixture.stop());
    // The primary hands connections out round-robin: four peers land on both workers.
    const peers: WirePeer[] = [];
    for (let i = 0; i < 4; i++) {
      const peer = await connectPeer(fixture.port);
      await subscribe(peer, 2, 'room');
      peers.push(peer);
    }
    const addresses = await Promise.all(peers.map((p, i) => whoami(p, 10 + i)));
    const nodes = addresses.map((a) => a.split('/')[0]);
    expect(new Set(nodes).size).toBe(2); // two workers, two node ids
    const other = nodes.findIndex((n) => n !== nodes[0]);
    const publisher = await connectPeer(fixture.port);
    for (let i = 0; i < 20; i++) expect((await publish(publisher, 100 + i, 'room', `m${i}`)).flags).toBe(1);
    for (const peer of peers) {
      const got = await peer.readFrames(20);
      expect(got.map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `room\0m${i}`));
    }
    // SENDTO across workers.
    const reply = await ask(peers[0]!, 8, 200, Buffer.concat([Buffer.from(addresses[other]!), Buffer.from([0]), Buffer.from('hi')]));
    expect(reply.flags).toBe(1);
    expect(await peers[other]!.readFrame()).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('hi') });
    // BROADCAST: once to everyone, the sender's push before its reply.
    expect((await ask(publisher, 2, 250, 'all')).flags).toBe(1);
    for (const peer of peers) expect(await peer.readFrame()).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('all') });
    // Still exactly once: the next frame each peer sees is the ECHO reply.
    for (const peer of peers) expect((await ask(peer, 1, 300, 'e')).payload.toString()).toBe('e');
    const s = await stats(publisher, 400);
    expect(s.subscriptions).toBe(peers.length);
    // One topic, though both workers have subscribers to it; the names stay out of STATS.
    expect(s.topics).toBe(1);
    expect(JSON.stringify(s)).not.toContain('topicNames');
  }, 60_000);
});

describe.skipIf(engineCases({ cluster: false }).every((c) => c.options.engine !== 'native'))('native fan-out', () => {
  it('happens in the loops: publishing to 300 subscribers hands JS no record per receiver', async () => {
    const { server, port } = await demoServer({ engine: 'native', threads: 2 });
    const connections: Connection[] = [];
    server.on('connection', (c) => connections.push(c));
    const peers: WirePeer[] = [];
    for (let i = 0; i < 300; i++) peers.push(await connectPeer(port));
    await expect.poll(() => connections.length).toBe(300);
    for (const c of connections) await c.subscribe('wide');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const batches = async () => (await server.stats()).loops.reduce((sum, loop) => sum + (loop.batches ?? 0), 0);
    const before = await batches();
    expect(before).toBeGreaterThan(0); // the counter is real: 300 OPEN records came through it
    for (let i = 0; i < 20; i++) server.publish('wide', 9, `w${i}`);
    for (const peer of peers) expect((await peer.readFrames(20)).map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `w${i}`));
    // 6,000 deliveries; the loops handed JS (almost) nothing: no batch per receiver or per message.
    expect((await batches()) - before).toBeLessThan(20);
  });
});
