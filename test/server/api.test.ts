/**
 * The API a new user meets (issue 12: traps, errors and names): node:net's
 * call shapes, nested option checks with one set of ranges, a client at a
 * dead port, client backpressure, engines agreeing on writes to a closing
 * connection, post-'close' behaviour, and one vocabulary on both sides.
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect, createServer, EdgepollError, type Connection, type Server } from '../../src/index';
import type { ServerOptions } from '../../src/server/options';
import { client, codeOf, nextEvent } from '../helpers/client-fixtures/clients';
import { createFrameServer } from '../helpers/client-fixtures/frame-server.cjs';
import { engineCases } from '../helpers/fixture';
import { listening, nextConnection } from '../helpers/listening';
import { connectPeer, deadPort, frame, nonReader } from '../helpers/wire';

/** Rejects when `promise` has not settled within `ms` (a hang on main fails fast instead of at the test timeout). */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`not settled within ${ms} ms`)), ms)),
  ]);
}

function errorOf(run: () => unknown): EdgepollError | undefined {
  try {
    run();
  } catch (error) {
    return error as EdgepollError;
  }
  return undefined;
}

describe('call shapes of node:net', () => {
  it('listen(port, host?) listens on that port and connect(port, host?) connects to it', async () => {
    const port = await deadPort();
    const server = createServer({ engine: 'net' });
    onTestFinished(() => server.close());
    server.handle(1, (payload) => payload);
    expect(await server.listen(port, '127.0.0.1')).toEqual({ host: '127.0.0.1', port });
    const a = connect(port);
    const b = connect(port, '127.0.0.1');
    onTestFinished(() => Promise.all([a.destroy(), b.destroy()]));
    expect((await a.request(1, 'a')).toString()).toBe('a');
    expect((await b.request(1, 'b')).toString()).toBe('b');

    const again = createServer({ engine: 'net' });
    onTestFinished(() => again.close());
    await expect(again.listen(port)).rejects.toMatchObject({ code: 'EADDRINUSE' });
  });

  it('anything that is neither a port nor an options object is EINVALID_OPTION', async () => {
    const server = createServer({ engine: 'net' });
    onTestFinished(() => server.close());
    await expect(server.listen('7000' as never)).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(server.listen(70000)).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    expect(errorOf(() => connect('7000' as never))?.code).toBe('EINVALID_OPTION');
    expect(errorOf(() => connect(0))?.code).toBe('EINVALID_OPTION');
  });
});

describe('nested options', () => {
  it('unknown keys inside heartbeat, proxyProtocol and reconnect are refused by name', () => {
    expect(() => createServer({ heartbeat: { interval: 1000, timeout: 1000, intervall: 5 } as never })).toThrow(
      /option `heartbeat\.intervall` must be one of the known options \(interval, timeout\)/,
    );
    expect(() => createServer({ proxyProtocol: { trusted: ['127.0.0.1'], timout: 5 } as never })).toThrow(/option `proxyProtocol\.timout`/);
    expect(() => connect({ port: 1, reconnect: { initialDelay: 5, maxDelays: 50 } as never })).toThrow(/option `reconnect\.maxDelays`/);
    expect(() => connect({ port: 1, heartbeat: { interval: 5, timeout: 5, every: 1 } as never })).toThrow(/option `heartbeat\.every`/);
  });

  it('a heartbeat in a framing without PING is an error, not silently dropped', () => {
    for (const framing of ['length', 'line', 'raw'] as const) {
      expect(() => createServer({ framing, heartbeat: { interval: 1000, timeout: 1000 } })).toThrow(
        new RegExp(`option \`heartbeat\` must be false for the '${framing}' framing`),
      );
      expect(() => connect({ port: 1, framing, heartbeat: { interval: 1000, timeout: 1000 } })).toThrow(/option `heartbeat` must be false/);
      const server = createServer({ engine: 'net', framing, heartbeat: false });
      expect(server.options.heartbeatInterval).toBe(0);
      void server.close();
      expect(createServer({ engine: 'net', framing }).options.heartbeatInterval).toBe(0);
    }
  });

  it('server and client share one set of ranges (maxFrame, heartbeat, request timeouts)', () => {
    const server = (options: ServerOptions) => errorOf(() => void createServer({ engine: 'net', ...options }).close());
    const clientSide = (options: object) => errorOf(() => void connect({ port: 1, reconnect: false, ...options }).destroy());
    const cases: Array<[string, object, boolean]> = [
      ['maxFrame 0', { maxFrame: 0 }, false],
      ['maxFrame 1', { maxFrame: 1 }, true],
      ['maxFrame 2^31-1', { maxFrame: 2 ** 31 - 1 }, true],
      ['maxFrame 2^31', { maxFrame: 2 ** 31 }, false],
      ['maxFrame 2^32-1', { maxFrame: 2 ** 32 - 1 }, false],
      ['heartbeat one day', { heartbeat: { interval: 86_400_000, timeout: 86_400_000 } }, true],
      ['heartbeat over a day', { heartbeat: { interval: 86_400_001, timeout: 1 } }, false],
      ['requestTimeout 0', { requestTimeout: 0 }, true],
      ['requestTimeout -1', { requestTimeout: -1 }, false],
      ['requestTimeout NaN', { requestTimeout: NaN }, false],
    ];
    for (const [name, options, valid] of cases) {
      const onServer = server(options as ServerOptions);
      const onClient = clientSide(options);
      expect({ name, server: onServer === undefined, client: onClient === undefined }).toEqual({ name, server: valid, client: valid });
      if (!valid) expect({ name, message: onServer!.message }).toEqual({ name, message: onClient!.message });
    }
  });
});

describe.each(engineCases({ cluster: false }))('request timeouts on $name', ({ options }) => {
  it('connection.request refuses timeout -1, NaN, 1.5 and Infinity instead of waiting for ever', async () => {
    const { server, port } = await listening(options);
    const accepted = nextConnection(server);
    const peer = await connectPeer(port); // never answers
    const connection = await accepted;
    for (const timeout of [-1, NaN, 1.5, Infinity]) {
      const outcome = errorOf(() => void connection.request(1, 'x', { timeout }).catch(() => undefined));
      expect({ timeout, code: outcome?.code }).toEqual({ timeout, code: 'EINVALID_OPTION' });
    }
    peer.destroy();
  });

  it("the server's requestTimeout is the default of connection.request", async () => {
    const { server, port } = await listening({ ...options, requestTimeout: 150 });
    const accepted = nextConnection(server);
    const peer = await connectPeer(port); // never answers
    const connection = await accepted;
    const started = Date.now();
    await expect(within(connection.request(1, 'x'), 5000)).rejects.toMatchObject({ code: 'EREQUEST_TIMEOUT' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    peer.destroy();
  });
});

describe('a client at a dead port', () => {
  it("delivers 'error' as EdgepollError, and ready({ timeout, signal }) and requests fail with the connection error as cause", async () => {
    const port = await deadPort();
    const c = client({ port, heartbeat: false, reconnect: { initialDelay: 20, maxDelay: 40 } });
    const errors: unknown[] = [];
    c.on('error', (error) => errors.push(error));
    const timedOut = await within(c.ready({ timeout: 300 }), 5000).catch((error: unknown) => error as EdgepollError);
    expect(timedOut).toBeInstanceOf(EdgepollError);
    expect(timedOut).toMatchObject({ code: 'ETIMEDOUT', cause: { code: 'ECONNREFUSED' } });
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]).toBeInstanceOf(EdgepollError);
    expect(errors[0]).toMatchObject({ code: 'ECONNREFUSED', cause: { code: 'ECONNREFUSED' } });

    const controller = new AbortController();
    const aborted = c.ready({ signal: controller.signal }).catch((error: unknown) => error);
    controller.abort();
    expect(await within(aborted, 5000)).toMatchObject({ code: 'EABORTED', cause: { code: 'ECONNREFUSED' } });
    expect(c.status).not.toBe('closed'); // ready() gave up waiting; the client still reconnects

    const request = await within(c.request(1, 'x', { timeout: 200 }), 5000).catch((error: unknown) => error);
    expect(request).toMatchObject({ code: 'EREQUEST_TIMEOUT', cause: { code: 'ECONNREFUSED' } });
  });

  it("without an 'error' listener it does not crash and is not silent: one warning per code", async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      if ((warning as { code?: string }).code === 'EDGEPOLL_CLIENT_ERROR') warnings.push(warning);
    };
    process.on('warning', onWarning);
    onTestFinished(() => void process.off('warning', onWarning));
    const port = await deadPort();
    const c = client({ port, heartbeat: false, reconnect: { initialDelay: 10, maxDelay: 20 } });
    for (let i = 0; i < 4; i++) await nextEvent(c, 'reconnecting');
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}: ECONNREFUSED`));
  });
});

describe('client backpressure', () => {
  it('send() returns false above highWaterMark, throws EQUEUE_FULL above maxBufferedAmount, and emits drain', async () => {
    const port = await deadPort();
    const c = client({ port, heartbeat: false, highWaterMark: 100_000, maxBufferedAmount: 150_000, reconnect: { initialDelay: 20, maxDelay: 40 } });
    c.on('error', () => undefined);
    const payload = Buffer.alloc(60_000, 1);
    expect(c.send(1, payload)).toBe(true); // 60,012 bytes waiting
    expect(c.bufferedAmount).toBe(60_012);
    expect(c.send(1, payload)).toBe(false); // 120,024: above the high-water mark, but kept
    expect(c.bufferedAmount).toBe(120_024);
    expect(errorOf(() => c.send(1, payload))).toMatchObject({ code: 'EQUEUE_FULL', message: expect.stringMatching(/maxBufferedAmount/) });
    expect(await codeOf(c.request(1, payload))).toBe('EQUEUE_FULL');
    expect(c.queued).toBe(2);
    // A server appears on the port: the queue goes out and 'drain' follows.
    const fixture = createFrameServer();
    await fixture.listen(port);
    onTestFinished(() => fixture.close());
    await within(nextEvent(c, 'drain'), 10_000);
    expect(c.bufferedAmount).toBeLessThan(100_000);
    expect(c.send(1, 'small')).toBe(true);
  });

  it('counts what the socket holds: a server that does not read makes send() return false, reading brings drain', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      socket.pause();
      sockets.push(socket);
    });
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const c = client({ port, heartbeat: false, highWaterMark: 256 * 1024, maxBufferedAmount: 64 * 1024 * 1024 });
    await c.ready({ timeout: 5000 });
    const chunk = Buffer.alloc(256 * 1024, 7);
    let sent = 0;
    while (c.send(1, chunk)) {
      sent++;
      expect(sent).toBeLessThan(200); // kernel buffers hold a few MiB; past 50 MiB something is wrong
    }
    expect(c.bufferedAmount).toBeGreaterThanOrEqual(256 * 1024);
    const drained = nextEvent(c, 'drain');
    for (const socket of sockets) socket.resume();
    await within(drained, 10_000);
    expect(c.bufferedAmount).toBeLessThan(256 * 1024);
  });

  it("a connection that dies while send() waits for 'drain' still brings 'drain' (its bytes are gone)", async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      socket.pause();
      socket.on('error', () => undefined);
      sockets.push(socket);
    });
    onTestFinished(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const c = client({ port, heartbeat: false, highWaterMark: 256 * 1024, maxBufferedAmount: 64 * 1024 * 1024 });
    c.on('error', () => undefined);
    await c.ready({ timeout: 5000 });
    const chunk = Buffer.alloc(256 * 1024, 7);
    for (let sent = 0; c.send(1, chunk); sent++) expect(sent).toBeLessThan(200);
    const drained = nextEvent(c, 'drain');
    for (const socket of sockets) socket.destroy();
    await within(drained, 10_000);
    expect(c.bufferedAmount).toBe(0);
  });
});

describe.each(engineCases({ cluster: false }))('writes to a closing connection on $name', ({ options }) => {
  it('return false on every engine (as node:net), frame and raw framings', async () => {
    for (const framing of ['frame', 'raw'] as const) {
      const { server, port } = await listening({ ...options, framing });
      const accepted = nextConnection(server);
      const peer = await connectPeer(port);
      const connection = await accepted;
      const closed = new Promise((resolve) => connection.once('close', resolve));
      connection.close('bye');
      if (framing === 'frame') expect(connection.send(1, 'late')).toBe(false);
      else expect(connection.write('late')).toBe(false);
      await within(closed, 5000);
      peer.destroy();
    }
  });
});

describe.each(engineCases({ cluster: false }))('after close on $name', ({ options }) => {
  it('sending throws ECONNECTION_CLOSED; end, close and destroy do nothing; bufferedAmount is 0', async () => {
    const { server, port } = await listening(options);
    const accepted = nextConnection(server);
    const peer = await connectPeer(port);
    const connection = await accepted;
    const closed = new Promise((resolve) => connection.once('close', resolve));
    peer.destroy();
    await within(closed, 5000);
    expect(connection.closed).toBe(true);
    expect(errorOf(() => connection.send(1, 'x'))).toMatchObject({ code: 'ECONNECTION_CLOSED' });
    expect(errorOf(() => void connection.request(1, 'x'))).toMatchObject({ code: 'ECONNECTION_CLOSED' });
    expect(errorOf(() => connection.end())).toBeUndefined();
    expect(errorOf(() => connection.close('again'))).toBeUndefined();
    expect(errorOf(() => connection.destroy())).toBeUndefined();
    expect(connection.bufferedAmount).toBe(0);
  });
});

describe.each(engineCases({ cluster: false }))('one vocabulary on $name', ({ options }) => {
  it("raw framing delivers 'message' on the server as on the client ('data' kept as the old name)", async () => {
    const { server, port } = await listening({ ...options, framing: 'raw' });
    const accepted = nextConnection(server);
    const socket = net.connect({ port, host: '127.0.0.1' });
    onTestFinished(() => void socket.destroy());
    const connection = await accepted;
    const messages: string[] = [];
    const data: string[] = [];
    connection.on('message', (chunk) => messages.push(chunk.toString()));
    connection.on('data', (chunk) => data.push(chunk.toString()));
    socket.write('hello');
    await within(
      (async () => {
        while (messages.join('') !== 'hello') await new Promise((resolve) => setTimeout(resolve, 5));
      })(),
      5000,
    );
    expect(data.join('')).toBe('hello');
  });

  it('handle(type, undefined) removes a handler on the server as on the client', async () => {
    const { server, port } = await listening(options, (s) => {
      s.handle(1, () => 'one');
      s.handle(1, undefined);
    });
    void server;
    const peer = await connectPeer(port);
    peer.write(frame(0, 1, 7));
    expect(await peer.readFrame()).toMatchObject({ flags: 3, seq: 7, payload: Buffer.from('unknown type 1') });
    peer.destroy();
  });

  it('handlers of small and large types (either side of the dispatcher\'s array) are set, replaced and removed alike', async () => {
    const types = [1, 255, 256, 4096, 0xefff];
    const { server, port } = await listening(options, (s) => {
      for (const type of types) s.handle(type, () => `old ${type}`);
      for (const type of types) s.handle(type, () => `new ${type}`);
    });
    const peer = await connectPeer(port);
    for (const [i, type] of types.entries()) {
      peer.write(frame(0, type, 10 + i));
      expect(await peer.readFrame()).toMatchObject({ flags: 1, type, seq: 10 + i, payload: Buffer.from(`new ${type}`) });
    }
    for (const type of types) server.handle(type, undefined);
    for (const [i, type] of types.entries()) {
      peer.write(frame(0, type, 20 + i));
      expect(await peer.readFrame()).toMatchObject({ flags: 3, seq: 20 + i, payload: Buffer.from(`unknown type ${type}`) });
    }
    peer.destroy();
  });

  it('stats: protocolErrors counts protocol errors only; timeouts and slow consumers have their own counters', async () => {
    const counts = async (server: Server) => {
      const stats = await server.stats();
      return { protocolErrors: stats.protocolErrors, timeouts: stats.timeouts, slowConsumers: stats.slowConsumers };
    };
    const a = await listening({ ...options, idleTimeout: 100, heartbeat: false });
    // A timeout: a connection that stays silent.
    const silent = await connectPeer(a.port);
    await within(silent.waitClosed(), 5000);
    // A protocol error: bad magic.
    const bad = await connectPeer(a.port);
    bad.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await within(bad.waitClosed(), 5000);
    expect(await counts(a.server)).toEqual({ protocolErrors: 1, timeouts: 1, slowConsumers: 0 });

    // A slow consumer: a peer that never reads while the server keeps sending.
    const b = await listening({ ...options, highWaterMark: 1024, maxBufferedAmount: 65_536 });
    const accepted = nextConnection(b.server);
    await nonReader(b.port);
    const connection = await accepted;
    const closed = new Promise<string>((resolve) => connection.once('close', (code) => resolve(code)));
    const chunk = Buffer.alloc(32 * 1024, 1);
    for (let i = 0; i < 2000 && !connection.closed; i++) {
      connection.send(1, chunk);
      if (i % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(await within(closed, 10_000)).toBe('ESLOW_CONSUMER');
    expect(await counts(b.server)).toEqual({ protocolErrors: 0, timeouts: 0, slowConsumers: 1 });
  });

  it('shutdownTimeout is the graceful-close option (drainTimeout its old name)', () => {
    const named = createServer({ ...options, shutdownTimeout: 1234 });
    expect(named.options.shutdownTimeout).toBe(1234);
    void named.close();
    const old = createServer({ ...options, drainTimeout: 4321 });
    expect(old.options.shutdownTimeout).toBe(4321);
    void old.close();
    expect(() => createServer({ ...options, shutdownTimeout: 1, drainTimeout: 2 })).toThrow(/drainTimeout/);
  });
});
