/**
 * The cluster engine in real processes: a forked primary
 * (test/helpers/cluster-fixtures/echo.ts, bundled with esbuild) with 2
 * workers, driven over raw sockets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { TYPE_GOAWAY } from '../../../src/protocol/constants';
import { connectPeer, frame, type WirePeer } from '../../helpers/wire';

let bundle = '';

beforeAll(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-cluster-'));
  bundle = path.join(dir, 'echo.js');
  await build({
    entryPoints: [path.join(__dirname, '..', '..', 'helpers/cluster-fixtures/echo.ts')],
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    outfile: bundle,
    logLevel: 'error',
  });
  return () => fs.rmSync(dir, { recursive: true, force: true });
});

interface Primary {
  child: ChildProcess;
  port: number;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Forks the fixture's primary and waits for its `listening on` line. */
async function startPrimary(env: Record<string, string> = {}): Promise<Primary> {
  const child = spawn(process.execPath, [bundle], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  onTestFinished(() => {
    // The primary's own exit handling stops its workers; SIGKILL leaves orphans, so ask nicely first.
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no listening line; stderr: ${stderr}`)), 15_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`primary exited (${code}) before listening; stderr: ${stderr}`)));
  });
  return { child, port, stderr: () => stderr, exited };
}

async function request(peer: WirePeer, type: number, seq: number, payload = ''): Promise<Buffer> {
  peer.write(frame(0, type, seq, payload));
  const reply = await peer.readFrame();
  expect(reply).toMatchObject({ flags: 1, type, seq });
  return reply.payload;
}

/** Connects until connections sit on both workers; returns them with the worker pid of each. */
async function spread(port: number, count: number): Promise<Array<{ peer: WirePeer; pid: string }>> {
  const connected: Array<{ peer: WirePeer; pid: string }> = [];
  for (let i = 0; i < count; i++) {
    const peer = await connectPeer(port);
    connected.push({ peer, pid: (await request(peer, 4, 1)).toString() });
  }
  expect(new Set(connected.map((c) => c.pid)).size).toBe(2);
  return connected;
}

describe('cluster engine', () => {
  it('echoes, broadcasts across workers exactly once, and aggregates stats', async () => {
    const primary = await startPrimary();
    const connections = await spread(primary.port, 6);
    const [first] = connections;
    expect((await request(first!.peer, 1, 2, 'hello')).toString()).toBe('hello');

    // BROADCAST from one connection reaches every connection of both workers.
    first!.peer.write(frame(0, 2, 3, 'to everyone'));
    for (const { peer } of connections) {
      const frames = await peer.readFrames(peer === first!.peer ? 2 : 1);
      const pushes = frames.filter((f) => f.seq === 0);
      expect(pushes).toHaveLength(1);
      expect(pushes[0]).toMatchObject({ type: 2 });
      expect(pushes[0]!.payload.toString()).toBe('to everyone');
    }
    // Nothing arrives twice: after the relay had time, the next frame is each echo.
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (const { peer } of connections) expect((await request(peer, 1, 9, 'after')).toString()).toBe('after');

    // STATS answered by any worker counts the connections of both.
    for (const { peer } of [connections[0]!, connections.find((c) => c.pid !== connections[0]!.pid)!]) {
      const stats = JSON.parse((await request(peer, 3, 5)).toString());
      expect(stats).toMatchObject({ engine: 'cluster', connections: 6, accepted: 6 });
      expect(stats.loops).toHaveLength(2);
      expect(stats.loops.map((l: { pid: number }) => String(l.pid)).sort()).toEqual([...new Set(connections.map((c) => c.pid))].sort());
    }
  });

  it('counts maxConnections over all workers', async () => {
    const primary = await startPrimary({ EDGEPOLL_TEST_MAX_CONNECTIONS: '3' });
    const connections = await spread(primary.port, 3);
    const extra = await connectPeer(primary.port);
    const close = await extra.readFrame();
    expect(close).toMatchObject({ type: 0xff03 });
    expect(close.payload.toString()).toBe('server full');
    await extra.waitClosed();
    const stats = JSON.parse((await request(connections[0]!.peer, 3, 5)).toString());
    expect(stats).toMatchObject({ connections: 3, accepted: 3, rejected: 1 });
    // A freed slot admits the next connection.
    connections[1]!.peer.destroy();
    // The release reaches the primary over IPC: retry briefly instead of guessing a delay.
    let admitted = '';
    for (let i = 0; i < 30 && admitted === ''; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const next = await connectPeer(primary.port);
      next.write(frame(0, 1, 6, 'in'));
      const reply = await next.readFrame().catch(() => undefined);
      if (reply?.type === 1 && reply.seq === 6) admitted = reply.payload.toString();
    }
    expect(admitted).toBe('in');
  });

  it('replaces a worker that dies and keeps serving', async () => {
    const primary = await startPrimary();
    const connections = await spread(primary.port, 4);
    const victim = connections[0]!;
    process.kill(Number(victim.pid), 'SIGKILL');
    await victim.peer.waitClosed();
    await expect.poll(() => primary.stderr(), { timeout: 5000 }).toContain('EWORKER_EXIT');
    // New connections are served (by the survivor and the replacement).
    const pids = new Set<string>();
    for (let i = 0; i < 6 && pids.size < 2; i++) {
      const peer = await connectPeer(primary.port);
      pids.add((await request(peer, 4, 1)).toString());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(pids.has(victim.pid)).toBe(false);
  });

  it('SIGTERM drains every worker; the primary exits 0 once all have', async () => {
    const primary = await startPrimary();
    const connections = await spread(primary.port, 4);
    primary.child.kill('SIGTERM');
    for (const { peer } of connections) expect((await peer.readFrame()).type).toBe(TYPE_GOAWAY);
    // Requests in flight are still answered while draining.
    expect((await request(connections[0]!.peer, 1, 7, 'still')).toString()).toBe('still');
    // The primary waits while one connection stays open.
    for (const { peer } of connections.slice(1)) peer.destroy();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(primary.child.exitCode).toBe(null);
    connections[0]!.peer.destroy();
    expect(await primary.exited).toBe(0);
    expect(primary.stderr()).toContain('primary: drained, connections 0');
    for (const pid of new Set(connections.map((c) => Number(c.pid)))) {
      expect(() => process.kill(pid, 0)).toThrow();
    }
  });
});
