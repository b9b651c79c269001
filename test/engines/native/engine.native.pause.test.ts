/**
 * Issue 11 item 1: a FIN must survive every way the native loop holds a
 * connection's reads back. For each pause cause (read credit with JS handing
 * credit back late, the per-wake-up read budget, a full batch ring, the
 * high-water mark) and each framing, clients send 70–500 KB and then
 * shutdown(SHUT_WR): every byte must reach the sink, and END and CLOSE must be
 * reported (the loop closes its fd: nothing stays in CLOSE_WAIT). Heartbeat
 * and idle timeout are off, so nothing but the FIN can end these connections.
 */
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../../src/engines/native/binding';
import type { Engine, EngineOptions, EngineSink } from '../../../src/engines/engine';
import { createNativeEngine } from '../../../src/engines/native/engine';
import type { Framing } from '../../../src/protocol/constants';

const addon = tryLoadNative();
if (!addon) throw new Error('the native addon must be built for this suite (npx node-gyp build)');

const base: EngineOptions = {
  framing: 'raw',
  maxFrame: 1024 * 1024,
  threads: 1,
  workers: 1,
  highWaterMark: 1024 * 1024,
  maxBufferedAmount: 8 * 1024 * 1024,
  heartbeatInterval: 0,
  heartbeatTimeout: 0,
  idleTimeout: 0,
  frameTimeout: 0,
  maxConnections: 0,
  allowHalfOpen: false,
  acceptMode: 'reuseport',
  nativeEcho: false,
  triggerMode: 'edge',
};

/** Bytes each client sends before its FIN (one connection per size, in parallel). */
const sizes = [70_000, 200_000, 500_000];
const framings: Framing[] = ['frame', 'length', 'line', 'raw'];

interface PerConnection {
  payload: number;
  ends: number;
  closes: string[];
}

interface ClientReport {
  payload: number;
  received: number;
  ended: boolean;
  closed: boolean;
}

interface Cause {
  name: string;
  options: Partial<EngineOptions>;
  /** Called on the JS thread after every batch. */
  afterBatch?: (state: { ended: number; batches: number }) => void;
  /** The reply to one message or chunk (default: none). */
  reply?: (engine: Engine, id: number, payload: Buffer, pushedBack: () => void) => void;
  /** How the clients send (test/helpers/pause-clients.js). */
  send: 'burst' | 'trickle' | 'split';
  /** Default: one client per entry of `sizes`. */
  sizes?: number[];
  /** The client stops reading for this long after connecting (ms). */
  clientPause?: number;
  /** Proof that this cause's pause really happened. */
  check: (seen: { ringFull: number; pushedBack: number }) => void;
}

function busy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // JS is busy: batches wait in the ring, and their read credit with them.
  }
}

const causes: Cause[] = [
  {
    // maxBufferedAmount 256 KiB → a 64 KiB read window; each batch's credit
    // comes back only when the bridge next runs, 50 ms later.
    name: 'read credit (JS hands credit back 50 ms late)',
    options: { maxBufferedAmount: 256 * 1024, highWaterMark: 64 * 1024 },
    afterBatch: (state) => {
      if (state.ended < sizes.length && state.batches < 60) busy(50);
    },
    send: 'burst',
    check: () => undefined,
  },
  {
    // 15 connections × up to 500 KB in one burst each, more than one loop
    // reads at once: a wake-up reads 256 KiB of a connection at most and
    // queues it, with its FIN often already waiting behind the rest.
    name: 'read budget (256 KiB per wake-up)',
    options: {},
    sizes: [...sizes, ...sizes, ...sizes, ...sizes, ...sizes],
    send: 'burst',
    check: () => undefined,
  },
  {
    // JS blocks long enough for the loop to fill its batch ring with the
    // small batches of many wake-ups.
    name: 'full batch ring (JS blocked)',
    options: {},
    afterBatch: (state) => {
      if (state.batches === 1) busy(1500);
    },
    send: 'trickle', // the FINs arrive while JS is still blocked
    check: (seen) => expect(seen.ringFull).toBeGreaterThan(0),
  },
  {
    // Every message is answered with 16 times its size into a client that
    // does not read at first: the outbox passes the high-water mark with the
    // first 64 KiB, and the rest and the FIN arrive while reads are paused.
    name: 'high-water mark',
    options: { highWaterMark: 16 * 1024, maxBufferedAmount: 64 * 1024 * 1024 },
    reply: (engine, id, payload, pushedBack) => {
      const answer = Buffer.alloc(payload.length * 16, 0x61);
      if (!engine.write(id, answer)) pushedBack();
    },
    send: 'split',
    clientPause: 500,
    check: (seen) => expect(seen.pushedBack).toBeGreaterThan(0),
  },
];

describe.each(causes)('a FIN after a read pause: $name', (cause) => {
  it.each(framings)('%s framing: every byte, then END and CLOSE', async (framing) => {
    const connections = new Map<number, PerConnection>();
    const state = { ended: 0, batches: 0 };
    let pushedBack = 0;
    let engine!: Engine;
    const waiters = new Set<() => void>();
    const got = (id: number, payload: Buffer): void => {
      connections.get(id)!.payload += payload.length;
      cause.reply?.(engine, id, payload, () => pushedBack++);
    };
    const sink: EngineSink = {
      open: (id) => void connections.set(id, { payload: 0, ends: 0, closes: [] }),
      message: (id, _type, _flags, _seq, payload) => got(id, payload),
      data: (id, payload) => got(id, payload),
      drain: () => undefined,
      end: (id) => {
        connections.get(id)!.ends++;
        state.ended++;
        engine.end(id); // the server's policy without allowHalfOpen
      },
      close: (id, code) => connections.get(id)?.closes.push(code),
      error: () => undefined,
      batchEnd: () => {
        state.batches++;
        cause.afterBatch?.(state);
        for (const wake of [...waiters]) wake();
      },
      requestClose: () => undefined,
    };
    engine = createNativeEngine(addon!, { ...base, ...cause.options, framing }, sink);
    onTestFinished(() => engine.shutdown());
    const { port } = await engine.listen('127.0.0.1', 0, 511);

    const worker = new Worker(path.join(__dirname, '..', '..', 'helpers', 'pause-clients.js'), {
      workerData: { port, framing, sizes: cause.sizes ?? sizes, send: cause.send, clientPause: cause.clientPause },
    });
    onTestFinished(() => void worker.terminate());
    // The loop closes its side only after END (the FIN it read) and JS's END:
    // a client's 'close' means the server's fd is closed, not in CLOSE_WAIT.
    const clients = await new Promise<ClientReport[]>((resolve, reject) => {
      const timer = setTimeout(() => worker.postMessage('report'), 15_000);
      worker.on('error', reject);
      worker.on('message', (message: { kind: 'done' | 'report'; clients: ClientReport[] }) => {
        clearTimeout(timer);
        if (message.kind === 'done') return resolve(message.clients);
        const server = [...connections.values()].map((c) => `payload ${c.payload} ends ${c.ends} closes ${c.closes.join(',')}`);
        const client = message.clients.map((c) => `sent ${c.payload} ended ${c.ended} closed ${c.closed}`);
        reject(new Error(`connections still open after 15 s: server ${server.join('; ')} | clients ${client.join('; ')}`));
      });
    });
    // The client saw the fd close; the CLOSE record may still be on its way to JS.
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('CLOSE not reported within 5 s of the fd closing')), 5000);
      const check = (): void => {
        if ([...connections.values()].some((c) => c.closes.length === 0)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      waiters.add(check);
      check();
    });
    const byPayload = [...connections.values()].sort((a, b) => a.payload - b.payload);
    expect(byPayload.map((c) => c.payload)).toEqual(clients.map((client) => client.payload).sort((a, b) => a - b));
    for (const c of byPayload) {
      expect(c.ends).toBe(1);
      expect(c.closes).toEqual(['OK']);
    }
    for (const client of clients) {
      expect(client.ended).toBe(true);
      if (cause.reply) expect(client.received).toBe(client.payload * 16);
    }
    const stats = await engine.stats();
    expect(stats.connections).toBe(0);
    cause.check({ ringFull: stats.loops.reduce((sum, loop) => sum + loop.ringFull, 0), pushedBack });
  });
});
