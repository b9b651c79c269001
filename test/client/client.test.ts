/**
 * Client unit tests (heartbeat timing and reconnect scheduling on a fake
 * clock, option validation) and request/reply behaviour against a small
 * frame-protocol server on 127.0.0.1 (test/helpers/client-fixtures).
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished } from 'vitest';
import { client, nextEvent, codeOf } from '../helpers/client-fixtures/clients';
import { connect } from '../../src/client/client';
import { ClientHeartbeat } from '../../src/client/heartbeat';
import { FakeClock } from '../helpers/fake-clock';
import { WirePeer, deadPort } from '../helpers/wire';
import { createFrameServer, frame } from '../helpers/client-fixtures/frame-server.cjs';

async function frameServer() {
  const fixture = createFrameServer();
  const port: number = await fixture.listen(0);
  onTestFinished(() => fixture.close());
  return { fixture, port };
}

/** A listening server whose accepted sockets the test drives as raw peers. */
async function rawServer(): Promise<{ port: number; next: () => Promise<WirePeer> }> {
  const peers: WirePeer[] = [];
  const waiting: Array<(peer: WirePeer) => void> = [];
  const server = net.createServer((socket) => {
    const peer = new WirePeer(socket);
    const waiter = waiting.shift();
    if (waiter) waiter(peer);
    else peers.push(peer);
  });
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (socket) => onTestFinished(() => socket.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const next = () => new Promise<WirePeer>((resolve) => (peers.length ? resolve(peers.shift()!) : waiting.push(resolve)));
  return { port, next };
}


describe('heartbeat timing (fake clock)', () => {
  function setup(interval = 200, timeout = 200) {
    const clock = new FakeClock();
    const events: string[] = [];
    const heartbeat = new ClientHeartbeat(clock, interval, timeout, {
      ping: () => events.push(`ping@${clock.now()}`),
      dead: () => events.push(`dead@${clock.now()}`),
    });
    heartbeat.start();
    return { clock, events, heartbeat };
  }

  it('pings after interval of silence and declares death after timeout more', () => {
    const { clock, events } = setup();
    clock.advance(199);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toEqual(['ping@200']);
    clock.advance(199);
    expect(events).toEqual(['ping@200']);
    clock.advance(1);
    expect(events).toEqual(['ping@200', 'dead@400']);
    clock.advance(10_000);
    expect(events).toHaveLength(2);
    expect(clock.pending).toBe(0);
  });

  it('counts silence from the last received byte', () => {
    const { clock, events, heartbeat } = setup();
    clock.advance(150);
    heartbeat.touch();
    clock.advance(199);
    expect(events).toEqual([]);
    clock.advance(1);
    expect(events).toEqual(['ping@350']);
    clock.advance(100);
    heartbeat.touch(); // the PONG (any byte) arrives at 450
    clock.advance(199);
    expect(events).toEqual(['ping@350']);
    clock.advance(1);
    expect(events).toEqual(['ping@350', 'ping@650']);
    clock.advance(200);
    expect(events).toEqual(['ping@350', 'ping@650', 'dead@850']);
  });

  it('a busy connection never pings and stop() cancels everything', () => {
    const { clock, events, heartbeat } = setup();
    for (let i = 0; i < 100; i++) {
      clock.advance(50);
      heartbeat.touch();
    }
    expect(events).toEqual([]);
    heartbeat.stop();
    clock.advance(10_000);
    expect(events).toEqual([]);
    expect(clock.pending).toBe(0);
  });
});

describe('client on a fake clock', () => {
  it('reconnects with exponential, capped delays and gives up after maxAttempts', async () => {
    const clock = new FakeClock();
    const port = await deadPort();
    const c = client(
      { port, heartbeat: false, reconnect: { initialDelay: 100, maxDelay: 300, factor: 2, maxAttempts: 4 } },
      { clock, random: () => 0 },
    );
    const ready = codeOf(c.ready());
    const seen: Array<{ attempt: number; delay: number }> = [];
    for (let i = 0; i < 4; i++) {
      const [event] = await nextEvent<[{ attempt: number; delay: number }]>(c, 'reconnecting');
      seen.push(event);
      expect(c.status).toBe('reconnecting');
      clock.advance(event.delay);
      expect(c.status).toBe('connecting');
    }
    expect(seen).toEqual([
      { attempt: 1, delay: 100 }, { attempt: 2, delay: 200 }, { attempt: 3, delay: 300 }, { attempt: 4, delay: 300 },
    ]);
    await nextEvent(c, 'close');
    expect(c.status).toBe('closed');
    expect(await ready).toBe('ECONNECTION_LOST');
    expect(await codeOf(c.request(1, 'late'))).toBe('ECONNECTION_LOST');
  });

  it('with reconnect: false, closes on the first failure and says why', async () => {
    const port = await deadPort();
    const c = client({ port, reconnect: false });
    await expect(c.ready()).rejects.toMatchObject({ code: 'ECONNECTION_LOST', message: expect.stringContaining('ECONNREFUSED') });
    expect(c.status).toBe('closed');
  });

  it('pings a silent server, then destroys the socket and reconnects', async () => {
    const clock = new FakeClock();
    const { port, next } = await rawServer();
    const c = client({ port, heartbeat: { interval: 1000, timeout: 500 }, reconnect: { initialDelay: 50 } }, { clock });
    await c.ready();
    const peer = await next();
    clock.advance(999);
    clock.advance(1);
    const ping = await peer.readFrame();
    expect(ping.type).toBe(0xff01);
    peer.write(frame(0, 0xff02, ping.seq, ping.payload)); // the PONG counts as life
    await new Promise((resolve) => setTimeout(resolve, 50));
    clock.advance(1000);
    expect(c.status).toBe('open');
    expect((await peer.readFrame()).type).toBe(0xff01);
    const reconnecting = nextEvent(c, 'reconnecting');
    clock.advance(500);
    expect(c.status).toBe('reconnecting');
    await reconnecting;
    await peer.waitClosed();
  });
});

describe('options', () => {
  it('are validated with the one wording', () => {
    expect(() => connect({ port: 0 })).toThrow('option `port` must be an integer from 1 to 65535, got 0');
    expect(() => connect({ port: 1, framing: 'json' as never })).toThrow(/option `framing`/);
    expect(() => connect({ port: 1, heartbeat: { interval: 0, timeout: 1 } })).toThrow(/heartbeat\.interval/);
    expect(() => connect({ port: 1, maxPending: -1 })).toThrow(/maxPending/);
    expect(() => connect({ port: 1, reconnect: { jitter: 2 } })).toThrow(/reconnect\.jitter/);
    expect(() => connect({ port: 1, retries: 3 } as never)).toThrow(/unknown option/);
  });
});

describe('request and reply', () => {
  it('echoes, and turns RESPONSE|ERROR into EREMOTE with the message', async () => {
    const { port } = await frameServer();
    const c = client({ port });
    const opened = nextEvent(c, 'open');
    await c.ready();
    await opened;
    expect(c.status).toBe('open');
    expect((await c.request(1, 'hello')).toString()).toBe('hello');
    expect((await c.request(1)).length).toBe(0);
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => c.request(1, `m${i}`)));
    expect(replies.map(String)).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    await expect(c.request(5, 'x')).rejects.toMatchObject({ code: 'EREMOTE', message: 'boom' });
    await expect(c.request(9, 'x')).rejects.toMatchObject({ code: 'EREMOTE', message: 'unknown type 9' });
    expect((await c.request(1, 'still open')).toString()).toBe('still open');
    expect(() => c.send(0xff01, 'x')).toThrow(/option `type`/);
    await expect(c.request(0, 'x')).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
  });

  it('queues requests made while connecting and sends them in order once open', async () => {
    const { fixture, port } = await frameServer();
    const c = client({ port });
    expect(c.status).toBe('connecting');
    const replies = Promise.all([c.request(1, 'a'), c.request(1, 'b'), c.request(1, 'c')]);
    c.send(3, 'push');
    expect(c.queued).toBe(4);
    expect((await replies).map(String)).toEqual(['a', 'b', 'c']);
    expect(fixture.snapshot().requests).toBe(3);
    expect(fixture.snapshot().pushes).toBe(1);
  });

  it('bounds the queue with maxPending (EQUEUE_FULL) and times queued requests out', async () => {
    const port = await deadPort();
    const c = client({ port, maxPending: 2, reconnect: { initialDelay: 10_000 } });
    const first = codeOf(c.request(1, 'a', { timeout: 50 }));
    const second = codeOf(c.request(1, 'b', { timeout: 0 }));
    expect(await codeOf(c.request(1, 'c'))).toBe('EQUEUE_FULL');
    expect(() => c.send(3, 'd')).toThrow(expect.objectContaining({ code: 'EQUEUE_FULL' }));
    expect(await first).toBe('EREQUEST_TIMEOUT');
    expect(c.queued).toBe(1); // the timed-out request left the queue
    await c.close();
    expect(await second).toBe('ECONNECTION_CLOSED');
  });

  it('times out a request in flight and drops its late reply', async () => {
    const { port } = await frameServer();
    const c = client({ port, requestTimeout: 60 });
    await c.ready();
    const delayed = Buffer.alloc(4);
    delayed.writeUInt32BE(200);
    await expect(c.request(4, delayed)).rejects.toMatchObject({ code: 'EREQUEST_TIMEOUT' });
    await new Promise((resolve) => setTimeout(resolve, 250));
    expect(c.counters.unmatched).toBe(1);
    expect((await c.request(1, 'ok')).toString()).toBe('ok');
  });

  it('rejects with EABORTED when the signal fires, before or after sending', async () => {
    const { port } = await frameServer();
    const c = client({ port });
    await c.ready();
    const delayed = Buffer.alloc(4);
    delayed.writeUInt32BE(300);
    const controller = new AbortController();
    const inFlight = codeOf(c.request(4, delayed, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 20);
    expect(await inFlight).toBe('EABORTED');
    expect(await codeOf(c.request(1, 'x', { signal: AbortSignal.abort() }))).toBe('EABORTED');
  });

  it('close() lets in-flight requests finish, rejects queued and later ones, and is idempotent', async () => {
    const { port } = await frameServer();
    const c = client({ port });
    await c.ready();
    const delayed = Buffer.alloc(4);
    delayed.writeUInt32BE(100);
    const inFlight = c.request(4, delayed);
    let closes = 0;
    c.on('close', () => closes++);
    const closing = c.close();
    expect(await codeOf(c.request(1, 'late'))).toBe('ECONNECTION_CLOSED');
    expect((await inFlight).length).toBe(4);
    await Promise.all([closing, c.close()]);
    expect(c.status).toBe('closed');
    expect(closes).toBe(1);
    await expect(c.ready()).rejects.toMatchObject({ code: 'ECONNECTION_CLOSED' });
  });

  it('destroy() and the connect signal reject everything at once', async () => {
    const { port } = await frameServer();
    const controller = new AbortController();
    const c = client({ port, signal: controller.signal });
    await c.ready();
    const delayed = Buffer.alloc(4);
    delayed.writeUInt32BE(1000);
    const inFlight = codeOf(c.request(4, delayed));
    controller.abort();
    expect(await inFlight).toBe('EABORTED');
    expect(c.status).toBe('closed');
  });
});

describe('what the server sends', () => {
  it('answers server requests through handlers: value, throw (message only), unknown type', async () => {
    const { port, next } = await rawServer();
    const c = client({ port });
    const errors: Error[] = [];
    c.on('error', (error) => errors.push(error));
    c.handle(7, (payload) => Buffer.concat([Buffer.from('re:'), payload]));
    c.handle(8, async () => {
      throw new Error('client boom');
    });
    await c.ready();
    const peer = await next();
    peer.write(Buffer.concat([frame(0, 7, 11, 'x'), frame(0, 8, 12, 'y'), frame(0, 9, 13, 'z')]));
    const replies = await peer.readFrames(3);
    const bySeq = new Map(replies.map((reply) => [reply.seq, reply]));
    expect(bySeq.get(11)).toMatchObject({ flags: 1, type: 7 });
    expect(bySeq.get(11)!.payload.toString()).toBe('re:x');
    expect(bySeq.get(12)).toMatchObject({ flags: 3, type: 8 });
    expect(bySeq.get(12)!.payload.toString()).toBe('client boom');
    expect(bySeq.get(13)).toMatchObject({ flags: 3, type: 9 });
    expect(bySeq.get(13)!.payload.toString()).toBe('unknown type 9');
    expect(errors.map((error) => (error as { code?: string }).code)).toEqual(['EHANDLER']);
  });

  it('delivers pushes to handlers, counts unhandled ones, and answers PING with PONG itself', async () => {
    const { port, next } = await rawServer();
    const c = client({ port });
    const pushes: string[] = [];
    c.handle(2, (payload, context) => void pushes.push(`${context.seq}:${payload}`));
    await c.ready();
    const peer = await next();
    peer.write(Buffer.concat([frame(0, 2, 0, 'news'), frame(0, 6, 0, 'nobody'), frame(0, 0xff01, 77, 'hb')]));
    const pong = await peer.readFrame();
    expect(pong).toMatchObject({ flags: 0, type: 0xff02, seq: 77 });
    expect(pong.payload.toString()).toBe('hb');
    expect(pushes).toEqual(['0:news']);
    expect(c.counters.unhandled).toBe(1);
  });

  it('on CLOSE or a protocol error, rejects in-flight requests and reconnects', async () => {
    const { port, next } = await rawServer();
    const c = client({ port, reconnect: { initialDelay: 20 } });
    const errors: string[] = [];
    c.on('error', (error) => errors.push((error as { code: string }).code));
    await c.ready();
    const first = await next();
    const lost = codeOf(c.request(1, 'a'));
    await first.readFrame();
    first.write(frame(0, 0xff03, 0, 'server full'));
    expect(await lost).toBe('ECONNECTION_LOST');
    await first.waitClosed();
    const second = await next();
    await c.ready();
    const pending = codeOf(c.request(1, 'b'));
    await second.readFrame();
    second.write(Buffer.from([0x00, 0, 0, 1])); // bad magic
    expect(await pending).toBe('ECONNECTION_LOST');
    const close = await second.readFrame();
    expect(close.type).toBe(0xff03);
    expect(close.payload.toString()).toBe('protocol error: bad magic');
    await second.waitClosed();
    await next();
    expect(errors).toEqual(['ECLOSED_BY_PEER', 'EBAD_MAGIC']);
  });
});

describe('other framings', () => {
  it('line framing: write() encodes, message events deliver lines', async () => {
    const server = net.createServer((socket) => socket.pipe(socket));
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
    server.on('connection', (socket) => onTestFinished(() => socket.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const c = client({ port: (server.address() as net.AddressInfo).port, framing: 'line' });
    const lines: string[] = [];
    c.on('message', (line) => lines.push(line.toString()));
    c.write('one');
    c.write(Buffer.from('two'));
    await c.ready();
    c.write('three');
    while (lines.length < 3) await nextEvent(c, 'message');
    expect(lines).toEqual(['one', 'two', 'three']);
    expect(() => c.send(1, 'x')).toThrow(/option `framing`/);
    await expect(c.request(1, 'x')).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
  });
});
