/**
 * The native engine driven through the Engine interface with a tiny echo sink,
 * raw framing, over several loop/trigger/accept configurations; plus a few
 * checks straight on the addon (stale ids).
 */
import crypto from 'node:crypto';
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../../src/engines/native/binding';
import type { Engine, EngineOptions, EngineSink } from '../../../src/engines/engine';
import { createNativeEngine } from '../../../src/engines/native/engine';
import { FLAG_RESPONSE, TYPE_CLOSE, TYPE_PING, TYPE_PONG } from '../../../src/protocol/constants';
import { connectPeer, frame, type WirePeer } from '../../helpers/wire';

const addon = tryLoadNative();
if (!addon) throw new Error('the native addon must be built for this suite (npx node-gyp build)');

const base: EngineOptions = {
  framing: 'raw',
  maxFrame: 1024 * 1024,
  threads: 1,
  workers: 1,
  highWaterMark: 256 * 1024,
  maxBufferedAmount: 64 * 1024 * 1024,
  heartbeatInterval: 0,
  heartbeatTimeout: 0,
  idleTimeout: 0,
  frameTimeout: 30_000,
  maxConnections: 0,
  allowHalfOpen: false,
  acceptMode: 'reuseport',
  nativeEcho: false,
  triggerMode: 'edge',
};

type Event = { kind: 'open' | 'data' | 'message' | 'end' | 'close' | 'drain'; id: number; bytes?: number; code?: string };

interface Started {
  engine: Engine;
  port: number;
  events: Event[];
  closes: Map<number, { code: string; reason: string }>;
  /** Resolves when `ready()` holds (checked after every batch). */
  until(ready: () => boolean, what: string, timeout?: number): Promise<void>;
}

interface Behaviour {
  /** Default: echo every chunk. */
  data?: (engine: Engine, id: number, payload: Buffer) => void;
  open?: (engine: Engine, id: number) => void;
  /** Default: answer with the same type, seq and payload as a RESPONSE. */
  message?: (engine: Engine, id: number, type: number, seq: number, payload: Buffer) => void;
  end?: (engine: Engine, id: number) => void;
}

async function start(overrides: Partial<EngineOptions>, behaviour: Behaviour = {}, using = addon!): Promise<Started> {
  const events: Event[] = [];
  const closes = new Map<number, { code: string; reason: string }>();
  const waiters = new Set<() => void>();
  let engine!: Engine;
  const sink: EngineSink = {
    open: (id) => {
      events.push({ kind: 'open', id });
      behaviour.open?.(engine, id);
    },
    message: (id, type, _flags, seq, payload) => {
      events.push({ kind: 'message', id, bytes: payload.length });
      if (behaviour.message) behaviour.message(engine, id, type, seq, payload);
      else engine.sendFrame(id, FLAG_RESPONSE, type, seq, payload);
    },
    data: (id, payload) => {
      events.push({ kind: 'data', id, bytes: payload.length });
      if (behaviour.data) behaviour.data(engine, id, payload);
      else engine.write(id, payload);
    },
    drain: (id) => events.push({ kind: 'drain', id }),
    end: (id) => {
      events.push({ kind: 'end', id });
      // The server's policy (src/server/connection.ts): without allowHalfOpen, end once the replies are out.
      if (behaviour.end) behaviour.end(engine, id);
      else if (!(overrides.allowHalfOpen ?? base.allowHalfOpen)) engine.end(id);
    },
    close: (id, code, reason) => {
      events.push({ kind: 'close', id, code });
      closes.set(id, { code, reason });
    },
    error: () => undefined,
    batchEnd: () => {
      for (const wake of [...waiters]) wake();
    },
    requestClose: () => undefined,
  };
  engine = createNativeEngine(using, { ...base, ...overrides }, sink);
  onTestFinished(() => engine.shutdown());
  const { port } = await engine.listen('127.0.0.1', 0, 511);
  const until = (ready: () => boolean, what: string, timeout = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (!ready()) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}`));
      }, timeout);
      waiters.add(check);
      check();
    });
  return { engine, port, events, closes, until };
}

function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  onTestFinished(() => {
    socket.destroy();
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Reads until `length` bytes arrived; resolves with their sha256 (and the bytes if small). */
function receive(socket: net.Socket, length: number, timeout = 20_000): Promise<{ hash: string; bytes: Buffer }> {
  const hash = crypto.createHash('sha256');
  const keep: Buffer[] = [];
  let got = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`received ${got} of ${length} bytes`)), timeout);
    socket.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      if (length <= 1024 * 1024) keep.push(chunk);
      got += chunk.length;
      if (got >= length) {
        clearTimeout(timer);
        resolve({ hash: hash.digest('hex'), bytes: Buffer.concat(keep) });
      }
    });
  });
}

function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve();
    else socket.once('close', () => resolve());
  });
}

const configurations = [
  { name: '1 thread, edge, reuseport', threads: 1, triggerMode: 'edge', acceptMode: 'reuseport' },
  { name: '2 threads, edge, exclusive', threads: 2, triggerMode: 'edge', acceptMode: 'exclusive' },
  { name: '2 threads, level, reuseport', threads: 2, triggerMode: 'level', acceptMode: 'reuseport' },
  { name: 'loop on the JS thread, edge', threads: 0, triggerMode: 'edge', acceptMode: 'reuseport' },
] as const;

describe.each(configurations)('native engine ($name)', (configuration) => {
  const options: Partial<EngineOptions> = {
    threads: configuration.threads,
    triggerMode: configuration.triggerMode,
    acceptMode: configuration.acceptMode,
  };

  it('echoes 16 MiB through one connection, hashed both ways', async () => {
    const server = await start(options);
    const socket = await connect(server.port);
    const data = crypto.randomBytes(16 * 1024 * 1024);
    const expected = crypto.createHash('sha256').update(data).digest('hex');
    const received = receive(socket, data.length);
    for (let at = 0; at < data.length; at += 256 * 1024) socket.write(data.subarray(at, at + 256 * 1024));
    expect((await received).hash).toBe(expected);
  });

  it('echoes on 200 concurrent connections', async () => {
    const server = await start(options);
    const sockets = await Promise.all(Array.from({ length: 200 }, () => connect(server.port)));
    await Promise.all(
      sockets.map(async (socket, index) => {
        const message = Buffer.from(`connection ${index} `.repeat(50));
        const received = receive(socket, message.length);
        socket.write(message);
        expect((await received).bytes.equals(message)).toBe(true);
      }),
    );
    const stats = await server.engine.stats();
    expect(stats.accepted).toBe(200);
    expect(stats.loops).toHaveLength(Math.max(1, configuration.threads));  // threads: 0 is one loop
  });

  it('keeps order through bursts of tiny writes both ways', async () => {
    const server = await start(options, {
      // Echo one byte per write: thousands of tiny commands in one tick.
      data: (engine, id, payload) => {
        for (let i = 0; i < payload.length; i++) engine.write(id, payload.subarray(i, i + 1));
      },
    });
    const socket = await connect(server.port);
    const data = Buffer.from(Array.from({ length: 20_000 }, (_, i) => i % 251));
    const received = receive(socket, data.length);
    for (let i = 0; i < data.length; i += 3) socket.write(data.subarray(i, i + 3));
    expect((await received).bytes.equals(data)).toBe(true);
  });

  it('delivers data before end and close when the peer sends data then FIN', async () => {
    const server = await start({ ...options, allowHalfOpen: false });
    const socket = await connect(server.port);
    const echoed = receive(socket, 5);
    socket.end('hello');
    expect((await echoed).bytes.toString()).toBe('hello');
    await closed(socket);
    await server.until(() => server.closes.size === 1, 'close');
    const kinds = server.events.map((event) => event.kind);
    expect(kinds.filter((kind) => kind === 'data').length).toBeGreaterThan(0);
    expect(kinds.lastIndexOf('data')).toBeLessThan(kinds.indexOf('end'));
    expect(kinds.indexOf('end')).toBeLessThan(kinds.indexOf('close'));
    expect([...server.closes.values()][0].code).toBe('OK');
  });

  it('echoes every byte of 300 KB and then reports END and CLOSE when the peer half-closes right after it', async () => {
    // Under the shrunken bounds (engine.native.tiny.test.ts) every read of
    // this transfer pauses: the FIN must still be read after the last pause.
    const server = await start({ ...options, allowHalfOpen: false });
    const socket = await connect(server.port);
    const data = crypto.randomBytes(300 * 1024);
    const received = receive(socket, data.length);
    socket.end(data);
    expect((await received).hash).toBe(crypto.createHash('sha256').update(data).digest('hex'));
    await closed(socket);
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0].code).toBe('OK');
    expect(server.events.filter((event) => event.kind === 'end')).toHaveLength(1);
  });

  it('keeps writing after the peer half-closed when allowHalfOpen is true', async () => {
    const server = await start(
      { ...options, allowHalfOpen: true },
      {
        data: () => undefined,
        end: (engine, id) => {
          engine.write(id, Buffer.from('after your FIN'));
          engine.end(id);
        },
      },
    );
    const socket = await connect(server.port);
    const reply = receive(socket, 14);
    socket.end('bye');
    expect((await reply).bytes.toString()).toBe('after your FIN');
    await closed(socket);
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0].code).toBe('OK');
  });

  it('reports a client reset mid-transfer', async () => {
    const server = await start(options, {
      // Answer every chunk with 1 MiB: the client stops reading and resets.
      data: (engine, id) => engine.write(id, Buffer.alloc(1024 * 1024, 7)),
    });
    const socket = await connect(server.port);
    socket.pause();
    socket.write('go');
    await server.until(() => server.events.some((event) => event.kind === 'data'), 'data');
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.resetAndDestroy();
    await server.until(() => server.closes.size === 1, 'close');
    expect(['ECONNRESET', 'EPIPE']).toContain([...server.closes.values()][0].code);
  });

  it('closes a slow reader at the hard limit while another connection keeps working', async () => {
    const server = await start(
      { ...options, highWaterMark: 64 * 1024, maxBufferedAmount: 1024 * 1024 },
      {
        data: (engine, id, payload) => {
          if (payload.toString() !== 'flood') return void engine.write(id, payload);
          const chunk = Buffer.alloc(64 * 1024, 1);
          // Far more than socket buffers + maxBufferedAmount hold.
          for (let i = 0; i < 256; i++) engine.write(id, chunk);
        },
      },
    );
    const slow = await connect(server.port);
    slow.pause();
    const fast = await connect(server.port);
    slow.write('flood');
    await server.until(() => [...server.closes.values()].some((close) => close.code === 'ESLOW_CONSUMER'), 'ESLOW_CONSUMER');
    const message = Buffer.from('still here');
    const echoed = receive(fast, message.length);
    fast.write(message);
    expect((await echoed).bytes.equals(message)).toBe(true);
    expect(server.closes.size).toBe(1);
    expect((await server.engine.stats()).protocolErrors).toBe(1);
  });

  it('loses no byte when JS blocks for a second under load', async () => {
    let blocked = false;
    const server = await start(options, {
      data: (engine, id, payload) => {
        if (!blocked) {
          blocked = true;
          const until = Date.now() + 1000;
          while (Date.now() < until) {
            // The loops keep reading until their rings fill, then TCP pushes back.
          }
        }
        engine.write(id, payload);
      },
    });
    const sockets = await Promise.all(Array.from({ length: 8 }, () => connect(server.port)));
    await Promise.all(
      sockets.map(async (socket) => {
        const data = crypto.randomBytes(2 * 1024 * 1024);
        const received = receive(socket, data.length);
        socket.write(data);
        expect((await received).hash).toBe(crypto.createHash('sha256').update(data).digest('hex'));
      }),
    );
    expect(blocked).toBe(true);
  });
});

describe('native engine ids', () => {
  interface RawRecord {
    kind: number;
    slot: number;
    generation: number;
    text: string;
  }
  const OPEN = 1;
  const CLOSE = 7;

  /** The addon's Engine with raw framing, its records decoded (docs/internals.md "Batches"). */
  function rawEngine(options: Record<string, unknown> = {}) {
    const records: RawRecord[] = [];
    let wake: (() => void) | undefined;
    const engine = new addon!.Engine({ threads: 1, framing: 3, ...options }, (_loop, batch, count) => {
      const view = new DataView(batch);
      for (let i = 0; i < count; i++) {
        const at = i * 32;
        const offset = count * 32 + view.getUint32(at + 16, true);
        records.push({
          kind: view.getUint8(at),
          slot: view.getUint32(at + 4, true),
          generation: view.getUint32(at + 8, true),
          text: Buffer.from(batch, offset, view.getUint32(at + 20, true)).toString(),
        });
      }
      wake?.();
    });
    onTestFinished(() => engine.stop());
    const port = engine.listen('127.0.0.1', 0, 2048);
    const until = async (ready: () => boolean, timeout = 10_000): Promise<void> => {
      const deadline = Date.now() + timeout;
      while (!ready()) {
        if (Date.now() > deadline) throw new Error('timed out');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 20);
        });
      }
    };
    const count = (kind: number): number => records.filter((record) => record.kind === kind).length;
    const opened = (n: number): RawRecord => records.filter((record) => record.kind === OPEN)[n - 1];
    const command = (op: number, slot: number, generation: number, payload = Buffer.alloc(0)): Buffer => {
      const bytes = Buffer.alloc(16 + payload.length);
      bytes[0] = op;
      bytes.writeUInt32LE(slot, 4);
      bytes.writeUInt32LE(generation, 8);
      bytes.writeUInt32LE(payload.length, 12);
      payload.copy(bytes, 16);
      return bytes;
    };
    return { engine, port, records, until, count, opened, command };
  }

  it('ignores a command for a stale generation of a reused slot, and reuses the oldest free slot', async () => {
    const { engine, port, until, count, opened, command } = rawEngine();
    const first = await connect(port);
    await until(() => count(OPEN) === 1);
    const old = opened(1);
    first.resetAndDestroy(); // RST: closes natively (a FIN would wait for JS's END with allowHalfOpen=false)
    await until(() => count(CLOSE) === 1);
    // A slot waits in quarantine until more than 1,024 others are free: open
    // and reset 1,100 more, then the next connection gets the oldest free slot.
    const burst = await Promise.all(Array.from({ length: 1100 }, () => connect(port)));
    await until(() => count(OPEN) === 1101);
    expect(new Set(Array.from({ length: 1100 }, (_, i) => opened(i + 2).slot)).has(old.slot)).toBe(false);
    for (const socket of burst) socket.resetAndDestroy();
    await until(() => count(CLOSE) === 1101);
    const second = await connect(port);
    await until(() => count(OPEN) === 1102);
    const reused = opened(1102);
    expect(reused.slot).toBe(old.slot);
    expect(reused.generation).not.toBe(old.generation);
    // Stale WRITE and DESTROY must not reach the new connection; then a fresh WRITE does.
    const block = Buffer.concat([
      command(1, old.slot, old.generation, Buffer.from('stale')),
      command(3, old.slot, old.generation),
      command(1, reused.slot, reused.generation, Buffer.from('fresh')),
    ]);
    expect(engine.submit(0, block, block.length)).toBe(true);
    const got = await receive(second, 5);
    expect(got.bytes.toString()).toBe('fresh');
    expect(count(CLOSE)).toBe(1101);
  });

  it('gives the memory of a burst back: after 3,000 connections close, a loop holds only the live ones', async () => {
    const { engine, port, until, count, opened, command } = rawEngine();
    const burst = await Promise.all(Array.from({ length: 3000 }, () => connect(port)));
    await until(() => count(OPEN) === 3000);
    const slots = (): number => engine.stats().loops[0].slots;
    expect(slots()).toBe(3000);
    for (const socket of burst) socket.resetAndDestroy();
    await until(() => count(CLOSE) === 3000);
    const survivor = await connect(port);
    await until(() => count(OPEN) === 3001);
    expect(slots()).toBe(1);
    // The broadcast (which walks the live connections only) still reaches it.
    expect(engine.broadcast(Buffer.from('to all'))).toBe(true);
    const last = opened(3001);
    const block = command(1, last.slot, last.generation, Buffer.from('!'));
    engine.submit(0, block, block.length);
    expect((await receive(survivor, 7)).bytes.toString()).toBe('to all!');
  });

  it('never lets a stale id address a new client, even when one hot slot would wrap its generation', async () => {
    // 2-bit generations (hidden test option): a slot reused newest-first
    // would come back to the stale id's generation on the 4th reuse.
    const { engine, port, until, count, opened, command } = rawEngine({ debugGenerationBits: 2 });
    const first = await connect(port);
    await until(() => count(OPEN) === 1);
    const stale = opened(1);
    first.resetAndDestroy();
    await until(() => count(CLOSE) === 1);
    for (let i = 2; i <= 41; i++) {
      const client = await connect(port);
      await until(() => count(OPEN) === i);
      const current = opened(i);
      const block = Buffer.concat([
        command(1, stale.slot, stale.generation, Buffer.from('stale')),
        command(1, current.slot, current.generation, Buffer.from('fresh')),
      ]);
      expect(engine.submit(0, block, block.length)).toBe(true);
      const got = await receive(client, 5);
      expect(got.bytes.toString(), `connection ${i} (slot ${current.slot}, generation ${current.generation})`).toBe('fresh');
      client.resetAndDestroy();
      await until(() => count(CLOSE) === i);
    }
  });
});

describe('native engine, frame framing', () => {
  const framed: Partial<EngineOptions> = { framing: 'frame' };

  it('answers PING in the loop while JS is blocked', async () => {
    const server = await start(framed, {
      message: (engine, id, type, seq, payload) => {
        const until = Date.now() + 500;
        while (Date.now() < until) {
          // JS busy: the PONG must not wait for it.
        }
        engine.sendFrame(id, FLAG_RESPONSE, type, seq, payload);
      },
    });
    const peer = await connectPeer(server.port);
    // One segment: the loop decodes both, hands the request to JS and answers
    // the PING itself while JS is still busy with the request.
    peer.write(Buffer.concat([frame(0, 9, 1, 'slow'), frame(0, TYPE_PING, 77, 'hi')]));
    const [first, second] = await peer.readFrames(2);
    expect(first).toMatchObject({ type: TYPE_PONG, seq: 77, flags: 0 });
    expect(first.payload.toString()).toBe('hi');
    expect(second).toMatchObject({ type: 9, seq: 1, flags: FLAG_RESPONSE });
  });

  it('closes on a protocol error with CLOSE and never delivers the bytes after it', async () => {
    const server = await start(framed);
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat([frame(0, 5, 1, 'ok'), Buffer.from([0x00, 1, 2, 3]), frame(0, 5, 2, 'never')]));
    // The loop closes before JS could answer the first frame: only CLOSE arrives.
    const close = await peer.readFrame();
    expect(close.type).toBe(TYPE_CLOSE);
    expect(close.payload.toString()).toBe('protocol error: bad magic');
    await peer.waitClosed();
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0]).toEqual({ code: 'EBAD_MAGIC', reason: 'protocol error: bad magic' });
    expect(server.events.filter((event) => event.kind === 'message')).toHaveLength(1);
  });

  it("reports the peer's CLOSE reason", async () => {
    const server = await start(framed);
    const peer = await connectPeer(server.port);
    peer.write(frame(0, TYPE_CLOSE, 0, 'going away now'));
    await peer.waitClosed();
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0]).toEqual({ code: 'ECLOSED_BY_PEER', reason: 'going away now' });
  });

  it('sends PING to a silent connection and closes it after the heartbeat timeout', async () => {
    const server = await start({ ...framed, heartbeatInterval: 100, heartbeatTimeout: 150 });
    const peer = await connectPeer(server.port);
    const ping = await peer.readFrame(3000);
    expect(ping.type).toBe(TYPE_PING);
    const close = await peer.readFrame(3000);
    expect(close.type).toBe(TYPE_CLOSE);
    expect(close.payload.toString()).toBe('heartbeat timeout');
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0].code).toBe('EHEARTBEAT_TIMEOUT');
  });

  it('PINGs 600 connections due together in slices of at most 64 per loop iteration (issue 17)', async () => {
    const server = await start({ ...framed, threads: 1, heartbeatInterval: 1000, heartbeatTimeout: 10_000 });
    const peers: WirePeer[] = [];
    for (let i = 0; i < 600; i++) peers.push(await connectPeer(server.port));
    onTestFinished(() => {
      for (const peer of peers) peer.destroy();
    });
    const pings = await Promise.all(peers.map((peer) => peer.readFrame(10_000)));
    for (const ping of pings) expect(ping.type).toBe(TYPE_PING);
    // All connected within about one sweep period, so at most a few passes
    // carried the 600 PINGs: each pass stops at the budget ⌊due / 64⌋ times.
    const loops = (await server.engine.stats()).loops;
    expect(loops[0]!.sweepDeferred).toBeGreaterThanOrEqual(5);
  });

  it('paces a pass over 2,000 connections across 3/4 of its period: no burst of everyone PINGed at once (issue 17)', async () => {
    // Interval 2 s: a pass every 500 ms, paced over 375 ms.
    const server = await start({ ...framed, threads: 1, heartbeatInterval: 2000, heartbeatTimeout: 10_000 });
    const arrivals: number[] = [];
    const sockets: net.Socket[] = [];
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
    });
    const connectOne = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const socket = net.connect(server.port, '127.0.0.1', () => resolve());
        socket.once('error', reject);
        socket.once('data', () => arrivals.push(performance.now()));
        sockets.push(socket);
      });
    // Connected together (in well under a pass period), so their PINGs fall due together.
    for (let i = 0; i < 2000; i += 200) await Promise.all(Array.from({ length: 200 }, connectOne));
    const deadline = performance.now() + 10_000;
    while (arrivals.length < 2000 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(arrivals.length).toBe(2000);
    arrivals.sort((a, b) => a - b);
    // The most PINGs that reached the peers within any 20 ms: all of them
    // (a few ms of back-to-back slices) before pacing; about 5 a ms after it.
    let most = 0;
    for (let i = 0, j = 0; i < arrivals.length; i++) {
      while (arrivals[i]! - arrivals[j]! > 20) j++;
      most = Math.max(most, i - j + 1);
    }
    expect(most).toBeLessThan(600);
  }, 30_000);

  it('closes a message left incomplete past frameTimeout', async () => {
    const server = await start({ ...framed, frameTimeout: 100 });
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 5, 1, 'complete me').subarray(0, 15));
    const close = await peer.readFrame(3000);
    expect(close.payload.toString()).toBe('frame timeout');
    await server.until(() => server.closes.size === 1, 'close');
    expect([...server.closes.values()][0].code).toBe('EFRAME_TIMEOUT');
  });

  it('answers type-1 requests natively with nativeEcho and passes other types to JS', async () => {
    const server = await start({ ...framed, nativeEcho: true });
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat([frame(0, 1, 5, 'echo me'), frame(0, 2, 6, 'to js')]));
    const frames = await peer.readFrames(2);
    expect(frames.map((f) => [f.type, f.seq, f.payload.toString()]).sort()).toEqual([
      [1, 5, 'echo me'],
      [2, 6, 'to js'],
    ]);
    expect(server.events.filter((event) => event.kind === 'message')).toHaveLength(1);
  });

  it('refuses connections over maxConnections with CLOSE "server full"', async () => {
    const server = await start({ ...framed, maxConnections: 1 });
    const first = await connectPeer(server.port);
    await server.until(() => server.events.some((event) => event.kind === 'open'), 'open');
    const second = await connectPeer(server.port);
    const refusal = await second.readFrame();
    expect(refusal.type).toBe(TYPE_CLOSE);
    expect(refusal.payload.toString()).toBe('server full');
    await second.waitClosed();
    first.write(frame(0, 3, 1, 'x'));
    expect((await first.readFrame()).seq).toBe(1);
    expect((await server.engine.stats()).rejected).toBe(1);
  });

  it('closes with a code and its reason, and broadcasts to every connection', async () => {
    const server = await start({ ...framed, threads: 2 });
    const peers = await Promise.all([connectPeer(server.port), connectPeer(server.port)]);
    await server.until(() => server.events.filter((event) => event.kind === 'open').length === 2, 'opens');
    server.engine.broadcast(frame(0, 2, 0, 'everyone'));
    for (const peer of peers) expect((await peer.readFrame()).payload.toString()).toBe('everyone');
    const id = server.events.find((event) => event.kind === 'open')!.id;
    server.engine.close(id, 'ESHUTDOWN');
    server.engine.flush();
    await server.until(() => server.closes.size === 1, 'close');
    expect(server.closes.get(id)).toEqual({ code: 'ESHUTDOWN', reason: 'shutdown' });
  });
});

describe('native engine, command blocks', () => {
  /** The addon with its submit() watched: every command block JS hands a loop, as [op, slot, size] per command. */
  function watchedAddon(): { using: NonNullable<typeof addon>; commands: Array<[number, number, number]> } {
    const commands: Array<[number, number, number]> = [];
    const Native = addon!.Engine;
    class Watched extends Native {
      submit(loop: number, bytes: Uint8Array, length: number): boolean {
        const view = Buffer.from(bytes.buffer, bytes.byteOffset, length);
        for (let at = 0; at + 16 <= length; at += 16 + view.readUInt32LE(at + 12)) {
          commands.push([view[at], view.readUInt32LE(at + 4), view.readUInt32LE(at + 12)]);
        }
        return super.submit(loop, bytes, length);
      }
    }
    return { using: { ...addon!, Engine: Watched }, commands };
  }

  it('merges consecutive writes to one connection into one command, in order, and nothing across another command', async () => {
    const { using, commands } = watchedAddon();
    const server = await start(
      { framing: 'frame', threads: 1 },
      {
        message: (engine, id, type, seq, payload) => {
          if (seq === 3) {
            engine.sendFrame(id, FLAG_RESPONSE, type, seq, payload);
            engine.end(id); // not a write: the next write is a command of its own
            return;
          }
          engine.sendFrame(id, FLAG_RESPONSE, type, seq, payload);
          engine.write(id, frame(0, 40, 0, `extra ${seq}`));
        },
      },
      using,
    );
    const a = await connectPeer(server.port);
    const b = await connectPeer(server.port);
    await server.until(() => server.events.filter((event) => event.kind === 'open').length === 2, 'opens');
    commands.length = 0;
    // Both peers' requests in one round: the loop hands them over in one batch, a's first.
    a.write(Buffer.concat([frame(0, 7, 1, 'one'), frame(0, 7, 2, 'two')]));
    b.write(frame(0, 7, 1, 'uno'));
    const fromA = await a.readFrames(4);
    expect(fromA.map((f) => [f.type, f.seq, f.payload.toString()])).toEqual([
      [7, 1, 'one'],
      [40, 0, 'extra 1'],
      [7, 2, 'two'],
      [40, 0, 'extra 2'],
    ]);
    const fromB = await b.readFrames(2);
    expect(fromB.map((f) => f.payload.toString())).toEqual(['uno', 'extra 1']);
    const writes = commands.filter(([op]) => op === 1);
    // Four frames to a became at most two commands (one if both requests were in one batch), two frames to b one.
    expect(writes.length).toBeLessThanOrEqual(3);
    const total = writes.reduce((sum, [, , size]) => sum + size, 0);
    expect(total).toBe(fromA.concat(fromB).reduce((sum, f) => sum + 12 + f.payload.length, 0));
    commands.length = 0;
    a.write(frame(0, 7, 3, 'last'));
    expect((await a.readFrame()).seq).toBe(3);
    await server.until(() => commands.some(([op]) => op === 2), 'end command');
    expect(commands.map(([op]) => op)).toEqual([1, 2]);
  });
});
