/**
 * The node:net engine driven through the Engine interface with a small echo
 * sink, against raw wire peers (docs/PROTOCOL.md sections 2-4).
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { createNetEngine } from '../../../src/engines/net/engine';
import type { Engine, EngineOptions, EngineSink } from '../../../src/engines/engine';
import { TYPE_CLOSE, TYPE_GOAWAY, TYPE_PING, TYPE_PONG, encodeLength, type Framing } from '../../../src/protocol/constants';
import { SweepTimer, setSharedTimer } from '../../../src/engines/net/timer';
import { connectPeer, frame, type WirePeer } from '../../helpers/wire';

interface Recorded {
  engine: Engine;
  port: number;
  opened: number[];
  messages: Array<{ id: number; type: number; payload: Buffer }>;
  ends: number[];
  drains: number[];
  closes: Map<number, { code: string; reason: string }>;
  /** Resolves with the close of the connection opened n-th (0-based). */
  closed(index: number, timeout?: number): Promise<{ code: string; reason: string }>;
}

const base: EngineOptions = {
  framing: 'frame',
  maxFrame: 1024 * 1024,
  threads: 1,
  workers: 1,
  highWaterMark: 64 * 1024,
  maxBufferedAmount: 8 * 1024 * 1024,
  heartbeatInterval: 0,
  heartbeatTimeout: 0,
  idleTimeout: 0,
  frameTimeout: 30_000,
  maxConnections: 0,
  allowHalfOpen: false,
  acceptMode: 'exclusive',
  nativeEcho: false,
  triggerMode: 'edge',
};

/** Starts a net engine whose sink echoes every message in its framing (unless `echo` is false). */
async function start(overrides: Partial<EngineOptions> = {}, echo = true): Promise<Recorded> {
  const options = { ...base, ...overrides };
  const waiters: Array<() => void> = [];
  const wake = (): void => {
    for (const w of waiters.splice(0)) w();
  };
  const record = {
    opened: [] as number[],
    messages: [] as Recorded['messages'],
    ends: [] as number[],
    drains: [] as number[],
    closes: new Map<number, { code: string; reason: string }>(),
  };
  let engine!: Engine;
  const sink: EngineSink = {
    open: (id) => {
      record.opened.push(id);
      wake();
    },
    message: (id, type, _flags, seq, payload) => {
      record.messages.push({ id, type, payload: Buffer.from(payload) });
      if (echo) engine.sendFrame(id, 1, type, seq, payload);
    },
    data: (id, payload) => {
      record.messages.push({ id, type: 0, payload: Buffer.from(payload) });
      if (!echo) return;
      if (options.framing === 'length') engine.write(id, encodeLength(payload));
      else if (options.framing === 'line') engine.write(id, Buffer.concat([payload, Buffer.from('\n')]));
      else engine.write(id, payload);
    },
    drain: (id) => {
      record.drains.push(id);
      wake();
    },
    end: (id) => {
      record.ends.push(id);
      // The server's policy (src/server/connection.ts): without allowHalfOpen, end once the replies are out.
      if (!options.allowHalfOpen) engine.end(id);
      wake();
    },
    close: (id, code, reason) => {
      expect(record.closes.has(id), 'close reported once').toBe(false);
      record.closes.set(id, { code, reason });
      wake();
    },
    error: () => {},
    batchEnd: () => engine.flush(),
    requestClose: () => {},
  };
  engine = createNetEngine(options, sink);
  onTestFinished(() => engine.shutdown());
  const { port } = await engine.listen('127.0.0.1', 0, 511);
  const closed = (index: number, timeout = 5000): Promise<{ code: string; reason: string }> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`connection ${index} did not close`)), timeout);
      const check = (): void => {
        const id = record.opened[index];
        const entry = id === undefined ? undefined : record.closes.get(id);
        if (entry) {
          clearTimeout(timer);
          resolve(entry);
        } else waiters.push(check);
      };
      check();
    });
  return { engine, port, ...record, closed };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function expectEcho(peer: WirePeer, type = 1, payload = 'ping'): Promise<void> {
  peer.write(frame(0, type, 77, payload));
  const reply = await peer.readFrame();
  expect(reply).toMatchObject({ flags: 1, type, seq: 77 });
  expect(reply.payload.toString()).toBe(payload);
}

/** Reads the CLOSE frame and waits for the server's FIN. */
async function expectClose(peer: WirePeer, reason: string): Promise<void> {
  const close = await peer.readFrame();
  expect(close.type).toBe(TYPE_CLOSE);
  expect(close.payload.toString()).toBe(reason);
  await peer.waitClosed();
}

describe('net engine: framings', () => {
  it('echoes frames, whole, batched and split byte by byte', async () => {
    const server = await start();
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat([frame(0, 1, 1, 'a'), frame(0, 5, 2, 'bb')]));
    const split = frame(0, 9, 3, 'split');
    for (const byte of split) peer.write(Buffer.of(byte));
    const replies = await peer.readFrames(3);
    expect(replies.map((f) => [f.type, f.seq, f.payload.toString()])).toEqual([[1, 1, 'a'], [5, 2, 'bb'], [9, 3, 'split']]);
  });

  it.each<[Framing, Buffer, Buffer]>([
    ['length', Buffer.concat([encodeLength(Buffer.from('one')), encodeLength(Buffer.from('two'))]), Buffer.concat([encodeLength(Buffer.from('one')), encodeLength(Buffer.from('two'))])],
    ['line', Buffer.from('one\r\ntwo\n'), Buffer.from('one\ntwo\n')],
    ['raw', Buffer.from('raw bytes'), Buffer.from('raw bytes')],
  ])('echoes %s framing', async (framing, sent, expected) => {
    const server = await start({ framing });
    const peer = await connectPeer(server.port);
    peer.write(sent);
    expect((await peer.readBytes(expected.length)).equals(expected)).toBe(true);
  });
});

describe('net engine: control frames and protocol errors', () => {
  it('answers PING with the exact PONG bytes, without reaching the sink', async () => {
    const server = await start();
    const peer = await connectPeer(server.port);
    peer.write(Buffer.from('EB00FF010000000000000001', 'hex'));
    expect((await peer.readBytes(12)).toString('hex')).toBe('eb00ff020000000000000001');
    peer.write(frame(0, TYPE_PONG, 5));
    await expectEcho(peer);
    expect(server.messages.map((m) => m.type)).toEqual([1]);
  });

  it('closes on the peer CLOSE with ECLOSED_BY_PEER and its reason', async () => {
    const server = await start();
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat([frame(0, TYPE_CLOSE, 0, 'bye now'), frame(0, 1, 1, 'after')]));
    await peer.waitClosed();
    expect(await server.closed(0)).toEqual({ code: 'ECLOSED_BY_PEER', reason: 'bye now' });
    expect(server.messages).toHaveLength(0);
  });

  it.each<[string, Buffer, string, string]>([
    ['bad magic', Buffer.from('00'.repeat(12), 'hex'), 'EBAD_MAGIC', 'protocol error: bad magic'],
    ['reserved flags', frame(0x04, 1, 1), 'EBAD_FLAGS', 'protocol error: reserved flags'],
    ['type 0', frame(0, 0, 1), 'EBAD_TYPE', 'protocol error: invalid type'],
    ['unknown control', frame(0, 0xff09, 1), 'EUNKNOWN_CONTROL', 'protocol error: unknown control type'],
    ['large ping', frame(0, TYPE_PING, 1, Buffer.alloc(65)), 'EPING_TOO_LARGE', 'protocol error: ping payload too large'],
    ['goaway', frame(0, TYPE_GOAWAY, 0), 'EUNEXPECTED_GOAWAY', 'protocol error: goaway from client'],
    ['oversized', frame(0, 1, 1, Buffer.alloc(2000)), 'EFRAME_TOO_LARGE', 'frame too large'],
  ])('%s closes only the offender', async (_name, bad, code, reason) => {
    const server = await start({ maxFrame: 1024 });
    const good = await connectPeer(server.port);
    const offender = await connectPeer(server.port);
    offender.write(Buffer.concat([bad, frame(0, 1, 1, 'never delivered')]));
    await expectClose(offender, reason);
    expect(await server.closed(1)).toEqual({ code, reason });
    await expectEcho(good);
    expect(server.messages.filter((m) => m.id === server.opened[1])).toHaveLength(0);
    expect((await server.engine.stats()).protocolErrors).toBe(1);
  });
});

describe('net engine: heartbeats and deadlines', () => {
  it('sends PING after the interval, then CLOSE after the timeout', async () => {
    const server = await start({ heartbeatInterval: 150, heartbeatTimeout: 150 });
    const began = Date.now();
    const peer = await connectPeer(server.port);
    const ping = await peer.readFrame();
    expect(ping.type).toBe(TYPE_PING);
    expect(Date.now() - began).toBeGreaterThanOrEqual(140);
    await expectClose(peer, 'heartbeat timeout');
    expect(Date.now() - began).toBeGreaterThanOrEqual(290);
    expect((await server.closed(0)).code).toBe('EHEARTBEAT_TIMEOUT');
  });

  it('keeps a peer that answers PING alive', async () => {
    const server = await start({ heartbeatInterval: 100, heartbeatTimeout: 100 });
    const peer = await connectPeer(server.port);
    for (let i = 0; i < 3; i++) {
      const ping = await peer.readFrame();
      expect(ping.type).toBe(TYPE_PING);
      peer.write(frame(0, TYPE_PONG, ping.seq, ping.payload));
    }
    await expectEcho(peer);
    expect(server.closes.size).toBe(0);
  });

  it.each<[Framing, boolean]>([['raw', false], ['frame', true]])('closes an idle %s connection', async (framing, sendsClose) => {
    const server = await start({ framing, idleTimeout: 200 });
    const peer = await connectPeer(server.port);
    if (sendsClose) await expectClose(peer, 'idle timeout');
    else expect((await peer.waitClosed()).length).toBe(0);
    expect(await server.closed(0)).toEqual({ code: 'EIDLE_TIMEOUT', reason: 'idle timeout' });
  });

  it('closes a peer that dribbles a frame slower than frameTimeout', async () => {
    const server = await start({ frameTimeout: 250 });
    const peer = await connectPeer(server.port);
    // Whole frames with long pauses between them are fine.
    await expectEcho(peer);
    await sleep(300);
    await expectEcho(peer);
    const slow = frame(0, 1, 9, 'slowly');
    for (let i = 0; i < slow.length && !peer.ended; i++) {
      peer.write(slow.subarray(i, i + 1));
      await sleep(40);
    }
    await expectClose(peer, 'frame timeout');
    expect((await server.closed(0)).code).toBe('EFRAME_TIMEOUT');
    expect(server.messages).toHaveLength(2);
  });

  it('runs deadlines on the swappable shared timer', async () => {
    let now = 1_000_000;
    const manual = new SweepTimer({ automatic: false, now: () => now });
    setSharedTimer(manual);
    onTestFinished(() => setSharedTimer(undefined));
    const server = await start({ heartbeatInterval: 60_000, heartbeatTimeout: 10_000 });
    const peer = await connectPeer(server.port);
    await expectEcho(peer);
    now += 59_000;
    manual.tick();
    await expectEcho(peer); // not silent for the interval yet; the echo itself is life
    now += 60_000;
    manual.tick();
    expect((await peer.readFrame()).type).toBe(TYPE_PING);
    now += 10_000;
    manual.tick();
    await expectClose(peer, 'heartbeat timeout');
    expect(manual.size).toBe(1);
    await server.engine.shutdown();
    expect(manual.size).toBe(0);
  });
});

describe('net engine: bounded timer work (issue 17)', () => {
  it('PINGs 300 due connections a slice per callback, every one of them in the end', async () => {
    let now = 1_000_000;
    const manual = new SweepTimer({ automatic: false, now: () => now });
    setSharedTimer(manual);
    onTestFinished(() => setSharedTimer(undefined));
    const server = await start({ heartbeatInterval: 60_000, heartbeatTimeout: 60_000 });
    const peers: WirePeer[] = [];
    for (let i = 0; i < 300; i++) peers.push(await connectPeer(server.port));
    onTestFinished(() => {
      for (const peer of peers) peer.destroy();
    });
    while (server.opened.length < 300) await new Promise((resolve) => setTimeout(resolve, 10));
    now += 61_000;
    // Writes made inside the timer's own callback: a bounded slice, not all 300.
    const write = net.Socket.prototype.write;
    let writes = 0;
    net.Socket.prototype.write = function counted(this: net.Socket, ...args: unknown[]) {
      writes++;
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof write;
    try {
      manual.tick();
    } finally {
      net.Socket.prototype.write = write;
    }
    expect(writes).toBeGreaterThan(0);
    expect(writes).toBeLessThanOrEqual(64);
    // The rest follows in later callbacks, after I/O.
    const pings = await Promise.all(peers.map((peer) => peer.readFrame(5000)));
    for (const ping of pings) expect(ping.type).toBe(TYPE_PING);
    await server.engine.shutdown();
  });
});

describe('net engine: limits', () => {
  it('refuses connections over maxConnections with CLOSE "server full"', async () => {
    const server = await start({ maxConnections: 2 });
    const first = await connectPeer(server.port);
    const second = await connectPeer(server.port);
    const third = await connectPeer(server.port);
    await expectClose(third, 'server full');
    await expectEcho(first);
    await expectEcho(second);
    expect(server.opened).toHaveLength(2);
    expect(await server.engine.stats()).toMatchObject({ engine: 'net', connections: 2, accepted: 2, rejected: 1 });
  });

  it('reports backpressure and drain', async () => {
    const server = await start({ framing: 'raw', highWaterMark: 16 * 1024, maxBufferedAmount: 64 * 1024 * 1024 }, false);
    const peer = await connectPeer(server.port);
    peer.socket.pause();
    await sleep(20);
    const id = server.opened[0]!;
    const chunk = Buffer.alloc(256 * 1024);
    let written = 0;
    while (server.engine.write(id, chunk)) {
      written += chunk.length;
      expect(written).toBeLessThan(64 * 1024 * 1024);
      await sleep(1);
    }
    expect(server.engine.bufferedAmount(id)).toBeGreaterThan(16 * 1024);
    const drained = new Promise<void>((resolve) => {
      const check = setInterval(() => server.drains.includes(id) && (clearInterval(check), resolve()), 5);
    });
    peer.socket.resume();
    await drained;
    expect(server.closes.size).toBe(0);
  });

  it('closes a slow consumer without disturbing another connection', async () => {
    const server = await start({ highWaterMark: 64 * 1024, maxBufferedAmount: 256 * 1024 });
    const slow = await connectPeer(server.port);
    slow.socket.pause();
    const other = await connectPeer(server.port);
    await expectEcho(other);
    const id = server.opened[0]!;
    const payload = Buffer.alloc(128 * 1024);
    for (let i = 0; i < 400 && !server.closes.has(id); i++) {
      server.engine.sendFrame(id, 0, 7, 0, payload);
      await sleep(1);
    }
    expect(await server.closed(0)).toEqual({ code: 'ESLOW_CONSUMER', reason: 'slow consumer' });
    await expectEcho(other);
    expect((await server.engine.stats()).protocolErrors).toBe(1);
  });

  it('broadcasts to 50 connections exactly once each', async () => {
    const server = await start();
    const peers = await Promise.all(Array.from({ length: 50 }, () => connectPeer(server.port)));
    await expect.poll(() => server.opened.length).toBe(50);
    server.engine.broadcast(frame(0, 7, 0, 'to all'));
    for (const peer of peers) {
      const pushed = await peer.readFrame();
      expect(pushed).toMatchObject({ type: 7, seq: 0 });
      expect(pushed.payload.toString()).toBe('to all');
    }
    // The next frame on every connection is its echo: nothing was delivered twice.
    await Promise.all(peers.map((peer) => expectEcho(peer)));
  });
});

describe('net engine: small frames coalesced, one write per batch', () => {
  /** Counts socket.write calls made on the server's sockets (not the test's peers). */
  function countServerWrites(peers: WirePeer[]): { count: () => number } {
    const original = net.Socket.prototype.write;
    let count = 0;
    const spy = vi.spyOn(net.Socket.prototype, 'write').mockImplementation(function (this: net.Socket, ...args: unknown[]) {
      if (!peers.some((p) => p.socket === this)) count++;
      return (original as (...a: unknown[]) => boolean).apply(this, args);
    });
    onTestFinished(() => spy.mockRestore());
    return { count: () => count };
  }

  it('answers 32 pipelined requests and a PING of one read with one socket write, in order', async () => {
    const server = await start();
    const peer = await connectPeer(server.port);
    await expectEcho(peer); // accepted and served once before counting
    const writes = countServerWrites([peer]);
    const requests = Array.from({ length: 32 }, (_, i) => frame(0, 1, i + 1, `m${i}`));
    requests.splice(10, 0, frame(0, TYPE_PING, 99, 'p'));
    const before = server.messages.length;
    peer.write(Buffer.concat(requests));
    const replies = await peer.readFrames(33);
    expect(replies.map((f) => `${f.type}/${f.seq}`)).toEqual(requests.map((r) => `${r.readUInt16BE(2) === TYPE_PING ? TYPE_PONG : 1}/${r.readUInt32BE(8)}`));
    expect(server.messages.length - before).toBe(32);
    // One write per 'data' event; loopback delivers the 33 frames (2.5 KB) in one or, rarely, a few reads.
    expect(writes.count()).toBeLessThanOrEqual(3);
  });

  it('coalesced small frames count toward backpressure; drain follows; order kept', async () => {
    const server = await start({ highWaterMark: 16 * 1024, maxBufferedAmount: 64 * 1024 * 1024 }, false);
    const peer = await connectPeer(server.port);
    peer.socket.pause();
    await expect.poll(() => server.opened.length).toBe(1);
    const id = server.opened[0]!;
    const payload = Buffer.alloc(1000, 7);
    let sent = 0;
    // All in one tick: nothing has reached the socket yet, so only the coalescing buffer can say "full".
    while (server.engine.sendFrame(id, 0, 7, sent + 1, payload)) sent++;
    sent++;
    expect(sent).toBeLessThan(20);
    expect(server.engine.bufferedAmount(id)).toBeGreaterThanOrEqual(16 * 1024);
    peer.socket.resume();
    await expect.poll(() => server.drains.includes(id)).toBe(true);
    const frames = await peer.readFrames(sent);
    expect(frames.map((f) => f.seq)).toEqual(Array.from({ length: sent }, (_, i) => i + 1));
    expect(server.closes.size).toBe(0);
  });

  it('replies queued before close() leave before the CLOSE frame', async () => {
    const server = await start({}, false);
    const peer = await connectPeer(server.port);
    await expect.poll(() => server.opened.length).toBe(1);
    const id = server.opened[0]!;
    for (let seq = 1; seq <= 3; seq++) server.engine.sendFrame(id, 1, 1, seq, Buffer.from(`r${seq}`));
    server.engine.close(id, 'ESHUTDOWN');
    const frames = await peer.readFrames(4);
    expect(frames.map((f) => [f.type, f.seq])).toEqual([[1, 1], [1, 2], [1, 3], [TYPE_CLOSE, 0]]);
    expect(frames[3]!.payload.toString()).toBe('shutdown');
    await peer.waitClosed();
  });
});

describe('net engine: closing', () => {
  it('half-close with allowHalfOpen: the server can still write, then ends', async () => {
    const server = await start({ allowHalfOpen: true, framing: 'raw' }, false);
    const peer = await connectPeer(server.port);
    peer.socket.end();
    await expect.poll(() => server.ends.length).toBe(1);
    const id = server.opened[0]!;
    server.engine.write(id, Buffer.from('still here'));
    expect((await peer.readBytes(10)).toString()).toBe('still here');
    server.engine.end(id);
    expect(await server.closed(0)).toEqual({ code: 'OK', reason: '' });
  });

  it('without allowHalfOpen the server ends its side after the peer FIN', async () => {
    const server = await start({ framing: 'raw' });
    const peer = await connectPeer(server.port);
    peer.write('last words');
    peer.socket.end();
    expect((await peer.readBytes(10)).toString()).toBe('last words');
    expect(await server.closed(0)).toEqual({ code: 'OK', reason: '' });
    expect(server.ends).toHaveLength(1);
  });

  it('close(id, code) sends CLOSE with the standard reason; destroy() is immediate', async () => {
    const server = await start();
    const a = await connectPeer(server.port);
    const b = await connectPeer(server.port);
    await expect.poll(() => server.opened.length).toBe(2);
    server.engine.close(server.opened[0]!, 'ESHUTDOWN');
    server.engine.flush();
    await expectClose(a, 'shutdown');
    expect(await server.closed(0)).toEqual({ code: 'ESHUTDOWN', reason: 'shutdown' });
    server.engine.destroy(server.opened[1]!);
    await b.waitClosed();
    expect((await server.closed(1)).code).toBe('EDESTROYED');
  });

  it('reports listen errors with the errno code; stopAccepting keeps open connections', async () => {
    const server = await start();
    const other = createNetEngine(base, { ...({} as EngineSink), batchEnd: () => {} });
    onTestFinished(() => other.shutdown());
    await expect(other.listen('127.0.0.1', server.port, 511)).rejects.toMatchObject({ code: 'EADDRINUSE' });
    const peer = await connectPeer(server.port);
    await server.engine.stopAccepting();
    await expectEcho(peer);
    await expect(connectPeer(server.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
