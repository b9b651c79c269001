/**
 * Issue 11 item 4: whatever the peers do, a graceful shutdown ends within
 * drainTimeout + 1 s, on every engine: server.close() resolves (the fixture
 * exits 0 once it has) and `edgepoll serve` exits 0. The peers ignore GOAWAY
 * and CLOSE and never close their sockets: one reads and drops everything,
 * one never reads with megabytes of replies queued for it, one waits for a
 * reply that takes a minute.
 */
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { engineCases, root, startFixture, type Fixture } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { frame } from '../helpers/wire';

const drainTimeout = 500;
const TYPE_ECHO = 1;
const TYPE_SLOW = 13; // fixture-server.js: answers after the ms in the payload
const TYPE_BIG = 15; // fixture-server.js: answers with as many bytes as the payload says

/** A socket that never ends, never closes, ignores what it gets; `reading` false = never reads. */
function stubborn(port: number, reading: boolean): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  onTestFinished(() => void socket.destroy());
  socket.on('error', () => undefined);
  if (reading) socket.on('data', () => undefined);
  else socket.pause();
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

async function stubbornPeers(port: number, stuff: (socket: net.Socket) => void, slow?: (socket: net.Socket) => void) {
  const reader = await stubborn(port, true);
  const nonReader = await stubborn(port, false);
  stuff(nonReader);
  if (slow) slow(reader);
  // Let the server take the requests and queue the replies.
  await new Promise((resolve) => setTimeout(resolve, 400));
}

async function stopTimed(server: Fixture): Promise<{ code: number | null; took: number }> {
  const started = Date.now();
  const code = await server.stop('SIGTERM');
  return { code, took: Date.now() - started };
}

describe.each(engineCases())('shutdown past drainTimeout on $name', ({ options }) => {
  it('server.close() resolves and the process exits 0 within drainTimeout + 1 s, whatever the peers do', async () => {
    const server = await startServer({ ...options, drainTimeout, heartbeat: false });
    await stubbornPeers(
      server.port,
      (socket) => socket.write(frame(0, TYPE_BIG, 1, String(6 * 1024 * 1024))),
      (socket) => socket.write(frame(0, TYPE_SLOW, 1, '60000')),
    );
    const { code, took } = await stopTimed(server);
    expect(code).toBe(0);
    expect(took, `exit ${took} ms after SIGTERM`).toBeLessThan(drainTimeout + 1000);
  });

  it('`edgepoll serve` exits 0 within drainTimeout + 1 s, whatever the peers do', async () => {
    const args = ['serve', '--host', '127.0.0.1', '--port', '0', '--drain-timeout', String(drainTimeout)];
    args.push('--engine', options.engine!);
    if (options.threads) args.push('--threads', String(options.threads));
    if (options.workers) args.push('--workers', String(options.workers));
    const server = await startFixture({}, path.join(root, 'dist', 'cli', 'main.js'), args);
    onTestFinished(async () => {
      await server.stop('SIGKILL');
    });
    const echo = Buffer.alloc(900 * 1024, 0x62);
    await stubbornPeers(server.port, (socket) => {
      for (let i = 1; i <= 7; i++) socket.write(frame(0, TYPE_ECHO, i, echo));
    });
    const { code, took } = await stopTimed(server);
    expect(code).toBe(0);
    expect(took, `exit ${took} ms after SIGTERM`).toBeLessThan(drainTimeout + 1000);
  });
});
