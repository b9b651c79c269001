/**
 * docs/PROTOCOL.md section 2 on every engine, black-box: a fixture server in a
 * child process, raw sockets on 127.0.0.1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';
import { engineCases, startFixture, type Fixture } from '../helpers/fixture';

const RESPONSE = 1;
const ERROR = 2;

async function stats(peer: WirePeer, seq = 0xabc): Promise<Record<string, number>> {
  peer.write(frame(0, 3, seq));
  const reply = await peer.readFrame();
  expect(reply).toMatchObject({ type: 3, seq, flags: RESPONSE });
  return JSON.parse(reply.payload.toString());
}

async function expectProtocolClose(port: number, bytes: Buffer, reason: string): Promise<void> {
  const peer = await connectPeer(port);
  peer.write(bytes);
  const close = await peer.readFrame();
  expect(close.type).toBe(0xff03);
  expect(close.payload.toString()).toBe(reason);
  const rest = await peer.waitClosed();
  expect(rest.length).toBe(0);
}

describe.each(engineCases())('protocol on $name', ({ options }) => {
  let server: Fixture;
  beforeAll(async () => {
    server = await startFixture({ ...options, maxFrame: 1024 * 1024 });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('answers the exact PING bytes with the exact PONG bytes', async () => {
    const peer = await connectPeer(server.port);
    peer.write(Buffer.from('EB00FF010000000000000001', 'hex'));
    expect((await peer.readBytes(12)).toString('hex')).toBe('eb00ff020000000000000001');
    peer.write(frame(0, 0xff01, 7, 'abc'));
    expect(await peer.readFrame()).toEqual({ flags: 0, type: 0xff02, seq: 7, payload: Buffer.from('abc') });
  });

  it('echoes payloads of 0 … maxFrame bytes exactly', async () => {
    const peer = await connectPeer(server.port);
    const sizes = [0, 1, 11, 12, 13, 4096, 65536, 1024 * 1024 - 1, 1024 * 1024];
    for (const [i, size] of sizes.entries()) {
      const payload = Buffer.alloc(size);
      for (let j = 0; j < size; j++) payload[j] = (j * 31 + i) & 0xff;
      peer.write(frame(0, 1, i + 1, payload));
      const reply = await peer.readFrame(10000);
      expect(reply.flags).toBe(RESPONSE);
      expect(reply.seq).toBe(i + 1);
      expect(reply.type).toBe(1);
      expect(reply.payload.equals(payload)).toBe(true);
    }
  });

  it('reassembles a request sent one byte at a time', async () => {
    const peer = await connectPeer(server.port);
    const bytes = frame(0, 1, 42, 'fragmented');
    for (const byte of bytes) {
      peer.write(Buffer.from([byte]));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    expect(await peer.readFrame()).toEqual({ flags: RESPONSE, type: 1, seq: 42, payload: Buffer.from('fragmented') });
  });

  it('answers 100 frames sent in one write, in order', async () => {
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat(Array.from({ length: 100 }, (_, i) => frame(0, 1, i + 1, `m${i}`))));
    const replies = await peer.readFrames(100);
    expect(replies.map((r) => r.seq)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(replies.map((r) => r.payload.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
  });

  it('answers 1000 pipelined requests exactly once each', async () => {
    const peer = await connectPeer(server.port);
    for (let i = 1; i <= 1000; i++) peer.write(frame(0, 1, i, String(i)));
    const replies = await peer.readFrames(1000, 20000);
    const seen = new Set(replies.map((r) => r.seq));
    expect(seen.size).toBe(1000);
    for (const r of replies) expect(r.payload.toString()).toBe(String(r.seq));
  });

  it('pairs out-of-order replies of slow handlers by seq; pushes get no reply', async () => {
    const peer = await connectPeer(server.port);
    const delays = [60, 0, 30, 10, 45];
    delays.forEach((delay, i) => peer.write(frame(0, 13, i + 1, String(delay))));
    peer.write(frame(0, 13, 0, '5')); // a push: never answered
    const replies = await peer.readFrames(delays.length);
    expect(replies.map((r) => r.seq).sort()).toEqual([1, 2, 3, 4, 5]);
    for (const r of replies) expect(r.payload.toString()).toBe(String(delays[r.seq - 1]));
    peer.write(frame(0, 1, 99, 'after'));
    expect((await peer.readFrame()).seq).toBe(99);
  });

  it('answers a request of an unknown type with an error and keeps the connection', async () => {
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 0x1234, 5, 'x'));
    expect(await peer.readFrame()).toEqual({
      flags: RESPONSE | ERROR,
      type: 0x1234,
      seq: 5,
      payload: Buffer.from('unknown type 4660'),
    });
    peer.write(frame(0, 1, 6, 'still open'));
    expect((await peer.readFrame()).payload.toString()).toBe('still open');
  });

  it('drops and counts pushes of an unknown type, and RESPONSE frames nobody waits for', async () => {
    const peer = await connectPeer(server.port);
    const before = await stats(peer, 1);
    peer.write(frame(0, 0x1234, 0, 'nobody'));
    peer.write(frame(RESPONSE, 1, 777, 'stray'));
    const after = await stats(peer, 2);
    expect(after.unhandled - before.unhandled).toBe(1);
    expect(after.unmatched - before.unmatched).toBe(1);
    expect(after.connections).toBeGreaterThanOrEqual(1);
    expect(after.accepted).toBeGreaterThanOrEqual(1);
  });

  it('counts unhandled pushes over every connection (on cluster: summed over workers)', async () => {
    const peers = await Promise.all(Array.from({ length: 4 }, () => connectPeer(server.port)));
    const before = await stats(peers[0]!, 1);
    for (const p of peers) p.write(frame(0, 0x2345, 0, 'nobody'));
    // Each connection's push is handled once its next request is answered.
    await Promise.all(peers.map(async (p, i) => {
      p.write(frame(0, 1, 100 + i));
      await p.readFrame();
    }));
    const after = await stats(peers[0]!, 2);
    expect(after.unhandled - before.unhandled).toBe(4);
  });

  it('turns a throwing or rejecting handler into an ERROR reply without a stack', async () => {
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 10, 1));
    peer.write(frame(0, 11, 2));
    peer.write(frame(0, 12, 3));
    peer.write(frame(0, 17, 0)); // a push that throws: no reply
    const replies = (await peer.readFrames(3)).sort((a, b) => a.seq - b.seq);
    expect(replies.map((r) => [r.flags, r.payload.toString()])).toEqual([
      [RESPONSE | ERROR, 'boom'],
      [RESPONSE | ERROR, 'async boom'],
      [RESPONSE | ERROR, 'a plain string'],
    ]);
    peer.write(frame(0, 1, 4, 'alive'));
    expect(await peer.readFrame()).toMatchObject({ seq: 4, flags: RESPONSE });
  });

  it('lets the server ask the client (request/reply in the other direction)', async () => {
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 14, 9, 'question'));
    const ask = await peer.readFrame();
    expect(ask).toMatchObject({ type: 20, flags: 0 });
    expect(ask.seq).not.toBe(0);
    expect(ask.payload.toString()).toBe('question');
    peer.write(frame(RESPONSE, 20, ask.seq, 'answer'));
    expect(await peer.readFrame()).toEqual({ flags: RESPONSE, type: 14, seq: 9, payload: Buffer.from('answer') });
  });

  it('broadcasts to 50 connections exactly once each, sender included', async () => {
    const peers = await Promise.all(Array.from({ length: 50 }, () => connectPeer(server.port)));
    // Every connection is known to the server once it has answered a request.
    await Promise.all(peers.map(async (p, i) => {
      p.write(frame(0, 1, i + 1));
      await p.readFrame();
    }));
    peers[0]!.write(frame(0, 2, 77, 'to everyone'));
    const first = await peers[0]!.readFrames(2);
    expect(first.find((f) => f.seq === 77)).toMatchObject({ flags: RESPONSE, type: 2, payload: Buffer.alloc(0) });
    expect(first.find((f) => f.seq === 0)).toMatchObject({ flags: 0, type: 2, payload: Buffer.from('to everyone') });
    for (const p of peers.slice(1)) {
      expect(await p.readFrame()).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('to everyone') });
    }
    // exactly once: a following echo is the very next frame everywhere
    await Promise.all(peers.map(async (p, i) => {
      p.write(frame(0, 1, 1000 + i, 'next'));
      expect((await p.readFrame()).seq).toBe(1000 + i);
    }));
  });

  describe('protocol errors close only the offender', () => {
    const cases: Array<[string, Buffer, string]> = [
      ['bad magic', Buffer.from('00000001000000000000000001', 'hex'), 'protocol error: bad magic'],
      ['an HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'protocol error: bad magic'],
      ['a TLS ClientHello', Buffer.from('160301020001', 'hex'), 'protocol error: bad magic'],
      ['a PROXY v1 line', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'protocol error: bad magic'],
      ['reserved flag bits', frame(0x04, 1, 1), 'protocol error: reserved flags'],
      ['flag bit 7', frame(0x80, 1, 1), 'protocol error: reserved flags'],
      ['type 0', frame(0, 0, 1), 'protocol error: invalid type'],
      ['control type 0xFF00', frame(0, 0xff00, 1), 'protocol error: unknown control type'],
      ['control type 0xFF05', frame(0, 0xff05, 1), 'protocol error: unknown control type'],
      ['control type 0xFFFF', frame(0, 0xffff, 1), 'protocol error: unknown control type'],
      ['GOAWAY from a client', frame(0, 0xff04, 0), 'protocol error: goaway from client'],
      ['a 65-byte PING', frame(0, 0xff01, 1, Buffer.alloc(65)), 'protocol error: ping payload too large'],
      ['a length above maxFrame', Buffer.from('EB0000010010000100000001', 'hex'), 'frame too large'],
      ['length 0xFFFFFFFF', Buffer.from('EB000001FFFFFFFF00000001', 'hex'), 'frame too large'],
    ];
    it.each(cases)('%s', async (_name, bytes, reason) => {
      const bystander = await connectPeer(server.port);
      await expectProtocolClose(server.port, bytes, reason);
      bystander.write(frame(0, 1, 3, 'unaffected'));
      expect((await bystander.readFrame()).payload.toString()).toBe('unaffected');
    });

    it('delivers nothing that follows a bad header', async () => {
      const peer = await connectPeer(server.port);
      const before = await stats(peer, 1);
      await expectProtocolClose(server.port, Buffer.concat([frame(0x04, 1, 1), frame(0, 0x1234, 0, 'after')]), 'protocol error: reserved flags');
      const after = await stats(peer, 2);
      expect(after.unhandled).toBe(before.unhandled);
    });
  });

  it('closes after the peer sends CLOSE, and ignores a PONG nobody asked for', async () => {
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 0xff02, 5));
    peer.write(frame(0, 1, 1, 'still here'));
    expect((await peer.readFrame()).payload.toString()).toBe('still here');
    peer.write(frame(0, 0xff03, 0, 'bye'));
    await peer.waitClosed();
  });
});
