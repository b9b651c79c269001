/**
 * The client's `tls` option (issue 16): node:tls to a TLS terminator (a small
 * node:tls server piping to an edgepoll server on 127.0.0.1, certificates made
 * by openssl in the test) — requests and server pushes, the device
 * certificate, reconnect, heartbeat timeout and GOAWAY through TLS, a server
 * certificate from the wrong CA, option validation.
 * The real load balancers are in test/proxy/proxy.haproxy.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { describe, expect, it, onTestFinished } from 'vitest';
import type { Connection } from '../../src/server/connection';
import { createServer } from '../../src/server/server';
import { client, nextEvent } from '../helpers/client-fixtures/clients';
import { root } from '../helpers/fixture';
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-tls-'));
const certs: TestCertificates = makeCertificates(dir);
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));

interface Terminator {
  port: number;
  /** Client certificates' CNs as the terminator saw them, per TLS connection. */
  peers: Array<string | undefined>;
  sockets: Set<tls.TLSSocket>;
  /** Stop relaying bytes in both directions (a hung proxy). */
  blackhole(): void;
}

/** A TLS terminator: TLS in (asks for a client certificate), plain TCP to `backend`. */
async function terminator(backend: number): Promise<Terminator> {
  const sockets = new Set<tls.TLSSocket>();
  const peers: Array<string | undefined> = [];
  let holes = false;
  const server = tls.createServer({ cert: certs.server.cert, key: certs.server.key, ca: certs.ca, requestCert: true, rejectUnauthorized: false }, (socket) => {
    sockets.add(socket);
    const cn = socket.getPeerCertificate().subject?.CN;
    peers.push(socket.authorized ? (Array.isArray(cn) ? cn[0] : cn) : undefined);
    const upstream = net.connect(backend, '127.0.0.1');
    socket.on('data', (chunk) => holes || upstream.write(chunk));
    upstream.on('data', (chunk) => holes || socket.write(chunk));
    socket.on('close', () => {
      sockets.delete(socket);
      upstream.destroy();
    });
    upstream.on('close', () => socket.destroy());
    socket.on('error', () => {});
    upstream.on('error', () => {});
  });
  server.on('tlsClientError', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  onTestFinished(() => {
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as net.AddressInfo).port, peers, sockets, blackhole: () => (holes = true) };
}

async function edgepoll() {
  const server = createServer({ engine: 'net', drainTimeout: 2000 });
  const connections: Connection[] = [];
  server.on('connection', (connection) => connections.push(connection));
  server.handle(1, (payload) => Buffer.concat([Buffer.from('echo:'), payload]));
  const { port } = await server.listen({ host: '127.0.0.1', port: 0 });
  onTestFinished(() => server.close());
  return { server, port, connections };
}

const deviceTls = { ca: certs.ca, cert: certs.device.cert, key: certs.device.key };

describe('client tls option', () => {
  it('requests and server pushes/requests over TLS with a device certificate; SNI defaults to the host name', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    let sni: string | undefined;
    const c = client({ host: 'localhost', port: front.port, tls: { ...deviceTls, checkServerIdentity: (host, cert) => ((sni = host), tls.checkServerIdentity(host, cert)) } });
    const pushed = new Promise<Buffer>((resolve) => c.handle(7, (payload) => resolve(payload)));
    c.handle(8, (payload) => Buffer.concat([payload, Buffer.from('!')]));
    await c.ready();
    expect(sni).toBe('localhost');
    expect((await c.request(1, 'over tls')).toString()).toBe('echo:over tls');
    expect(front.peers).toEqual(['device-0042']);
    const connection = backend.connections[0]!;
    connection.send(7, 'push');
    expect((await pushed).toString()).toBe('push');
    expect((await connection.request(8, 'ask')).toString()).toBe('ask!');
  });

  it('reconnects over TLS after the connection drops, and sends what was queued', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    const c = client({ host: '127.0.0.1', port: front.port, tls: { ...deviceTls, servername: 'localhost' }, reconnect: { initialDelay: 10, maxDelay: 50 } });
    await c.ready();
    await c.request(1, 'before'); // the terminator has its socket only once it saw the client's Finished
    for (const socket of front.sockets) socket.destroy();
    await nextEvent(c, 'reconnecting');
    const reply = c.request(1, 'after');
    await nextEvent(c, 'open');
    expect((await reply).toString()).toBe('echo:after');
    expect(front.peers).toEqual(['device-0042', 'device-0042']);
  });

  it('a heartbeat timeout through a hung TLS proxy reconnects', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    const c = client({ host: '127.0.0.1', port: front.port, tls: { ...deviceTls, servername: 'localhost' }, heartbeat: { interval: 100, timeout: 200 }, reconnect: { initialDelay: 10, maxDelay: 50 } });
    const errors: string[] = [];
    c.on('error', (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
    await c.ready();
    front.blackhole();
    await nextEvent(c, 'reconnecting');
    expect(errors).toContain('EHEARTBEAT_TIMEOUT');
  });

  it('GOAWAY arrives through TLS when the server closes', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    const c = client({ host: '127.0.0.1', port: front.port, tls: { ...deviceTls, servername: 'localhost' }, reconnect: false });
    await c.request(1, 'before');
    const goaway = nextEvent(c, 'goaway');
    void backend.server.close();
    await goaway;
  });

  it('a server certificate from a CA it was not given fails the attempt with the TLS error as cause', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    const c = client({ host: '127.0.0.1', port: front.port, tls: { servername: 'localhost' }, reconnect: false });
    const error = await c.ready().then(
      () => undefined,
      (failure: Error & { code?: string; cause?: { code?: string } }) => failure,
    );
    expect(error?.code).toBe('ECONNECTION_LOST');
    expect(error?.cause?.code).toMatch(/^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/);
    expect(backend.connections).toEqual([]);
  });

  it('validates the option: an object or a boolean, without host/port/path/socket', () => {
    const code = (make: () => unknown): string | undefined => {
      try {
        make();
        return 'accepted';
      } catch (error) {
        return `${(error as { code?: string }).code} ${(error as Error).message}`;
      }
    };
    expect(code(() => client({ port: 1, tls: 5 as never }))).toMatch(/^EINVALID_OPTION .*tls/);
    expect(code(() => client({ port: 1, tls: null as never }))).toMatch(/^EINVALID_OPTION .*tls/);
    for (const key of ['host', 'port', 'path', 'socket']) {
      expect(code(() => client({ port: 1, tls: { [key]: 'x' } as never }))).toMatch(new RegExp(`^EINVALID_OPTION .*tls\\.${key}`));
    }
    expect(code(() => client({ port: 1, tls: false, reconnect: false }))).toBe('accepted');
    expect(code(() => client({ port: 1, tls: true, reconnect: false }))).toBe('accepted');
  });

  it('edgepoll request --ca --cert --key --servername goes through TLS; bad flag combinations exit 2, an untrusted server 1', async () => {
    const backend = await edgepoll();
    const front = await terminator(backend.port);
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    // Asynchronous: the terminator and the server run in this process.
    const request = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [cli, 'request', '--port', String(front.port), ...args]);
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (chunk) => (stdout += chunk));
        child.stderr.on('data', (chunk) => (stderr += chunk));
        child.on('exit', (code) => resolve({ code, stdout, stderr }));
      });
    const tlsFlags = ['--ca', certs.caPath, '--cert', certs.device.certPath, '--key', certs.device.keyPath, '--servername', 'localhost'];
    expect(await request([...tlsFlags, '--type', '1', 'hi', 'there'])).toEqual({ code: 0, stdout: 'echo:hi there\n', stderr: '' });
    expect(front.peers).toEqual(['device-0042']);
    const untrusted = await request(['--tls', '--servername', 'localhost', 'x']);
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(/ECONNECTION_LOST.*(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)/);
    const lonely = spawnSync(process.execPath, [cli, 'request', '--port', '1', '--cert', certs.device.certPath, 'x'], { encoding: 'utf8' });
    expect([lonely.status, lonely.stderr]).toEqual([2, expect.stringMatching(/--cert and --key go together/)]);
    const missing = spawnSync(process.execPath, [cli, 'request', '--port', '1', '--ca', path.join(dir, 'nope.crt'), 'x'], { encoding: 'utf8' });
    expect([missing.status, missing.stderr]).toEqual([2, expect.stringMatching(/--ca .*nope\.crt: ENOENT/)]);
  });
});
