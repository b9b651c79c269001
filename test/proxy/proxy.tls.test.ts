/**
 * TLS through real load balancers (issue 16; extends docs/reliability.md T39/T41): openssl
 * makes a CA, a server certificate and device certificates in the test;
 * HAProxy 2.6 terminates TLS with `verify required ca-file …` and
 * `send-proxy-v2-ssl-cn`, and nginx 1.22 `stream` terminates TLS with
 * `ssl_verify_client on` and `proxy_protocol on` (v1). Both run the README's
 * configuration blocks (`<!-- config: haproxy-tls -->`, `nginx-tls`) with
 * only ports and paths replaced. The edgepoll client (and `edgepoll request`)
 * connects with a device certificate; requests and pushes both ways work and
 * the handler sees `connection.tls` (CN, verified, SNI, ALPN, version,
 * cipher) on native, net and cluster. Clients without a certificate, or with
 * one from another CA, are refused at the proxy and never reach edgepoll.
 * The header HAProxy really sends is also captured raw and parsed by both
 * parsers (src/proxy/header.ts and native/proxy.cc through the probe).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import { connect } from '../../src/client/client';
import { connectionTls, decodeProxyTls, ProxyParser } from '../../src/proxy/header';
import type { ClientOptions } from '../../src/client/options';
import { engineCases, root, startFixture, type Fixture } from '../helpers/fixture';
import { freePort, installProxies, readmeConfig, run, substitute, tempDir, waitListening } from '../helpers/proxies';
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs';

const missing = installProxies();
if (missing) console.warn(`skipping test/proxy/proxy.tls.test.ts: ${missing}`);

const cases = engineCases().filter((c) => c.name !== 'native threads=1');
const cli = path.join(root, 'dist', 'cli', 'main.js');

/** edgepoll (test/helpers/fixture-server.js) trusting PROXY headers from loopback only. */
async function edgepoll(options: object): Promise<Fixture> {
  const fixture = await startFixture({ ...options, drainTimeout: 500, proxyProtocol: { trusted: ['127.0.0.1'] } });
  onTestFinished(() => fixture.stop('SIGKILL').then(() => undefined));
  return fixture;
}

function certificates(dir: string): TestCertificates {
  return makeCertificates(dir, 'device-0042');
}

/** The README's HAProxy block, on `front` → `backend`, with the certificates in `dir`. */
function startHaproxy(dir: string, front: number, backend: number) {
  const config = substitute(readmeConfig('haproxy-tls'), [
    ['bind :8443', `bind 127.0.0.1:${front}`],
    ['/etc/edgepoll/', `${dir}/`],
    ['127.0.0.1:7000', `127.0.0.1:${backend}`],
  ]);
  fs.writeFileSync(path.join(dir, 'haproxy.cfg'), config);
  return run('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')]);
}

/** The README's nginx block, with what a standalone nginx needs around it (module, pid, logs). */
function startNginx(dir: string, front: number, backend: number) {
  const block = substitute(readmeConfig('nginx-tls'), [
    ['listen 8443 ssl', `listen 127.0.0.1:${front} ssl`],
    ['/etc/edgepoll/', `${dir}/`],
    ['127.0.0.1:7000', `127.0.0.1:${backend}`],
  ]);
  const config = [
    'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
    `pid ${path.join(dir, 'nginx.pid')};`,
    `error_log ${path.join(dir, 'error.log')} info;`,
    'worker_processes 1;',
    'events { worker_connections 64; }',
    block,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'nginx.conf'), config);
  return run('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;']);
}

function client(options: ClientOptions) {
  const created = connect(options);
  created.on('error', () => {});
  onTestFinished(() => created.destroy());
  return created;
}

/** What a client without an acceptable certificate gets: the request's error code, then the 'error' events' codes. */
async function refused(options: ClientOptions): Promise<string> {
  const c = client({ ...options, reconnect: false, requestTimeout: 10_000 });
  const errors: string[] = [];
  c.on('error', (error: Error & { code?: string }) => errors.push(error.code ?? error.message));
  return c.request(1, 'let me in').then(
    () => 'accepted',
    (error: Error & { code?: string }) => [error.code, ...errors].join(' '),
  );
}

/** `edgepoll request` with the given flags; its exit code and output. */
function cliRequest(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [cli, 'request', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

async function connectionsSeen(fixture: Fixture, options: ClientOptions): Promise<number> {
  const stats = JSON.parse((await client(options).request(3, '')).toString()) as { accepted: number };
  return stats.accepted;
}

interface ProxyProbe {
  proxyParse(chunks: Uint8Array[]): { status: string; consumed: number; sourceAddress: string; sourcePort: number; tls: Buffer | null };
}

describe.skipIf(Boolean(missing))('TLS at real load balancers', () => {
  it("HAProxy's real send-proxy-v2-ssl-cn header, captured raw: both parsers read the same TLS details", async () => {
    const dir = tempDir();
    const certs = certificates(dir);
    let captured = Buffer.alloc(0);
    let gotHeader: () => void = () => {};
    const header = new Promise<void>((resolve) => (gotHeader = resolve));
    const raw = net.createServer((socket) => {
      socket.on('data', (chunk) => {
        captured = Buffer.concat([captured, chunk]);
        const parser = new ProxyParser();
        if (parser.feed(captured).status !== 'need-more') gotHeader();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    onTestFinished(() => new Promise<void>((resolve) => raw.close(() => resolve())));
    const front = await freePort();
    const haproxy = startHaproxy(dir, front, (raw.address() as net.AddressInfo).port);
    await waitListening(front, haproxy, 'HAProxy');
    const c = client({ host: '127.0.0.1', port: front, tls: { ca: certs.ca, cert: certs.device.cert, key: certs.device.key, servername: 'localhost', ALPNProtocols: ['edgepoll'] }, heartbeat: false });
    c.send(1, 'after the header');
    await header;

    const parser = new ProxyParser();
    const result = parser.feed(captured);
    expect(result.status).toBe('done');
    expect(parser.sourceAddress).toBe('127.0.0.1');
    const expected = {
      sni: 'localhost',
      alpn: 'edgepoll',
      version: expect.stringMatching(/^TLSv1\.[23]$/),
      cipher: expect.stringMatching(/^[A-Z0-9_-]+$/),
      clientCertificate: { present: true, verified: true, cn: 'device-0042' },
    };
    expect(connectionTls(parser.tls!)).toMatchObject(expected);
    const probe = tryLoadNative() as unknown as ProxyProbe | undefined;
    if (probe) {
      const native = probe.proxyParse([captured]);
      expect({ ...native, tls: undefined }).toMatchObject({ status: 'done', consumed: result.consumed, sourceAddress: '127.0.0.1', sourcePort: parser.sourcePort });
      expect(connectionTls(decodeProxyTls(native.tls!)!)).toEqual(connectionTls(parser.tls!));
    }
  }, 60_000);

  describe.each(cases)('HAProxy verify required + send-proxy-v2-ssl-cn → $name', ({ options }) => {
    it('a device certificate gets through: requests, pushes both ways, connection.tls with CN and verified; no or foreign certificate refused at HAProxy', async () => {
      const dir = tempDir();
      const certs = certificates(dir);
      const server = await edgepoll(options);
      const front = await freePort();
      const haproxy = startHaproxy(dir, front, server.port);
      await waitListening(front, haproxy, 'HAProxy');

      const device = { ca: certs.ca, cert: certs.device.cert, key: certs.device.key, servername: 'localhost', ALPNProtocols: ['edgepoll'] };
      const c = client({ host: '127.0.0.1', port: front, tls: device });
      // Server → client: a request (CALLBACK asks the client's type 20) and a push (BROADCAST).
      c.handle(20, (payload) => Buffer.concat([Buffer.from('device says '), payload]));
      const broadcast = new Promise<string>((resolve) => c.handle(2, (payload) => resolve(payload.toString())));
      expect((await c.request(1, 'hello through haproxy')).toString()).toBe('hello through haproxy');
      expect((await c.request(14, 'who?')).toString()).toBe('device says who?');
      c.send(30, '1'); // client → server pushes, checked by ORDER-RESULT
      c.send(30, '2');
      expect((await c.request(31)).toString()).toBe('2 0');
      await c.request(2, 'to everyone');
      expect(await broadcast).toBe('to everyone');

      const tls = JSON.parse((await c.request(33)).toString());
      expect(tls).toMatchObject({
        sni: 'localhost',
        alpn: 'edgepoll',
        version: expect.stringMatching(/^TLSv1\.[23]$/),
        cipher: expect.stringMatching(/^[A-Z0-9_-]+$/),
        clientCertificate: { present: true, verified: true, cn: 'device-0042' },
      });
      const [address, port] = (await c.request(32)).toString().split(' ');
      expect(address).toBe('127.0.0.1');
      expect(Number(port)).toBeGreaterThan(0);

      // edgepoll request with the TLS flags, as the README shows it.
      const ok = await cliRequest(['--port', String(front), '--ca', certs.caPath, '--cert', certs.device.certPath, '--key', certs.device.keyPath, '--servername', 'localhost', '--type', '1', 'from', 'the', 'cli']);
      expect(ok, haproxy.output()).toMatchObject({ code: 0, stdout: 'from the cli\n' });

      const before = await connectionsSeen(server, { host: '127.0.0.1', port: front, tls: device });
      // TLS 1.3: the refusal is an alert just after the client's handshake finished.
      expect(await refused({ host: '127.0.0.1', port: front, tls: { ca: certs.ca, servername: 'localhost' } })).toMatch(/^ECONNECTION_LOST .*ALERT_CERTIFICATE_REQUIRED/);
      expect(await refused({ host: '127.0.0.1', port: front, tls: { ca: certs.ca, cert: certs.rogue.cert, key: certs.rogue.key, servername: 'localhost' } })).toMatch(/^ECONNECTION_LOST .*ALERT_UNKNOWN_CA/);
      const noCert = await cliRequest(['--port', String(front), '--ca', certs.caPath, '--servername', 'localhost', 'x']);
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toMatch(/ECONNECTION_LOST/);
      // Only the STATS client itself got through since: the refused ones never reached edgepoll.
      expect(await connectionsSeen(server, { host: '127.0.0.1', port: front, tls: device })).toBe(before + 1);
    }, 60_000);
  });

  describe.each(cases)('nginx stream ssl_verify_client on + proxy_protocol (v1) → $name', ({ options }) => {
    it('a device certificate gets through with its address; no TLS details in v1; no certificate refused at nginx', async () => {
      const dir = tempDir();
      const certs = certificates(dir);
      const server = await edgepoll(options);
      const front = await freePort();
      const nginx = startNginx(dir, front, server.port);
      await waitListening(front, nginx, 'nginx');

      const device = { ca: certs.ca, cert: certs.device.cert, key: certs.device.key, servername: 'localhost' };
      const c = client({ host: '127.0.0.1', port: front, tls: device });
      c.handle(20, (payload) => payload);
      expect((await c.request(1, 'hello through nginx')).toString()).toBe('hello through nginx');
      expect((await c.request(14, 'echo back')).toString()).toBe('echo back');
      expect(JSON.parse((await c.request(33)).toString())).toBeNull();
      expect((await c.request(32)).toString()).toMatch(/^127\.0\.0\.1 [1-9]\d*$/);

      const before = await connectionsSeen(server, { host: '127.0.0.1', port: front, tls: device });
      expect(await refused({ host: '127.0.0.1', port: front, tls: { ca: certs.ca, servername: 'localhost' } }), nginx.output()).toMatch(/^ECONNECTION_LOST/);
      expect(await refused({ host: '127.0.0.1', port: front, tls: { ca: certs.ca, cert: certs.rogue.cert, key: certs.rogue.key, servername: 'localhost' } })).toMatch(/^ECONNECTION_LOST/);
      expect(await connectionsSeen(server, { host: '127.0.0.1', port: front, tls: device })).toBe(before + 1);
    }, 60_000);
  });
});
