/**
 * Real load balancers in front of edgepoll on loopback (docs/reliability.md T41):
 * Debian's HAProxy 2.6 (`send-proxy-v2` with `proxy-v2-options crc32c`, a `tcp-check` that sends
 * the exact PING bytes and expects the PONG bytes) and nginx 1.22 `stream`
 * with `proxy_protocol on` (v1). Both run as foreground child processes with
 * configs in a temporary directory and are killed in cleanup.
 * scripts/install-proxies.sh installs them; the suite is skipped, saying why,
 * when it cannot.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../src/engines/native/binding';
import type { Connection } from '../../src/server/connection';
import type { ServerOptions } from '../../src/server/options';
import { createServer, type Server } from '../../src/server/server';
import { connectPeer, frame } from '../helpers/wire';
import { freePort, installProxies, run, sleep, tempDir } from '../helpers/proxies';

const missing = installProxies();
if (missing) console.warn(`skipping test/proxy/proxy.haproxy.test.ts: ${missing}`);

const cases: Array<{ name: string; options: ServerOptions }> = [];
if (tryLoadNative()) cases.push({ name: 'native threads=2', options: { engine: 'native', threads: 2 } });
if (process.env.EDGEPOLL_PROXY_NET !== '0') cases.push({ name: 'net', options: { engine: 'net' } });

const PING = 'EB00FF010000000000000001';
const PONG = 'EB00FF020000000000000001';

interface Edgepoll {
  server: Server;
  connections: Connection[];
  errors: Error[];
}

async function startEdgepoll(options: ServerOptions, port = 0): Promise<Edgepoll & { port: number }> {
  const server = createServer({ ...options, drainTimeout: 200, proxyProtocol: { trusted: ['127.0.0.1/8', '::1'] } });
  onTestFinished(() => server.close());
  const started = { server, connections: [] as Connection[], errors: [] as Error[], port: 0 };
  server.on('connection', (connection) => started.connections.push(connection));
  server.on('error', (error) => started.errors.push(error));
  server.handle(1, (payload) => payload);
  started.port = (await server.listen({ host: '127.0.0.1', port })).port;
  return started;
}

/** The status column of `show stat` for backend be / server s1 (UP, DOWN, …). */
async function haproxyStatus(socketPath: string): Promise<string> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = net.connect({ path: socketPath });
    let data = '';
    socket.on('data', (chunk) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
    socket.write('show stat\n');
  });
  const lines = text.trim().split('\n');
  const columns = lines[0]!.replace(/^# /, '').split(',');
  const row = lines.find((line) => line.startsWith('be,s1,'));
  return row ? row.split(',')[columns.indexOf('status')]! : 'missing';
}

async function waitStatus(socketPath: string, wanted: RegExp, haproxy: { child: ChildProcess; output: () => string }): Promise<void> {
  const deadline = Date.now() + 15_000;
  let status = '';
  const output = haproxy.output;
  while (Date.now() < deadline && haproxy.child.exitCode === null) {
    status = await haproxyStatus(socketPath).catch(() => 'no socket yet');
    if (wanted.test(status)) return;
    await sleep(100);
  }
  throw new Error(`HAProxy server status ${status}, wanted ${wanted}; HAProxy said: ${output()}`);
}

async function proxyCounters(server: Server): Promise<{ protocolErrors: number; proxyErrors: number }> {
  const stats = await server.stats();
  return { protocolErrors: stats.protocolErrors, proxyErrors: stats.loops.reduce((sum, loop) => sum + (loop.proxyErrors ?? 0), 0) };
}

describe.skipIf(Boolean(missing) || cases.length === 0).each(cases)('behind real load balancers: $name', ({ options }) => {
  it('HAProxy send-proxy-v2 + tcp-check PING/PONG: UP, ECHO through it, addresses from the header, DOWN when stopped, UP again', async () => {
    let edgepoll = await startEdgepoll(options);
    const backendPort = edgepoll.port;
    const frontPort = await freePort();
    const dir = tempDir();
    const socketPath = path.join(dir, 'haproxy.sock');
    const config = [
      'global',
      `  stats socket ${socketPath} mode 600 level admin`,
      'defaults',
      '  mode tcp',
      '  timeout connect 1s',
      '  timeout client 10s',
      '  timeout server 10s',
      '  timeout check 1s',
      'frontend fe',
      `  bind 127.0.0.1:${frontPort}`,
      '  default_backend be',
      'backend be',
      '  option tcp-check',
      `  tcp-check send-binary ${PING}`,
      `  tcp-check expect binary ${PONG}`,
      `  server s1 127.0.0.1:${backendPort} send-proxy-v2 proxy-v2-options crc32c check inter 200 fall 2 rise 1`,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'haproxy.cfg'), config);
    const haproxy = run('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')]);
    await waitStatus(socketPath, /^UP/, haproxy);

    const client = await connectPeer(frontPort);
    client.write(frame(0, 1, 7, 'through haproxy'));
    expect(await client.readFrame()).toEqual({ flags: 1, type: 1, seq: 7, payload: Buffer.from('through haproxy') });
    const relayed = edgepoll.connections.find((connection) => connection.remotePort === client.socket.localPort);
    expect(relayed?.remoteAddress).toBe('127.0.0.1');
    client.destroy();

    await sleep(800); // a few more health checks
    expect(await proxyCounters(edgepoll.server)).toEqual({ protocolErrors: 0, proxyErrors: 0 });
    expect(edgepoll.errors).toEqual([]);
    // Health checks are LOCAL connections: the real peer, HAProxy's own port.
    expect(edgepoll.connections.length).toBeGreaterThan(2);

    await edgepoll.server.close();
    await waitStatus(socketPath, /^DOWN/, haproxy);
    edgepoll = await startEdgepoll(options, backendPort);
    await waitStatus(socketPath, /^UP/, haproxy);
    const again = await connectPeer(frontPort);
    again.write(frame(0, 1, 8, 'again'));
    expect((await again.readFrame()).seq).toBe(8);
    expect(edgepoll.connections.some((connection) => connection.remotePort === again.socket.localPort)).toBe(true);
    expect(await proxyCounters(edgepoll.server)).toEqual({ protocolErrors: 0, proxyErrors: 0 });
  }, 60_000);

  it('nginx stream proxy_protocol on (v1): ECHO through it, remoteAddress from the header', async () => {
    const edgepoll = await startEdgepoll(options);
    const frontPort = await freePort();
    const dir = tempDir();
    const config = [
      'load_module /usr/lib/nginx/modules/ngx_stream_module.so;',
      `pid ${path.join(dir, 'nginx.pid')};`,
      `error_log ${path.join(dir, 'error.log')} info;`,
      'worker_processes 1;',
      'events { worker_connections 64; }',
      'stream {',
      `  server { listen 127.0.0.1:${frontPort}; proxy_pass 127.0.0.1:${edgepoll.port}; proxy_protocol on; }`,
      '}',
      '',
    ].join('\n');
    fs.writeFileSync(path.join(dir, 'nginx.conf'), config);
    const nginx = run('nginx', ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;']);
    const deadline = Date.now() + 10_000;
    let client;
    while (!client) {
      client = await connectPeer(frontPort).catch(async (error: Error) => {
        if (Date.now() > deadline) throw new Error(`nginx did not listen: ${error.message}; ${nginx.output()}`);
        await sleep(100);
        return undefined;
      });
    }
    client.write(frame(0, 1, 3, 'through nginx'));
    expect(await client.readFrame()).toEqual({ flags: 1, type: 1, seq: 3, payload: Buffer.from('through nginx') });
    expect(edgepoll.connections.map((connection) => [connection.remoteAddress, connection.remotePort])).toEqual([
      ['127.0.0.1', client.socket.localPort],
    ]);
    expect(await proxyCounters(edgepoll.server)).toEqual({ protocolErrors: 0, proxyErrors: 0 });
  }, 30_000);
});
