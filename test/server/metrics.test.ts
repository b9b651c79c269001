/**
 * stats() has the same typed shape and the same meaning on every engine
 * (README "Metrics"): black-box through the demo's STATS reply on a fixture
 * server per engine, plus in-process checks of the close reasons a fixture
 * cannot show from outside (shutdown, server full, slow consumer).
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, type ServerStats } from '../../src/index';
import { closeReasonNames } from '../../src/server/metrics';
import { engineCases, startFixture } from '../helpers/fixture';
import { connectPeer, frame, nonReader, type WirePeer } from '../helpers/wire';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One STATS request (type 3) on a fresh connection. */
async function statsOf(port: number): Promise<ServerStats> {
  const peer = await connectPeer(port);
  try {
    peer.write(frame(0, 3, 77));
    for (;;) {
      const reply = await peer.readFrame();
      if (reply.seq === 77 && reply.type === 3) return JSON.parse(reply.payload.toString()) as ServerStats;
    }
  } finally {
    peer.destroy();
  }
}

async function reply(peer: WirePeer, seq: number): Promise<string> {
  for (;;) {
    const got = await peer.readFrame();
    if (got.seq === seq) return got.payload.toString();
  }
}

function expectShape(stats: ServerStats): void {
  for (const key of ['connections', 'accepted', 'rejected', 'protocolErrors', 'opened', 'messagesIn', 'messagesOut', 'bytesIn', 'bytesOut', 'handlerErrors', 'requestsInFlight', 'unhandled', 'unmatched'] as const) {
    expect(typeof stats[key], key).toBe('number');
  }
  expect(Object.keys(stats.closed).sort()).toEqual([...closeReasonNames].sort());
  for (const h of [stats.handlerDuration, stats.batchWait]) {
    expect(h.counts).toHaveLength(h.buckets.length + 1);
    expect(h.counts.at(-1)).toBe(h.count);
    for (let i = 1; i < h.counts.length; i++) expect(h.counts[i]).toBeGreaterThanOrEqual(h.counts[i - 1]);
  }
  expect(typeof stats.topics).toBe('number');
  expect(typeof stats.subscriptions).toBe('number');
  expect(stats.loops.length).toBeGreaterThan(0);
  for (const loop of stats.loops) {
    for (const key of ['connections', 'accepted', 'rejected', 'protocolErrors', 'ringFull', 'backpressure']) expect(typeof loop[key], key).toBe('number');
  }
}

describe.each(engineCases())('stats() on $name', ({ options }) => {
  it('counts connections, messages, bytes, handler errors and durations, in-flight requests and close reasons', async () => {
    const fixture = await startFixture({ ...options, heartbeat: { interval: 1500, timeout: 1000 }, frameTimeout: 300 });
    onTestFinished(() => void fixture.stop());

    const a = await connectPeer(fixture.port);
    a.write(frame(0, 1, 1, 'hello'));
    expect(await reply(a, 1)).toBe('hello');
    a.write(frame(0, 17, 0, 'x')); // a push whose handler throws
    a.write(frame(0, 13, 2, '1200')); // a request in flight for 1.2 s (a stays below the heartbeat's 2.5 s)
    await sleep(200);
    const during = await statsOf(fixture.port);
    expectShape(during);
    // The slow request and the STATS request itself.
    expect(during.requestsInFlight).toBeGreaterThanOrEqual(2);
    expect(await reply(a, 2)).toBe('1200');

    const bad = await connectPeer(fixture.port);
    bad.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    const silent = await connectPeer(fixture.port); // never answers PING
    const partial = await connectPeer(fixture.port);
    partial.write(frame(0, 1, 3, 'hello').subarray(0, 5)); // never completes
    a.destroy();

    let stats = await statsOf(fixture.port);
    for (let i = 0; i < 100; i++) {
      const c = stats.closed;
      if (c.peer >= 1 && c.protocolError >= 1 && c.heartbeatTimeout >= 1 && c.frameTimeout >= 1 && stats.connections <= 1) break;
      await sleep(100);
      stats = await statsOf(fixture.port);
    }
    expectShape(stats);
    expect(stats.engine).toBe(options.engine);
    expect(stats.closed.peer).toBeGreaterThanOrEqual(1);
    expect(stats.closed.protocolError).toBe(1);
    expect(stats.closed.heartbeatTimeout).toBeGreaterThanOrEqual(1);
    expect(stats.closed.frameTimeout).toBe(1);
    expect(stats.opened).toBeGreaterThanOrEqual(6);
    expect(stats.accepted).toBeGreaterThanOrEqual(stats.opened);
    expect(stats.handlerErrors).toBe(1);
    // ECHO, the push, SLOW, the first STATS (12-byte header each).
    expect(stats.messagesIn).toBeGreaterThanOrEqual(4);
    expect(stats.bytesIn).toBeGreaterThanOrEqual(4 * 12 + 5 + 1 + 4);
    // ECHO's and SLOW's replies and the first STATS reply.
    expect(stats.messagesOut).toBeGreaterThanOrEqual(3);
    expect(stats.bytesOut).toBeGreaterThanOrEqual(3 * 12 + 5 + 4);
    expect(stats.handlerDuration.count).toBeGreaterThanOrEqual(4);
    // The 1.2 s handler lands above the 1 s bucket.
    const oneSecond = stats.handlerDuration.buckets.indexOf(1);
    expect(stats.handlerDuration.count - stats.handlerDuration.counts[oneSecond]).toBeGreaterThanOrEqual(1);
    expect(stats.handlerDuration.sum).toBeGreaterThanOrEqual(1.2);
    expect(stats.batchWait.count).toBeGreaterThan(0);
    for (const peer of [bad, silent, partial]) peer.destroy();
  }, 30_000);
});

describe.each(engineCases({ cluster: false }))('close reasons in process on $name', ({ options }) => {
  it('counts shutdown, server full and slow consumer closes', async () => {
    const server = createServer({ ...options, maxConnections: 2, maxFrame: 32 * 1024 * 1024, maxBufferedAmount: 1024 * 1024, highWaterMark: 1024, shutdownTimeout: 100 });
    server.handle(15, (payload) => Buffer.alloc(Number(payload.toString()), 0x61));
    const { port } = await server.listen();
    onTestFinished(() => server.close());

    const slow = await nonReader(port);
    slow.write(frame(0, 15, 1, String(16 * 1024 * 1024)));
    // The reader that never reads is closed once its queue passes 1 MiB (the kernel buffers take the first part).
    let stats = await server.stats();
    for (let i = 0; i < 100 && (stats.closed.slowConsumer === 0 || stats.connections > 0); i++) {
      await sleep(50);
      stats = await server.stats();
    }
    expect(stats.closed.slowConsumer).toBe(1);
    const stays = await connectPeer(port);
    stays.write(frame(0, 15, 1, String(600 * 1024))); // above the high-water mark, below the slow-consumer bound
    expect((await reply(stays, 1)).length).toBe(600 * 1024);
    const second = await connectPeer(port);
    // With two loops the accepts of two quick connects can happen in either
    // order, so the second is served before the third is tried.
    second.write(frame(0, 15, 2, '1'));
    expect(await reply(second, 2)).toBe('a');
    const third = await connectPeer(port); // over maxConnections: refused
    await third.waitClosed();
    stats = await server.stats();
    expect(stats.closed.serverFull).toBe(1);
    expect(stats.rejected).toBe(1);
    expect(stats.loops.reduce((sum, loop) => sum + loop.backpressure, 0)).toBeGreaterThanOrEqual(1);

    await server.close();
    stats = await server.stats();
    expect(stats.closed.shutdown).toBe(2);
    expect(stats.connections).toBe(0);
    stays.destroy();
    second.destroy();
  }, 30_000);
});

describe('bytes out without frames', () => {
  it('counts line messages once each (two engine writes per message)', async () => {
    const server = createServer({ engine: 'net', framing: 'line' });
    server.on('connection', (connection) => connection.on('message', (line: Buffer) => connection.write(line)));
    const { port } = await server.listen();
    onTestFinished(() => server.close());
    const socket = net.connect(port, '127.0.0.1');
    onTestFinished(() => void socket.destroy());
    let got = '';
    socket.on('data', (chunk) => (got += chunk));
    socket.write('one\ntwo\n');
    for (let i = 0; i < 100 && got !== 'one\ntwo\n'; i++) await sleep(20);
    const stats = await server.stats();
    expect(stats.messagesIn).toBe(2);
    expect(stats.bytesIn).toBe(8);
    expect(stats.messagesOut).toBe(2);
    expect(stats.bytesOut).toBe(8);
  });
});
