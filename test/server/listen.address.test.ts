/**
 * Where a server listens (issue 12): `listen({ host: '::' })` is dual-stack
 * (IPv6 and IPv4-mapped peers) and `listen({ path })` is a Unix socket, on
 * every engine (native with 1 and 2 loops, net, cluster), reached by the
 * client's `connect({ host: '::1' })` and `connect({ path })`. A Unix socket
 * peer has no address ('' and port 0), so the PROXY protocol trusts it only
 * through the entry 'unix'. The server unlinks its socket file when it stops
 * and never removes a file it did not make.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import { connect, createServer, type ServerOptions } from '../../src/index';
import { engineCases, startFixture } from '../helpers/fixture';
import { WirePeer, frame } from '../helpers/wire';

const PEER = 32; // fixture-server.js: replies `remoteAddress remotePort`
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-unix-'));
let sockets = 0;
const socketPath = (): string => path.join(dir, `s${++sockets}.sock`);
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function client(options: Parameters<typeof connect>[0]) {
  const c = connect({ reconnect: false, ...options });
  c.on('error', () => undefined);
  onTestFinished(() => c.destroy());
  return c;
}

async function unixPeer(file: string): Promise<WirePeer> {
  const socket = net.connect({ path: file });
  const peer = new WirePeer(socket);
  onTestFinished(() => void socket.destroy());
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return peer;
}

describe.each(engineCases())('listen addresses on $name', ({ options }) => {
  it("host '::' is dual-stack: IPv4 peers (IPv4-mapped) and IPv6 peers are served", async () => {
    const server = await startFixture({ ...options, host: '::' });
    onTestFinished(async () => void (await server.stop('SIGKILL')));
    expect(server.stdout[0]).toMatch(/^listening on :::\d+$/);

    const v4 = client({ host: '127.0.0.1', port: server.port });
    expect((await v4.request(1, 'over v4')).toString()).toBe('over v4');
    expect((await v4.request(PEER)).toString()).toMatch(/^::ffff:127\.0\.0\.1 \d+$/);

    const v6 = client({ host: '::1', port: server.port });
    expect((await v6.request(1, 'over v6')).toString()).toBe('over v6');
    expect((await v6.request(PEER)).toString()).toMatch(/^::1 \d+$/);
  });

  it('path listens on a Unix socket that connect({ path }) reaches; the file is gone after the server stops', async () => {
    const file = socketPath();
    const server = await startFixture({ ...options, path: file });
    onTestFinished(async () => void (await server.stop('SIGKILL')));
    expect(server.stdout[0]).toBe(`listening on ${file}:0`);
    expect(fs.statSync(file).isSocket()).toBe(true);

    const c = client({ path: file });
    const echoes = await Promise.all(Array.from({ length: 20 }, (_, i) => c.request(1, `u${i}`)));
    expect(echoes.map(String)).toEqual(Array.from({ length: 20 }, (_, i) => `u${i}`));
    // A Unix socket peer has no address.
    expect((await c.request(PEER)).toString()).toBe(' 0');
    c.close();

    expect(await server.stop('SIGTERM')).toBe(0);
    expect(fs.existsSync(file)).toBe(false);
  });
});

// In-process (a cluster worker's options are its script's): the address the API reports, errors, PROXY.
const local: Array<{ name: string; options: ServerOptions }> = [
  ...(tryLoadNative() ? [{ name: 'native threads=2', options: { engine: 'native', threads: 2 } as ServerOptions }] : []),
  { name: 'net', options: { engine: 'net' } },
];

describe.each(local)('Unix sockets in-process on $name', ({ options }) => {
  function server(extra: ServerOptions = {}) {
    const s = createServer({ ...options, ...extra });
    s.handle(1, (payload) => payload);
    s.handle(PEER, (_payload, { connection }) => `${connection.remoteAddress} ${connection.remotePort}`);
    onTestFinished(() => s.close());
    return s;
  }

  it('address() reports the path (host "", port 0); close() unlinks the file', async () => {
    const file = socketPath();
    const s = server();
    expect(await s.listen({ path: file })).toEqual({ host: '', port: 0, path: file });
    expect(s.address()).toEqual({ host: '', port: 0, path: file });
    const c = client({ path: file });
    expect((await c.request(1, 'x')).toString()).toBe('x');
    await s.close();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('an existing file at the path fails with EADDRINUSE and is left alone', async () => {
    const file = socketPath();
    fs.writeFileSync(file, 'not ours');
    await expect(server().listen({ path: file })).rejects.toMatchObject({ name: 'EdgepollError', code: 'EADDRINUSE' });
    expect(fs.readFileSync(file, 'utf8')).toBe('not ours');
  });

  // native only: node:net (libuv) unlinks whatever is at the path when it closes.
  it.skipIf(options.engine !== 'native')('a socket file replaced while listening is not unlinked by close()', async () => {
    const file = socketPath();
    const s = server();
    await s.listen({ path: file });
    fs.rmSync(file);
    fs.writeFileSync(file, 'someone else');
    await s.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('someone else');
  });

  it("PROXY protocol on a Unix socket: the trusted entry 'unix' admits the local proxy and takes the header's address", async () => {
    const file = socketPath();
    await server({ proxyProtocol: { trusted: ['unix'] } }).listen({ path: file });
    const peer = await unixPeer(file);
    peer.write(Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 40000 7000\r\n'), frame(0, PEER, 5)]));
    const reply = await peer.readFrame();
    expect(reply.payload.toString()).toBe('203.0.113.7 40000');
  });

  it('PROXY protocol on a Unix socket without the entry unix: the peer is not trusted and is closed unserved', async () => {
    const file = socketPath();
    await server({ proxyProtocol: { trusted: ['127.0.0.1'] } }).listen({ path: file });
    const peer = await unixPeer(file);
    peer.write(Buffer.concat([Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 40000 7000\r\n'), frame(0, PEER, 5)]));
    expect((await peer.waitClosed()).length).toBe(0);
  });
});

describe.each(local)("PROXY protocol on a dual-stack '::' listener on $name", ({ options }) => {
  it('an IPv4 peer arrives IPv4-mapped and still matches a trusted IPv4 entry; an IPv6 peer needs its own', async () => {
    const s = createServer({ ...options, proxyProtocol: { trusted: ['127.0.0.1'] } });
    s.handle(PEER, (_payload, { connection }) => `${connection.remoteAddress} ${connection.remotePort}`);
    onTestFinished(() => s.close());
    const { port } = await s.listen({ host: '::', port: 0 });
    const header = Buffer.from('PROXY TCP4 203.0.113.7 192.0.2.1 40000 7000\r\n');
    const v4 = new WirePeer(net.connect({ host: '127.0.0.1', port }));
    onTestFinished(() => v4.destroy());
    v4.write(Buffer.concat([header, frame(0, PEER, 5)]));
    expect((await v4.readFrame()).payload.toString()).toBe('203.0.113.7 40000');
    const v6 = new WirePeer(net.connect({ host: '::1', port }));
    onTestFinished(() => v6.destroy());
    v6.write(Buffer.concat([header, frame(0, PEER, 5)]));
    expect((await v6.waitClosed()).length).toBe(0);
  });
});

describe('path options are validated', () => {
  it('listen({ path }) refuses an empty, too long or NUL path, and path with host or port', async () => {
    const bad = [{ path: '' }, { path: `/tmp/${'x'.repeat(120)}` }, { path: '/tmp/a\0b' }, { path: socketPath(), port: 1 }, { path: socketPath(), host: '::' }];
    for (const listen of bad) {
      const s = createServer({ engine: 'net' });
      onTestFinished(() => s.close());
      await expect(s.listen(listen)).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    }
  });

  it('connect({ path }) refuses a bad path and path with host or port; needs port or path', () => {
    const invalid = (message: RegExp) => expect.objectContaining({ code: 'EINVALID_OPTION', message: expect.stringMatching(message) });
    expect(() => connect({ path: '' })).toThrow(invalid(/`path` must be a non-empty file path/));
    expect(() => connect({ path: `/tmp/${'x'.repeat(120)}` })).toThrow(invalid(/at most 107 bytes/));
    expect(() => connect({ path: '/tmp/x.sock', port: 7000 })).toThrow(invalid(/excludes host and port/));
    expect(() => connect({ path: '/tmp/x.sock', host: '::1' })).toThrow(invalid(/excludes host and port/));
    expect(() => connect({})).toThrow(expect.objectContaining({ code: 'EINVALID_OPTION' }));
  });
});
