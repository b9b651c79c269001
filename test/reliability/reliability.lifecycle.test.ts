/**
 * docs/reliability.md T19-T38 gaps that run in seconds: EMFILE, maxConnections
 * counts, churn with resets, data then FIN, half-close, RST during a large write, replies after the peer is
 * gone, worker_threads, listen errors. Black-box on every engine unless an
 * entry needs in-process events (then native and net).
 */
import { execFileSync, fork } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, type Connection } from '../../src/index';
import { tryLoadNative } from '../../src/engines/native/binding';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';
import { echo, stats } from '../helpers/demo-requests';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { cpuTicks, fdCount, processTree, settle, sleep } from '../helpers/reliability-fixtures/proc';

const hasNative = tryLoadNative() !== undefined;
const inProcessEngines = [...(hasNative ? (['native'] as const) : []), 'net'] as const;

/** Opens a plain socket; resolves on connect or error (never rejects). */
function rawSocket(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: '127.0.0.1' });
  onTestFinished(() => void socket.destroy());
  socket.on('error', () => undefined);
  return new Promise((resolve) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', () => resolve(socket));
  });
}

describe.each(engineCases())('lifecycle limits on $name', ({ options }) => {
  it('T19 EMFILE: no busy loop, existing connections work, new ones succeed once fds free up', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const existing = await Promise.all(Array.from({ length: 5 }, () => connectPeer(server.port)));
    for (const [i, peer] of existing.entries()) await echo(peer, i + 1);
    // Limit every process of the server (cluster workers too) to 64 fds, or a
    // little above what it already holds, hard limit included.
    for (const pid of processTree(server.child.pid!)) {
      const limit = Math.max(64, fdCount(pid) + 16);
      execFileSync('prlimit', [`--pid=${pid}`, `--nofile=${limit}:${limit}`]);
    }
    const fdsBefore = fdCount(server.child.pid!);
    const flood = await Promise.all(Array.from({ length: 200 }, () => rawSocket(server.port)));
    // Let the server work through the flood first (a starved server can still be accepting it
    // after a fixed 500 ms): wait for a quiet 500 ms, at most 6 s. A server that spins on EMFILE
    // never has one, and the 2.5 s measured next shows it.
    for (const deadline = Date.now() + 6000; Date.now() < deadline; ) {
      const ticks = cpuTicks(server.child.pid!);
      await sleep(500);
      if (cpuTicks(server.child.pid!) - ticks < 10) break;
    }
    const cpuBefore = cpuTicks(server.child.pid!);
    await sleep(2500);
    const cpuTicksUsed = cpuTicks(server.child.pid!) - cpuBefore;
    // Idle is ~0 ticks; a listener spinning on EMFILE burns ~100 ticks a second per thread.
    expect(cpuTicksUsed).toBeLessThan(40);
    for (const [i, peer] of existing.entries()) await echo(peer, 100 + i);
    for (const socket of flood.slice(0, 50)) socket.destroy();
    await sleep(200);
    for (const socket of flood.slice(50)) socket.destroy();
    // "Once fds free up": wait (up to 10 s) for the server to hold about what it held before the
    // flood (a fixed sleep raced a loaded server still closing them, so a fresh peer met EMFILE).
    // A wait, not an assertion: a cluster primary may keep an fd or two; the fresh peers below prove it.
    await settle(() => fdCount(server.child.pid!), (n) => n <= fdsBefore + 4, 10_000);
    const fresh = [];
    for (let i = 0; i < 10; i++) {
      const peer = await connectPeer(server.port);
      await echo(peer, 200 + i);
      fresh.push(peer);
    }
    expect(server.child.exitCode).toBe(null);
    // The engine reports EMFILE (rate-limited), net through libuv or itself.
    if (options.engine === 'native') {
      const reports = server.stderr().split('\n').filter((line) => /EMFILE/.test(line)).length;
      expect(reports).toBeGreaterThanOrEqual(1);
      expect(reports).toBeLessThanOrEqual(2 * 6 * 2);
    }
  });

  it('T20 maxConnections 10: exactly 10 served of 20, counters exact, a freed slot admits one', async () => {
    const server = await startServer({ ...options, maxConnections: 10, heartbeat: false });
    const served: WirePeer[] = [];
    for (let i = 0; i < 10; i++) {
      const peer = await connectPeer(server.port);
      await echo(peer, 1);
      served.push(peer);
    }
    const before = await stats(served[0]!, 2);
    const extra = await Promise.all(Array.from({ length: 10 }, () => connectPeer(server.port)));
    for (const peer of extra) {
      expect(await peer.readFrame()).toMatchObject({ type: 0xff03, payload: Buffer.from('server full') });
      await peer.waitClosed();
    }
    const after = await stats(served[0]!, 3);
    expect(after.connections).toBe(10);
    expect(after.accepted - before.accepted).toBe(0);
    expect(after.rejected - before.rejected).toBe(10);
    served[3]!.destroy();
    let admitted: WirePeer | undefined;
    for (let i = 0; i < 30 && !admitted; i++) {
      const again = await connectPeer(server.port);
      again.write(frame(0, 1, 5, 'in'));
      const reply = await again.readFrame().catch(() => undefined);
      if (reply?.type === 1) admitted = again;
      else await sleep(100);
    }
    expect(admitted).toBeDefined();
    const final = await stats(served[0]!, 4);
    expect(final.connections).toBe(10);
    expect(final.accepted - before.accepted).toBe(1);
  });

  it('T22 2000 connect/close cycles, half reset before a read: fds return to baseline', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const probe = await connectPeer(server.port);
    await echo(probe, 1);
    const baseline = fdCount(server.child.pid!);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 2000) {
        const i = next++;
        const socket = await rawSocket(server.port);
        if (i % 2 === 0) socket.resetAndDestroy();
        else {
          socket.write(frame(0, 1, 1, 'x'));
          await new Promise((resolve) => {
            socket.once('data', resolve);
            socket.once('close', resolve);
          });
          socket.end();
        }
      }
    };
    await Promise.all(Array.from({ length: 20 }, worker));
    const settled = await settle(() => fdCount(server.child.pid!), (n) => n <= baseline, 10_000);
    expect(settled).toBeLessThanOrEqual(baseline);
    await echo(probe, 2);
    const counters = await stats(probe, 3);
    expect(counters.connections).toBe(1);
  });

  it('T26 10 requests then FIN (shutdown SHUT_WR): all 10 replies, then the server closes', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const peer = await connectPeer(server.port);
    peer.socket.end(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame(0, 1, i + 1, `r${i + 1}`))));
    const replies = await peer.readFrames(10, 5000);
    expect(replies.map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect((await peer.waitClosed()).length).toBe(0);
  });

  it('T29 half-close with slow handlers in flight: all replies arrive, then the server closes', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const peer = await connectPeer(server.port);
    const requests = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? frame(0, 1, i + 1, `r${i + 1}`) : frame(0, 13, i + 1, '300')));
    peer.socket.end(Buffer.concat(requests));
    const start = Date.now();
    const replies = await peer.readFrames(10, 5000);
    expect(replies.map((r) => r.seq).sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(Date.now() - start).toBeGreaterThanOrEqual(250);
    expect((await peer.waitClosed()).length).toBe(0);
  });

  it('T30 a reset during a 50 MiB reply frees the queue and the fd, and others are served', async () => {
    const server = await startServer({ ...options, heartbeat: false, maxBufferedAmount: 128 * 1024 * 1024 });
    const bystander = await connectPeer(server.port);
    await echo(bystander, 1);
    const baseline = fdCount(server.child.pid!);
    for (let round = 0; round < 3; round++) {
      const peer = await connectPeer(server.port);
      peer.write(frame(0, 15, 1, String(50 * 1024 * 1024)));
      await peer.readBytes(1024 * 1024, 10_000);
      peer.socket.resetAndDestroy();
      await echo(bystander, 10 + round);
    }
    expect(await settle(() => fdCount(server.child.pid!), (n) => n <= baseline, 5000)).toBeLessThanOrEqual(baseline);
    expect(server.child.exitCode).toBe(null);
  });

  it('T32 a reply due after the peer closed is dropped quietly', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    for (let i = 0; i < 5; i++) {
      const peer = await connectPeer(server.port);
      peer.write(frame(0, 13, 1, '600'));
      await sleep(100);
      if (i % 2 === 0) peer.socket.resetAndDestroy();
      else peer.destroy();
    }
    await sleep(800);
    const probe = await connectPeer(server.port);
    await echo(probe, 1);
    expect(server.child.exitCode).toBe(null);
    expect(server.stderr()).not.toMatch(/unhandled|Unhandled|fixture error/);
  });
});

describe.each(inProcessEngines)('in-process events on %s', (engine) => {
  it('T26 data then FIN: handlers run for all 10 before end; exactly one end and one close', async () => {
    const server = createServer({ engine, heartbeat: false, drainTimeout: 100 });
    onTestFinished(() => server.close());
    const seen: string[] = [];
    server.handle(1, (payload) => {
      seen.push(`message ${payload.toString()}`);
      return payload;
    });
    server.on('connection', (connection: Connection) => {
      connection.on('end', () => seen.push('end'));
      connection.on('close', () => seen.push('close'));
    });
    const { port } = await server.listen();
    const peer = await connectPeer(port);
    peer.socket.end(Buffer.concat(Array.from({ length: 10 }, (_, i) => frame(0, 1, i + 1, String(i + 1)))));
    expect((await peer.readFrames(10)).map((r) => r.seq)).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    await peer.waitClosed();
    await settle(() => seen.includes('close'), Boolean, 3000);
    await sleep(100);
    const messages = Array.from({ length: 10 }, (_, i) => `message ${i + 1}`);
    expect(seen.filter((e) => e !== 'end')).toEqual([...messages, 'close']);
    expect(seen.filter((e) => e === 'end').length).toBeLessThanOrEqual(1);
  });

  it('T32 a reply after the peer left is dropped; send() on it throws ECONNECTION_CLOSED; no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    onTestFinished(() => void process.off('unhandledRejection', onUnhandled));
    const server = createServer({ engine, heartbeat: false, drainTimeout: 100 });
    onTestFinished(() => server.close());
    const errors: Error[] = [];
    server.on('error', (error) => errors.push(error));
    let late: unknown;
    server.handle(13, async (_payload, { connection }) => {
      await sleep(500);
      try {
        connection.send(7, 'late push');
      } catch (error) {
        late = error;
      }
      return 'late reply';
    });
    const { port } = await server.listen();
    const peer = await connectPeer(port);
    peer.write(frame(0, 13, 1));
    await sleep(100);
    // A reset, not a FIN: after a FIN the server cannot tell a half-close from
    // a close until it writes, so it keeps the connection for the reply.
    peer.socket.resetAndDestroy();
    await sleep(700);
    expect(late).toMatchObject({ code: 'ECONNECTION_CLOSED' });
    expect(unhandled).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('T37 two worker_threads listen at once; terminating one leaves the other and the main thread serving', async () => {
    const child = fork(path.join(__dirname, '..', 'helpers', 'reliability-fixtures', 'workers.js'), [engine], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (chunk) => (stdout += chunk));
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const code = await new Promise((resolve) => child.on('exit', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const outcome = JSON.parse(stdout);
    expect(outcome).toMatchObject({ echoes: ['a', 'b'], exitCode: 1, afterA: 'ECONNREFUSED', stillB: 'b again', stillMain: 'main' });
    expect(outcome.after.fds).toBeLessThanOrEqual(outcome.before.fds + 2);
    expect(outcome.after.threads).toBeLessThanOrEqual(outcome.before.threads + 2);
  });

  it('T38 listen errors: bad host, port in use, twice; parallel port 0; pre-aborted and later abort', async () => {
    const bad = createServer({ engine });
    await expect(bad.listen({ host: 'no-such-host.invalid', port: 0 })).rejects.toMatchObject({ code: expect.stringMatching(/^E[A-Z_]+$/) });
    const first = createServer({ engine });
    onTestFinished(() => first.close());
    const { port } = await first.listen();
    const taken = createServer({ engine });
    await expect(taken.listen({ port })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await expect(first.listen()).rejects.toMatchObject({ code: 'ESERVER_ALREADY_LISTENING' });
    const parallel = Array.from({ length: 4 }, () => createServer({ engine }));
    onTestFinished(async () => {
      await Promise.all(parallel.map((s) => s.close()));
    });
    const ports = (await Promise.all(parallel.map((s) => s.listen({ port: 0 })))).map((a) => a.port);
    expect(new Set(ports).size).toBe(4);
    const aborted = createServer({ engine });
    await expect(aborted.listen({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'EABORTED' });
    const controller = new AbortController();
    const later = createServer({ engine });
    const address = await later.listen({ signal: controller.signal });
    const closed = new Promise<void>((resolve) => later.once('close', resolve));
    controller.abort();
    await closed;
    await expect(connectPeer(address.port)).rejects.toThrow();
  });
});

