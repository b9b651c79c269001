/** The Server and Connection API in-process, over the in-process engines (native, net). */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, EdgepollError, type Connection } from '../../src/index';
import { connectPeer, frame } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { listening, nextConnection } from '../helpers/listening';

describe('options', () => {
  it('rejects invalid and unknown options with one clear wording', () => {
    expect(() => createServer({ threads: -1 })).toThrow('option `threads` must be an integer from 0 to 64, got -1');
    expect(() => createServer({ framing: 'xml' as never })).toThrow(/option `framing` must be one of/);
    expect(() => createServer({ bogus: 1 } as never)).toThrow(/option `bogus`/);
    try {
      createServer({ maxFrame: -1 });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(EdgepollError);
      expect((error as EdgepollError).code).toBe('EINVALID_OPTION');
    }
  });
});

describe('engine selection', () => {
  function withEngineEnv(value: string, body: () => void): void {
    const previous = process.env.EDGEPOLL_ENGINE;
    process.env.EDGEPOLL_ENGINE = value;
    try {
      body();
    } finally {
      if (previous === undefined) delete process.env.EDGEPOLL_ENGINE;
      else process.env.EDGEPOLL_ENGINE = previous;
    }
  }

  it('an explicit engine option wins over EDGEPOLL_ENGINE, with one warning naming both', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    onTestFinished(() => void process.off('warning', onWarning));
    withEngineEnv('net', () => {
      const server = createServer({ engine: 'native' });
      expect(server.engine).toBe('native');
      expect(server.options.engineSource).toBe('option');
      void server.close();
    });
    await new Promise((resolve) => setImmediate(resolve));
    const ignored = warnings.filter((w) => (w as { code?: string }).code === 'EDGEPOLL_ENGINE_IGNORED');
    expect(ignored.map((w) => w.message)).toEqual(["EDGEPOLL_ENGINE=net is ignored: the engine option asks for 'native' explicitly"]);
  });

  it('EDGEPOLL_ENGINE replaces auto (an absent option), and a bad value is reported as the variable', () => {
    withEngineEnv('net', () => {
      const server = createServer();
      expect(server.engine).toBe('net');
      expect(server.options.engineSource).toBe('environment');
      void server.close();
    });
    withEngineEnv('bogus', () => {
      expect(() => createServer()).toThrow(/option `EDGEPOLL_ENGINE \(environment variable\)` must be one of .*got "bogus"/);
      expect(() => createServer({ engine: 'net' })).toThrow(/EDGEPOLL_ENGINE/);
    });
  });
});

describe.each(engineCases({ cluster: false }))('Server API on $name', ({ options }) => {
  it('reports listen errors with codes and listens once', async () => {
    const { server, port } = await listening(options);
    const second = createServer(options);
    await expect(second.listen({ port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(server.listen({ port: 0 })).rejects.toMatchObject({ code: 'ESERVER_ALREADY_LISTENING' });
    const a = createServer(options);
    const b = createServer(options);
    onTestFinished(() => Promise.all([a.close(), b.close()]));
    const [pa, pb] = await Promise.all([a.listen(), b.listen()]);
    expect(pa.port).not.toBe(pb.port);
  });

  it('honours AbortSignal: already aborted rejects, abort later closes', async () => {
    const early = createServer(options);
    await expect(early.listen({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'EABORTED' });
    const controller = new AbortController();
    const server = createServer(options);
    const address = await server.listen({ signal: controller.signal });
    const closed = new Promise<void>((resolve) => server.once('close', resolve));
    controller.abort();
    await closed;
    await expect(connectPeer(address.port)).rejects.toThrow();
  });

  it('gives connections with addresses, pushes, requests to the client, and close codes', async () => {
    const { server, port } = await listening(options);
    const accepted = nextConnection(server);
    const peer = await connectPeer(port);
    const connection = await accepted;
    expect(connection.remoteAddress).toBe('127.0.0.1');
    expect(connection.remotePort).toBe(peer.socket.localPort);
    expect(server.connections).toBe(1);
    expect(connection.send(7, 'pushed')).toBe(true);
    expect(await peer.readFrame()).toEqual({ flags: 0, type: 7, seq: 0, payload: Buffer.from('pushed') });
    const asked = connection.request(8, 'question?', { timeout: 2000 });
    const question = await peer.readFrame();
    peer.write(frame(1, 8, question.seq, 'answer!'));
    expect((await asked).toString()).toBe('answer!');
    const failing = connection.request(8, 'again');
    const second = await peer.readFrame();
    peer.write(frame(3, 8, second.seq, 'no'));
    await expect(failing).rejects.toMatchObject({ code: 'EREMOTE', message: 'no' });
    const lost = connection.request(8, 'never answered');
    const closed = new Promise<[string, string]>((resolve) => connection.once('close', (code, reason) => resolve([code, reason])));
    peer.destroy();
    await expect(lost).rejects.toMatchObject({ code: 'ECONNECTION_LOST' });
    const [code] = await closed;
    expect(['OK', 'ECONNRESET', 'EPIPE']).toContain(code);
    expect(() => connection.send(7, 'late')).toThrow(expect.objectContaining({ code: 'ECONNECTION_CLOSED' }));
    expect(server.connections).toBe(0);
  });

  it('times out and aborts requests to the client', async () => {
    const { server, port } = await listening(options);
    const accepted = nextConnection(server);
    await connectPeer(port);
    const connection = await accepted;
    await expect(connection.request(8, 'x', { timeout: 100 })).rejects.toMatchObject({ code: 'EREQUEST_TIMEOUT' });
    const controller = new AbortController();
    const pending = connection.request(8, 'y', { signal: controller.signal, timeout: 0 });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: 'EABORTED' });
  });

  it("reports handler errors through 'error' and answers with the message only", async () => {
    const errors: Error[] = [];
    const { port } = await listening(options, (server) => {
      server.on('error', (error) => errors.push(error));
      server.handle(1, () => {
        throw new Error('kaput');
      });
    });
    const peer = await connectPeer(port);
    peer.write(frame(0, 1, 1));
    const reply = await peer.readFrame();
    expect(reply).toMatchObject({ flags: 3, payload: Buffer.from('kaput') });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(EdgepollError);
    expect(errors[0]).toMatchObject({ code: 'EHANDLER', message: 'handler for type 1 failed: kaput' });
    expect((errors[0]!.cause as Error).message).toBe('kaput');
  });

  it('raw framing: write/data, backpressure with drain, end', async () => {
    const { server, port } = await listening({ ...options, framing: 'raw', highWaterMark: 1024 });
    const accepted = nextConnection(server);
    const socket = net.connect({ port, host: '127.0.0.1' });
    onTestFinished(() => socket.destroy());
    socket.pause(); // do not read: the server's queue grows
    const connection = await accepted;
    const chunk = Buffer.alloc(64 * 1024, 1);
    let writes = 0;
    while (connection.write(chunk) && writes < 1000) writes++;
    expect(writes).toBeLessThan(1000);
    const drained = new Promise<void>((resolve) => connection.once('drain', resolve));
    socket.resume();
    await drained;
    const data = new Promise<Buffer>((resolve) => connection.once('data', resolve));
    socket.write('ping');
    expect((await data).toString()).toBe('ping');
    const ended = new Promise<void>((resolve) => socket.once('end', resolve));
    connection.end();
    await ended;
  });

  it('closes with Symbol.asyncDispose', async () => {
    let port = 0;
    {
      await using server = createServer(options);
      port = (await server.listen()).port;
    }
    await expect(connectPeer(port)).rejects.toThrow();
  });
});
