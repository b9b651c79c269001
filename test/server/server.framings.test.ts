/** docs/PROTOCOL.md section 1: length, line and raw framings on every engine (echo demo). */
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectPeer } from '../helpers/wire';
import { engineCases, startFixture } from '../helpers/fixture';

async function fixture(options: Parameters<typeof startFixture>[0]) {
  const server = await startFixture(options);
  onTestFinished(async () => {
    await server.stop('SIGKILL');
  });
  return server;
}

function lengthMessage(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

describe.each(engineCases())('framings on $name', ({ options }) => {
  it('length: echoes 0, 1, maxFrame bytes and closes above maxFrame', async () => {
    const server = await fixture({ ...options, framing: 'length', maxFrame: 300 });
    const peer = await connectPeer(server.port);
    for (const size of [0, 1, 299, 300]) {
      const payload = Buffer.alloc(size, size & 0xff);
      const bytes = lengthMessage(payload);
      for (let i = 0; i < bytes.length; i += 7) peer.write(bytes.subarray(i, i + 7));
      const header = await peer.readBytes(4);
      expect(header.readUInt32BE()).toBe(size);
      expect((await peer.readBytes(size)).equals(payload)).toBe(true);
    }
    peer.write(lengthMessage(Buffer.alloc(301)));
    await peer.waitClosed();
  });

  it('line: strips \\r only before \\n, keeps empty lines and binary bytes', async () => {
    const server = await fixture({ ...options, framing: 'line', maxFrame: 100 });
    const peer = await connectPeer(server.port);
    peer.write('\nhello\r\nmid\rline\n\x00\xff\n');
    expect(await peer.readLine()).toBe('');
    expect(await peer.readLine()).toBe('hello');
    expect(await peer.readLine()).toBe('mid\rline');
    expect(Buffer.from(await peer.readLine(), 'latin1')).toEqual(Buffer.from('\x00\xff', 'utf8'));
    peer.write(Buffer.alloc(200, 0x61));
    await peer.waitClosed();
  });

  it('raw: echoes bytes as they come, and closes idle connections at idleTimeout', async () => {
    const server = await fixture({ ...options, framing: 'raw', idleTimeout: 400 });
    const peer = await connectPeer(server.port);
    const payload = Buffer.alloc(200_000);
    for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
    peer.write(payload);
    expect((await peer.readBytes(payload.length)).equals(payload)).toBe(true);
    const start = Date.now();
    await peer.waitClosed(3000);
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
  });
});
