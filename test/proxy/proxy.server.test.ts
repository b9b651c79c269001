/**
 * PROXY protocol on a listening server (docs/reliability.md T16 PROXY part, T39,
 * T40), in-process on every engine that receives it: remoteAddress from the
 * header, LOCAL/UNKNOWN and plain connect-close as health checks (no error),
 * malformed / untrusted / late headers aborted without a CLOSE frame and
 * counted, and nothing reaching handlers before a complete header.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import { resolveOptions, type ServerOptions } from '../../src/server/options';
import { createServer, type Server } from '../../src/server/server';
import type { Connection } from '../../src/server/connection';
import { startFixture } from '../helpers/fixture';
import { connectPeer, frame } from '../helpers/wire';
import { inet4, ssl, v2 } from '../helpers/proxy-fixtures/headers';

const RESPONSE = 1;

const cases: Array<{ name: string; options: ServerOptions }> = [];
if (tryLoadNative()) {
  cases.push({ name: 'native threads=1', options: { engine: 'native', threads: 1 } });
  cases.push({ name: 'native threads=2', options: { engine: 'native', threads: 2 } });
}
if (process.env.EDGEPOLL_PROXY_NET !== '0') cases.push({ name: 'net', options: { engine: 'net' } });

interface Started {
  server: Server;
  port: number;
  connections: Connection[];
  handled: number[];
  errors: Error[];
}

async function start(options: ServerOptions, trusted = ['127.0.0.1/8', '::1'], timeout = 400): Promise<Started> {
  const server = createServer({ ...options, heartbeat: false, proxyProtocol: { trusted, timeout } });
  onTestFinished(() => server.close());
  const started: Started = { server, port: 0, connections: [], handled: [], errors: [] };
  server.on('connection', (connection) => started.connections.push(connection));
  server.on('error', (error) => started.errors.push(error));
  server.handle(1, (payload) => {
    started.handled.push(1);
    return payload;
  });
  started.port = (await server.listen({ host: '127.0.0.1', port: 0 })).port;
  return started;
}

async function proxyErrors(server: Server): Promise<{ protocolErrors: number; proxyErrors: number }> {
  const stats = await server.stats();
  const proxy = stats.loops.reduce((total, loop) => total + (loop.proxyErrors ?? 0), 0);
  return { protocolErrors: stats.protocolErrors, proxyErrors: proxy };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean | Promise<boolean>, timeout = 3000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(10);
  }
}

describe.each(cases)('PROXY protocol on $name', ({ options }) => {
  it('takes remoteAddress from a v1 header and parses the frame in the same segment', async () => {
    const s = await start(options);
    const peer = await connectPeer(s.port);
    peer.write(Buffer.concat([Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 40123 7000\r\n'), frame(0, 1, 5, 'hello')]));
    expect(await peer.readFrame()).toEqual({ flags: RESPONSE, type: 1, seq: 5, payload: Buffer.from('hello') });
    expect(s.connections.map((c) => [c.remoteAddress, c.remotePort])).toEqual([['198.51.100.7', 40123]]);
  });

  it('connection.tls from a v2 header with SSL (version, CN, cipher), AUTHORITY and ALPN TLVs; undefined without them', async () => {
    const s = await start(options);
    const tlvs: Array<[number, Buffer]> = [
      [0x01, Buffer.from('edgepoll')],
      [0x02, Buffer.from('gw.example.com')],
      [0x20, ssl(0x07, 0, [[0x21, 'TLSv1.3'], [0x22, 'Gerät-42'], [0x23, 'TLS_AES_128_GCM_SHA256']])],
    ];
    const device = await connectPeer(s.port);
    device.write(Buffer.concat([v2(0x21, 0x11, inet4('203.0.113.5', '127.0.0.1', 40001, 443), tlvs, true), frame(0, 1, 1, 'a')]));
    expect((await device.readFrame()).seq).toBe(1);
    const unverified = await connectPeer(s.port);
    unverified.write(Buffer.concat([v2(0x21, 0x11, inet4('203.0.113.6', '127.0.0.1', 40002, 443), [[0x20, ssl(0x03, 18)]]), frame(0, 1, 2, 'b')]));
    expect((await unverified.readFrame()).seq).toBe(2);
    const plain = await connectPeer(s.port);
    plain.write(Buffer.concat([v2(0x21, 0x11, inet4('203.0.113.7', '127.0.0.1', 40003, 443), [[0x01, Buffer.from('h2')]]), frame(0, 1, 3, 'c')]));
    expect((await plain.readFrame()).seq).toBe(3);
    const v1 = await connectPeer(s.port);
    v1.write(Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.8 127.0.0.1 40004 443\r\n'), frame(0, 1, 4, 'd')]));
    expect((await v1.readFrame()).seq).toBe(4);
    const byPort = new Map(s.connections.map((c) => [c.remotePort, c]));
    expect(byPort.get(40001)?.remoteAddress).toBe('203.0.113.5');
    expect(byPort.get(40001)?.tls).toEqual({
      sni: 'gw.example.com',
      alpn: 'edgepoll',
      version: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256',
      clientCertificate: { present: true, verified: true, cn: 'Gerät-42' },
    });
    expect(byPort.get(40002)?.tls).toEqual({
      sni: undefined,
      alpn: undefined,
      version: undefined,
      cipher: undefined,
      clientCertificate: { present: true, verified: false, cn: undefined },
    });
    expect(byPort.get(40003)?.tls).toBeUndefined();
    expect(byPort.get(40004)?.tls).toBeUndefined();
    for (const peer of [device, unverified, plain, v1]) peer.destroy();
  });

  it('a malformed SSL TLV aborts the connection like any malformed header', async () => {
    const s = await start(options);
    const peer = await connectPeer(s.port);
    peer.write(Buffer.concat([v2(0x21, 0x11, inet4('203.0.113.5', '127.0.0.1', 1, 2), [[0x20, Buffer.from([7, 0, 0, 0])]]), frame(0, 1, 1, 'a')]));
    await until(async () => (await proxyErrors(s.server)).proxyErrors === 1);
    expect(s.connections).toEqual([]);
    expect(s.handled).toEqual([]);
  });

  it('takes remoteAddress from a v2 TCP6 header with TLVs, sent a byte at a time', async () => {
    // Reassembly, not the deadline, is under test (late headers: their own test): ~60 writes with a
    // 1 ms pause between them take this process well over 400 ms when its thread is starved.
    const s = await start(options, undefined, 10_000);
    const peer = await connectPeer(s.port);
    const block = Buffer.alloc(36);
    block.set(Buffer.from('20010db8000000000000000000000042', 'hex'), 0);
    block[31] = 1;
    block.writeUInt16BE(50505, 32);
    block.writeUInt16BE(7000, 34);
    const header = v2(0x21, 0x21, block, [[0x01, Buffer.from('h2')]], true);
    for (const byte of header.subarray(0, header.length - 1)) {
      peer.write(Uint8Array.of(byte));
      await sleep(1);
    }
    await sleep(50);
    expect(s.connections.length).toBe(0);
    peer.write(Buffer.concat([header.subarray(header.length - 1), frame(0, 1, 9, 'x')]));
    expect((await peer.readFrame()).seq).toBe(9);
    expect(s.connections.map((c) => [c.remoteAddress, c.remotePort])).toEqual([['2001:db8::42', 50505]]);
  });

  it('delivers nothing to handlers or connection listeners before the header is complete', async () => {
    const s = await start(options, undefined, 5000);
    const peer = await connectPeer(s.port);
    const header = Buffer.from('PROXY TCP4 192.0.2.1 127.0.0.1 1111 7000\r\n');
    peer.write(header.subarray(0, header.length - 1));
    await sleep(150);
    expect(s.connections.length).toBe(0);
    expect(s.handled.length).toBe(0);
    peer.write(Buffer.concat([header.subarray(header.length - 1), frame(0, 1, 2, 'after')]));
    expect((await peer.readFrame()).payload.toString()).toBe('after');
    expect(s.connections[0]!.remoteAddress).toBe('192.0.2.1');
  });

  it('treats v2 LOCAL, v1 UNKNOWN and a plain connect-close as health checks: real peer, no error', async () => {
    const s = await start(options);
    const local = await connectPeer(s.port);
    local.write(Buffer.concat([v2(0x20, 0x00, Buffer.alloc(0)), Buffer.from('EB00FF010000000000000001', 'hex')]));
    expect((await local.readBytes(12)).toString('hex')).toBe('eb00ff020000000000000001');
    const localPort = local.socket.localPort;
    local.destroy();
    const unknown = await connectPeer(s.port);
    unknown.write(Buffer.concat([Buffer.from('PROXY UNKNOWN\r\n'), frame(0, 1, 3, 'u')]));
    expect((await unknown.readFrame()).seq).toBe(3);
    const unknownPort = unknown.socket.localPort;
    unknown.socket.end();
    const plain = await connectPeer(s.port);
    plain.socket.end();
    await plain.waitClosed();
    await until(() => s.connections.length === 2 && s.connections.every((c) => c.closed));
    expect(s.connections.map((c) => c.remoteAddress)).toEqual(['127.0.0.1', '127.0.0.1']);
    // Matched by port, not by position: on two loops the two 'connection' events may come in either order.
    expect(s.connections.map((c) => c.remotePort).sort()).toEqual([localPort, unknownPort].sort());
    expect(await proxyErrors(s.server)).toEqual({ protocolErrors: 0, proxyErrors: 0 });
    expect(s.errors).toEqual([]);
  });

  const malformed: Array<[string, Buffer]> = [
    ['a v1 line with a lone \\n', Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n')],
    ['no CRLF within 107 bytes', Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}`)],
    ['a leading zero in an octet', Buffer.from('PROXY TCP4 010.0.0.1 10.0.0.2 1 2\r\n')],
    ['a v2 version nibble of 1', Buffer.concat([v2(0x11, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2))])],
    ['a v2 command of 2', v2(0x22, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2))],
    ['an edgepoll frame instead of a header', frame(0, 1, 1, 'x')],
  ];

  it.each(malformed)('aborts on %s: no CLOSE frame, counted, never reaches handlers', async (_case, bytes) => {
    const s = await start(options, undefined, 5000);
    const peer = await connectPeer(s.port);
    peer.write(Buffer.concat([bytes, frame(0, 1, 1, 'x')]));
    const rest = await peer.waitClosed();
    expect(rest.length).toBe(0);
    await until(async () => (await proxyErrors(s.server)).proxyErrors === 1);
    expect((await proxyErrors(s.server)).protocolErrors).toBe(1);
    expect(s.connections.length).toBe(0);
    expect(s.handled.length).toBe(0);
  });

  it('aborts a v2 header whose length runs beyond the data when the peer sends FIN', async () => {
    const s = await start(options, undefined, 5000);
    const peer = await connectPeer(s.port);
    const header = v2(0x21, 0x11, inet4('1.2.3.4', '5.6.7.8', 1, 2));
    header.writeUInt16BE(400, 14);
    peer.write(header);
    peer.socket.end();
    expect((await peer.waitClosed()).length).toBe(0);
    await until(async () => (await proxyErrors(s.server)).proxyErrors === 1);
    expect(s.connections.length).toBe(0);
  });

  it('aborts a connection whose header is not complete within the timeout', async () => {
    const s = await start(options, undefined, 300);
    const silent = await connectPeer(s.port);
    const partial = await connectPeer(s.port);
    partial.write('PROXY TCP4 ');
    const began = Date.now();
    await Promise.all([silent.waitClosed(3000), partial.waitClosed(3000)]);
    expect(Date.now() - began).toBeGreaterThanOrEqual(250);
    await until(async () => (await proxyErrors(s.server)).proxyErrors === 2);
    expect(s.connections.length).toBe(0);
  });

  it('aborts connections from sources outside the trusted list before reading', async () => {
    const s = await start(options, ['10.0.0.0/8']);
    const peer = await connectPeer(s.port);
    peer.write(Buffer.concat([Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), frame(0, 1, 1, 'x')]));
    expect((await peer.waitClosed()).length).toBe(0);
    await until(async () => (await proxyErrors(s.server)).proxyErrors === 1);
    expect(s.connections.length).toBe(0);
    expect(s.handled.length).toBe(0);
  });
});

describe('proxyProtocol option', () => {
  it('defaults to off, and to a 3 s header timeout when on (the spec minimum)', () => {
    expect(resolveOptions({}).proxyProtocol).toBe(false);
    expect(resolveOptions({ proxyProtocol: { trusted: ['127.0.0.1'] } }).proxyProtocol).toEqual({ trusted: ['127.0.0.1'], timeout: 3000 });
  });

  it.each([
    [{ trusted: [] }, 'proxyProtocol.trusted'],
    [{ trusted: ['10.0.0.0/33'] }, 'proxyProtocol.trusted'],
    [{ trusted: 'any' }, 'proxyProtocol.trusted'],
    [{ trusted: ['::1'], timeout: 0 }, 'proxyProtocol.timeout'],
    [true, 'proxyProtocol'],
  ])('rejects %j', (value, name) => {
    expect(() => resolveOptions({ proxyProtocol: value as never })).toThrow(`option \`${name}\` must be`);
  });

  it.skipIf(cases.length === 0)('keeps a silent connection at least 3 s with the default timeout (T16), then aborts it', async () => {
    const servers = await Promise.all(
      cases.map(async ({ options }) => {
        const server = createServer({ ...options, heartbeat: false, proxyProtocol: { trusted: ['127.0.0.1'] } });
        onTestFinished(() => server.close());
        return { server, port: (await server.listen({ port: 0 })).port };
      }),
    );
    const peers = await Promise.all(servers.map(({ port }) => connectPeer(port)));
    const began = Date.now();
    await sleep(2900);
    expect(peers.map((peer) => peer.closed || peer.ended)).toEqual(peers.map(() => false));
    await Promise.all(peers.map((peer) => peer.waitClosed(3000)));
    expect(Date.now() - began).toBeGreaterThanOrEqual(2900);
    for (const { server } of servers) expect((await proxyErrors(server)).proxyErrors).toBe(1);
  }, 10000);
});

describe('edgepoll serve --proxy-protocol', () => {
  const cli = path.join(__dirname, '..', '..', 'dist', 'cli', 'main.js');

  it.each(cases.map((c) => c.options.engine!).filter((engine, i, all) => all.indexOf(engine) === i))(
    'on %s: trusts loopback by default, reads the header, aborts a client without one',
    async (engine) => {
      const server = await startFixture({}, cli, ['serve', '--port', '0', '--engine', engine, '--proxy-protocol', '--proxy-timeout', '2000']);
      onTestFinished(() => void server.stop());
      const proxied = await connectPeer(server.port);
      proxied.write(Buffer.concat([Buffer.from('PROXY TCP6 2001:db8::9 ::1 4242 7000\r\n'), frame(0, 1, 1, 'via cli')]));
      expect((await proxied.readFrame()).payload.toString()).toBe('via cli');
      const direct = await connectPeer(server.port);
      direct.write(frame(0, 1, 2, 'no header'));
      expect((await direct.waitClosed()).length).toBe(0);
      proxied.write(frame(0, 3, 3));
      const stats = JSON.parse((await proxied.readFrame()).payload.toString());
      expect(stats.protocolErrors).toBe(1);
      expect(stats.loops.reduce((sum: number, loop: Record<string, number>) => sum + (loop.proxyErrors ?? 0), 0)).toBe(1);
    },
  );

  it('aborts loopback clients when --proxy-trusted leaves loopback out, and needs --proxy-protocol', async () => {
    const server = await startFixture({}, cli, ['serve', '--port', '0', '--proxy-protocol', '--proxy-trusted', '10.0.0.0/8,fd00::/8']);
    onTestFinished(() => void server.stop());
    const peer = await connectPeer(server.port);
    peer.write(Buffer.concat([Buffer.from('PROXY UNKNOWN\r\n'), frame(0, 1, 1, 'x')]));
    expect((await peer.waitClosed()).length).toBe(0);
    const alone = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--proxy-trusted', '10.0.0.0/8'], { encoding: 'utf8', timeout: 10_000 });
    expect(alone.status).not.toBe(0);
    expect(alone.stdout).toBe('');
    expect(alone.stderr).toContain('--proxy-protocol');
  });
});
