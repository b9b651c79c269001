/**
 * The native engine in worker processes (src/engines/native-workers*.ts):
 * why one shared socket (a SO_REUSEPORT socket that closes resets its queue,
 * the shared one loses nothing), workers replaced, limits and stats across
 * workers, the CLI's --workers with SIGTERM. Real processes, real sockets.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { tryLoadNative } from '../../../src/engines/native/binding';
import type { EngineSink } from '../../../src/engines/engine';
import { createNativeEngine } from '../../../src/engines/native/engine';
import { resolveOptions } from '../../../src/server/options';
import { root, startFixture, type Fixture } from '../../helpers/fixture';
import { connectPeer, frame, type WirePeer } from '../../helpers/wire';
import { stats as demoStats } from '../../helpers/demo-requests';
import { ask, publish, subscribe, whoami } from '../../helpers/topic-requests';
import { have, startBroker } from '../../helpers/brokers';

const addon = tryLoadNative()!;
const fixtures = path.join(root, 'test', 'helpers', 'native-workers-fixtures');
const serverScript = path.join(fixtures, 'server.js');

/** Spawns holder.js (see there); resolves once it holds its socket. */
async function holder(args: string[], stdio: Array<'ignore' | 'pipe' | number>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(fixtures, 'holder.js'), ...args], { stdio: stdio as never });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await new Promise<void>((resolve, reject) => {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => line === 'ready' && resolve());
    child.on('exit', (code) => reject(new Error(`holder exited (${code})`)));
  });
  return child;
}

/** Connects `count` clients (the kernel completes them into a queue nobody accepts from). */
async function queued(port: number, count: number): Promise<Array<net.Socket & { failure?: string }>> {
  const sockets = await Promise.all(
    Array.from({ length: count }, () => new Promise<net.Socket & { failure?: string }>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1') as net.Socket & { failure?: string };
      socket.once('connect', () => resolve(socket));
      socket.once('error', reject);
    })),
  );
  for (const socket of sockets) {
    socket.on('error', (error: NodeJS.ErrnoException) => (socket.failure ??= error.code ?? 'error'));
    socket.on('close', () => (socket.failure ??= 'closed'));
  }
  onTestFinished(() => sockets.forEach((socket) => socket.destroy()));
  return sockets;
}

/** A raw echo native engine serving `fd` (adopted); returns how many of `sockets` get their bytes back. */
async function served(fd: number, sockets: Array<net.Socket & { failure?: string }>): Promise<number> {
  const options = resolveOptions({ engine: 'native', framing: 'raw' });
  let engine: ReturnType<typeof createNativeEngine>;
  const sink: EngineSink = {
    open: () => {},
    message: () => {},
    data: (id, payload) => void engine.write(id, payload),
    drain: () => {},
    end: (id) => engine.end(id),
    close: () => {},
    error: () => {},
    batchEnd: () => engine.flush(),
    requestClose: () => {},
  };
  engine = createNativeEngine(addon, options, sink);
  onTestFinished(() => engine.shutdown());
  engine.adopt(fd, '127.0.0.1');
  const answers = await Promise.all(
    sockets.map((socket) => new Promise<boolean>((resolve) => {
      if (socket.failure) return resolve(false);
      const timer = setTimeout(() => resolve(false), 5000);
      socket.once('data', () => {
        clearTimeout(timer);
        resolve(true);
      });
      socket.once('close', () => resolve(false));
      socket.write('ping');
    })),
  );
  return answers.filter(Boolean).length;
}

describe('the accept queue when a process holding the listener leaves', () => {
  const count = 64;

  it('SO_REUSEPORT: the listener that closes resets the connections the kernel queued on it', async () => {
    const ours = addon.createListener('127.0.0.1', 0, 511, true);
    onTestFinished(() => fs.closeSync(ours.fd));
    const other = await holder(['reuseport', String(ours.port)], ['ignore', 'pipe', 'inherit']);
    const sockets = await queued(ours.port, count);
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    const answered = await served(ours.fd, sockets);
    const reset = sockets.filter((socket) => socket.failure === 'ECONNRESET').length;
    // The kernel hashed about half onto the holder's queue: gone with it (2^-64 that none were).
    expect(reset).toBeGreaterThan(0);
    expect(answered + reset).toBe(count);
  });

  it('one shared socket (the workers model): nothing queued is lost when a holder leaves', async () => {
    const shared = addon.createListener('127.0.0.1', 0, 511, false);
    onTestFinished(() => fs.closeSync(shared.fd));
    const other = await holder(['inherit'], ['ignore', 'pipe', 'inherit', shared.fd]);
    const sockets = await queued(shared.port, count);
    other.kill('SIGKILL');
    await new Promise((resolve) => other.once('exit', resolve));
    expect(await served(shared.fd, sockets)).toBe(count);
    expect(sockets.filter((socket) => socket.failure).length).toBe(0);
  });

  it('adopting something that is not a listening socket fails with an EdgepollError', () => {
    const options = resolveOptions({ engine: 'native', framing: 'raw' });
    const sink = { batchEnd: () => {} } as unknown as EngineSink;
    const engine = createNativeEngine(addon, options, sink);
    onTestFinished(() => engine.shutdown());
    const file = fs.openSync(__filename, 'r');
    onTestFinished(() => fs.closeSync(file));
    expect(() => engine.adopt(file, '127.0.0.1')).toThrow(expect.objectContaining({ name: 'EdgepollError', code: 'ENOTSOCK' }));
  });
});

async function request(peer: WirePeer, type: number, seq: number, payload = ''): Promise<Buffer> {
  peer.write(frame(0, type, seq, payload));
  const reply = await peer.readFrame(10_000);
  expect(reply).toMatchObject({ flags: 1, type, seq });
  return reply.payload;
}

async function startWorkers(options: Record<string, unknown>, env: Record<string, string> = {}): Promise<Fixture> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  try {
    const fixture = await startFixture(options as never, serverScript);
    onTestFinished(async () => {
      await fixture.stop();
    });
    return fixture;
  } finally {
    process.env = saved;
  }
}

/**
 * Keeps the loop serving one connection busy: echo requests pipelined and
 * their replies read, so that loop rarely sleeps in epoll_wait.
 */
function flood(port: number): () => void {
  let stopped = false;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.on('data', () => undefined);
  const chunk = Buffer.concat(Array.from({ length: 64 }, (_, i) => frame(0, 1, i + 1, Buffer.alloc(4096))));
  const pump = (): void => {
    while (!stopped && socket.write(chunk)) {
      // until the socket's buffer is full
    }
  };
  socket.on('connect', pump);
  socket.on('drain', pump);
  return () => {
    stopped = true;
    socket.destroy();
  };
}

/**
 * Opens connections in parallel rounds until they sit on `workers` different
 * workers. EPOLLEXCLUSIVE wakes the first worker that registered whenever its
 * loop is idle in epoll_wait, so on an idle server they all land there; a
 * flood on that worker's loop keeps it awake and lets the others be woken.
 */
async function onEveryWorker(port: number, workers: number): Promise<Array<{ peer: WirePeer; pid: string }>> {
  const all: Array<{ peer: WirePeer; pid: string }> = [];
  const floods: Array<() => void> = [];
  onTestFinished(() => all.forEach(({ peer }) => peer.destroy()));
  for (let round = 0; round < 20 && new Set(all.map((c) => c.pid)).size < workers; round++) {
    if (round >= 1 && floods.length < all.length && floods.length < 4) floods.push(flood(port));
    const peers = await Promise.all(Array.from({ length: 16 }, () => connectPeer(port)));
    for (const peer of peers) all.push({ peer, pid: (await request(peer, 40, 1)).toString() });
  }
  for (const stop of floods) stop();
  expect(new Set(all.map((c) => c.pid)).size).toBe(workers);
  return all;
}

describe('engine native with workers', () => {
  it('serves one port from N workers; a worker that dies is replaced, its connections end, the others never notice; stats and connections are summed', async () => {
    const fixture = await startWorkers({ workers: 2, threads: 1 });
    const connected = await onEveryWorker(fixture.port, 2);
    let seq = 2;
    // Summed over the workers (the test's flood connections, if any, are going away meanwhile).
    await expect
      .poll(async () => JSON.parse((await request(connected[0].peer, 3, seq++)).toString()).connections, { timeout: 10_000, interval: 100 })
      .toBe(connected.length);
    const before = JSON.parse((await request(connected[0].peer, 3, seq++)).toString());
    expect(before.engine).toBe('native');
    expect(before.loops).toHaveLength(2);
    const victim = connected[0].pid;
    process.kill(Number(victim), 'SIGKILL');
    for (const { peer, pid } of connected) {
      if (pid === victim) await peer.waitClosed(10_000);
    }
    seq = 100;
    for (const { peer, pid } of connected) {
      if (pid !== victim) expect((await request(peer, 1, seq++, 'still here')).toString()).toBe('still here');
    }
    await expect.poll(() => fixture.stderr(), { timeout: 10_000 }).toContain('EWORKER_EXIT');
    // The replacement serves: a stats round shows two workers again, one of them new.
    await expect
      .poll(async () => {
        const probe = await connectPeer(fixture.port);
        const stats = JSON.parse((await request(probe, 3, seq++)).toString());
        probe.destroy();
        return stats.loops.map((loop: { pid: number }) => String(loop.pid)).filter((pid: string) => pid !== victim).length;
      }, { timeout: 15_000, interval: 200 })
      .toBe(2);
  });

  it('maxConnections holds for the whole server, whichever worker accepts', async () => {
    const fixture = await startWorkers({ workers: 2, threads: 1, maxConnections: 6 });
    const peers = await Promise.all(Array.from({ length: 16 }, () => connectPeer(fixture.port)));
    onTestFinished(() => peers.forEach((peer) => peer.destroy()));
    const outcomes = await Promise.all(
      peers.map(async (peer, i) => {
        peer.write(frame(0, 40, i + 1, ''));
        const reply = await peer.readFrame(10_000);
        return reply.type === 0xff03 ? `close:${reply.payload.toString()}` : `pid:${reply.payload.toString()}`;
      }),
    );
    const served = outcomes.filter((o) => o.startsWith('pid:'));
    expect(served).toHaveLength(6);
    expect(outcomes.filter((o) => o === 'close:server full')).toHaveLength(10);
    const probeStats = JSON.parse((await request(peers[outcomes.indexOf(served[0])], 3, 99)).toString());
    expect(probeStats.connections).toBe(6);
    expect(probeStats.rejected).toBeGreaterThanOrEqual(10);
  });

  it('broadcast() reaches every worker\'s connections once', async () => {
    const fixture = await startWorkers({ workers: 2, threads: 1 });
    const connected = await onEveryWorker(fixture.port, 2);
    const sender = connected[0].peer;
    sender.write(frame(0, 2, 7, 'to all'));
    for (const { peer } of connected) {
      const frames: Array<{ type: number; seq: number; payload: Buffer }> = [];
      while (!frames.some((f) => f.type === 2 && f.seq === 0)) frames.push(await peer.readFrame(10_000));
      expect(frames.filter((f) => f.seq === 0).map((f) => f.payload.toString())).toEqual(['to all']);
    }
  });
});

describe('one space across native workers, no external component (the workers\' IPC bus)', () => {
  it('PUBLISH, SENDTO and BROADCAST reach connections of every worker exactly once; STATS counts topics once', async () => {
    const fixture = await startWorkers({ workers: 2, threads: 1, shutdownTimeout: 300 });
    const connected = await onEveryWorker(fixture.port, 2);
    const pids = [...new Set(connected.map((c) => c.pid))];
    // Two subscribers on each worker.
    const peers = pids.flatMap((pid) => connected.filter((c) => c.pid === pid).slice(0, 2).map((c) => c.peer));
    for (const [i, peer] of peers.entries()) await subscribe(peer, 100 + i, 'room');
    const addresses = await Promise.all(peers.map((p, i) => whoami(p, 110 + i)));
    const nodes = addresses.map((a) => a.split('/')[0]);
    expect(new Set(nodes).size).toBe(2);
    const publisher = connected.find((c) => !peers.includes(c.peer))!.peer;
    for (let i = 0; i < 20; i++) expect((await publish(publisher, 200 + i, 'room', `m${i}`)).flags).toBe(1);
    for (const peer of peers) {
      const got = await peer.readFrames(20);
      expect(got.map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `room\0m${i}`));
    }
    const other = nodes.findIndex((n) => n !== nodes[0]);
    const reply = await ask(peers[0]!, 8, 300, Buffer.concat([Buffer.from(addresses[other]!), Buffer.from([0]), Buffer.from('hi')]));
    expect(reply.flags).toBe(1);
    expect(await peers[other]!.readFrame()).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('hi') });
    expect((await ask(publisher, 2, 350, 'all')).flags).toBe(1);
    for (const peer of peers) expect(await peer.readFrame()).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('all') });
    for (const peer of peers) expect((await ask(peer, 1, 400, 'e')).payload.toString()).toBe('e');
    const s = await demoStats(publisher, 500);
    expect(s.subscriptions).toBe(peers.length);
    expect(s.topics).toBe(1);
    expect(s.engine).toBe('native');
  }, 60_000);
});

describe.skipIf(!process.env.CI && !(have('redis-server') && have('redis-cli')))('native workers on an external bus (redis)', () => {
  it('each worker is a node: a publish from another server reaches every worker\'s subscribers once, a broadcast from a worker reaches everyone once', async () => {
    const broker = await startBroker('redis', []);
    onTestFinished(() => broker.kill());
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    const serve = async (args: string[]): Promise<Fixture> => {
      const fixture = await startFixture({}, cli, ['serve', '--port', '0', '--engine', 'native', '--bus', broker.url, '--drain-timeout', '200', ...args]);
      onTestFinished(async () => {
        await fixture.stop('SIGTERM');
      });
      return fixture;
    };
    const A = await serve(['--workers', '2', '--node-id', 'wA']);
    const B = await serve(['--node-id', 'B']);
    const onB = await connectPeer(B.port);
    onTestFinished(() => onB.destroy());
    // Peers on A until both workers hold two (a worker's node id is wA.w<id>).
    const byNode = new Map<string, WirePeer[]>();
    const all: WirePeer[] = [];
    onTestFinished(() => all.forEach((peer) => peer.destroy()));
    const floods: Array<() => void> = [];
    onTestFinished(() => floods.forEach((stop) => stop()));
    for (let round = 0; round < 20 && ([...byNode.values()].filter((p) => p.length >= 2).length < 2); round++) {
      // See onEveryWorker: keep the first worker's loop awake so that the other is woken too.
      if (round >= 1 && floods.length < 4) floods.push(flood(A.port));
      const peers = await Promise.all(Array.from({ length: 8 }, () => connectPeer(A.port)));
      all.push(...peers);
      for (const peer of peers) {
        const node = (await whoami(peer, 1)).split('/')[0]!;
        byNode.set(node, [...(byNode.get(node) ?? []), peer]);
      }
    }
    const nodes = [...byNode.keys()];
    expect(nodes.filter((node) => node.startsWith('wA.w'))).toHaveLength(2);
    const subscribers = nodes.flatMap((node) => byNode.get(node)!.slice(0, 2));
    await expect
      .poll(async () => ((await demoStats(onB, 2)) as unknown as { bus?: { up: boolean } }).bus?.up, { timeout: 15_000 })
      .toBe(true);
    for (const [i, peer] of subscribers.entries()) await subscribe(peer, 10 + i, 'lobby');
    for (let i = 0; i < 20; i++) expect((await publish(onB, 100 + i, 'lobby', `n${i}`)).flags).toBe(1);
    for (const peer of subscribers) {
      const got = await peer.readFrames(20, 15_000);
      expect(got.map((f) => f.payload.toString())).toEqual(Array.from({ length: 20 }, (_, i) => `lobby\0n${i}`));
    }
    expect((await ask(subscribers[0]!, 2, 200, 'all')).flags).toBe(1);
    for (const peer of [onB, ...subscribers.slice(1)]) expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('all') });
    // Exactly once: the next frame each one sees is its ECHO reply.
    for (const peer of [onB, ...subscribers]) expect((await ask(peer, 1, 300, 'e')).payload.toString()).toBe('e');
  }, 60_000);
});

describe('edgepoll serve --engine native --workers N', () => {
  it('listens once, and SIGTERM drains every worker: the primary exits 0 within shutdownTimeout + 1 s', async () => {
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    const fixture = await startFixture({}, cli, ['serve', '--engine', 'native', '--workers', '2', '--port', '0', '--shutdown-timeout', '1500']);
    onTestFinished(async () => {
      await fixture.stop('SIGKILL');
    });
    const connected: WirePeer[] = [];
    onTestFinished(() => connected.forEach((peer) => peer.destroy()));
    for (let round = 0; round < 10; round++) {
      connected.push(...(await Promise.all(Array.from({ length: 16 }, () => connectPeer(fixture.port)))));
      const stats = JSON.parse((await request(connected[0], 3, round + 1)).toString());
      if (stats.loops.every((loop: { connections: number }) => loop.connections > 0)) break;
    }
    const stats = JSON.parse((await request(connected[0], 3, 50)).toString());
    expect(stats.loops.map((loop: { connections: number }) => loop.connections > 0)).toEqual([true, true]);
    const started = Date.now();
    fixture.child.kill('SIGTERM');
    for (const peer of connected) {
      const goaway = await peer.readFrame(5000);
      expect(goaway.type).toBe(0xff04);
    }
    expect(await fixture.exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(1500 + 1000);
    expect(fixture.stdout).toHaveLength(1);
  });
});

/** A child running load-clients.js: resolves once all its clients are open. */
async function loadClients(port: number, count: number): Promise<{ stop(): Promise<LoadReport> }> {
  const child = spawn(process.execPath, [path.join(fixtures, 'load-clients.js'), String(port), String(count)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const lines: string[] = [];
  const waiters: Array<() => void> = [];
  readline.createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    waiters.splice(0).forEach((wake) => wake());
  });
  const line = (index: number): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        if (lines.length > index) resolve(lines[index]);
        else if (child.exitCode !== null) reject(new Error(`load child exited (${child.exitCode})`));
        else waiters.push(check);
      };
      check();
      child.once('exit', check);
    });
  expect(await line(0)).toBe('ready');
  return {
    stop: async () => {
      child.stdin!.write('stop\n');
      return JSON.parse(await line(1)) as LoadReport;
    },
  };
}

interface LoadReport {
  sent: number;
  answered: number;
  wrong: number;
  errors: Record<string, number>;
  lostBeforeGoaway: number;
  connectErrors: Record<string, number>;
  opens: number[];
  goaways: number[];
}

async function version(port: number): Promise<string> {
  const peer = await connectPeer(port);
  try {
    return (await request(peer, 41, 1)).toString();
  } finally {
    peer.destroy();
  }
}

describe('reload (server.reload(), SIGHUP)', () => {
  it('three successive reloads under load: nothing refused or reset, every request answered once, each client reconnects at most once per reload, GOAWAYs spread', async () => {
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'edgepoll-reload-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const versionFile = path.join(dir, 'version');
    fs.writeFileSync(versionFile, 'v1');
    const spread = 1500;
    const fixture = await startWorkers(
      { workers: 2, threads: 1, goawaySpread: spread, shutdownTimeout: 5000 },
      { FIXTURE_VERSION_FILE: versionFile },
    );
    const loads = [await loadClients(fixture.port, 100), await loadClients(fixture.port, 100)];
    const windows: Array<[number, number]> = [];
    for (let i = 2; i <= 4; i++) {
      fs.writeFileSync(versionFile, `v${i}`);
      const started = Date.now();
      fixture.child.kill('SIGHUP');
      await expect.poll(() => fixture.stderr().split('reload done').length - 1, { timeout: 30_000, interval: 100 }).toBe(i - 1);
      windows.push([started, Date.now()]);
      // Fresh code from disk: the new generation read the new version.
      expect(await version(fixture.port)).toBe(`v${i}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const reports = await Promise.all(loads.map((load) => load.stop()));
    const sum = (pick: (r: LoadReport) => number): number => reports.reduce((total, r) => total + pick(r), 0);
    expect(fixture.stderr()).not.toContain('reload failed');
    expect(reports.flatMap((r) => Object.entries(r.connectErrors))).toEqual([]);
    expect(sum((r) => r.wrong)).toBe(0);
    expect(sum((r) => r.lostBeforeGoaway)).toBe(0);
    // Requests queued after a GOAWAY go out on the next connection: nothing fails at all here.
    expect(reports.flatMap((r) => Object.entries(r.errors))).toEqual([]);
    expect(sum((r) => r.answered)).toBe(sum((r) => r.sent));
    expect(sum((r) => r.sent)).toBeGreaterThan(200 * 10);
    const opens = reports.flatMap((r) => r.opens);
    expect(opens).toHaveLength(200);
    // One open at start, then at most one reconnect per reload.
    expect(Math.max(...opens)).toBeLessThanOrEqual(4);
    expect(Math.min(...opens)).toBeGreaterThanOrEqual(2);
    // Each reload's GOAWAYs are spread over the window, not sent in one instant.
    for (const [from, to] of windows) {
      const times = reports.flatMap((r) => r.goaways).filter((t) => t >= from && t <= to);
      expect(times.length).toBeGreaterThanOrEqual(150);
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThan(spread * 0.6);
    }
  }, 120_000);

  it('a new generation that fails to start leaves the old one serving and reports why', async () => {
    const dir = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'edgepoll-reload-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const versionFile = path.join(dir, 'version');
    fs.writeFileSync(versionFile, 'good');
    const fixture = await startWorkers({ workers: 2, threads: 1 }, { FIXTURE_VERSION_FILE: versionFile, FIXTURE_FAIL_VERSION: 'broken' });
    const peer = await connectPeer(fixture.port);
    onTestFinished(() => peer.destroy());
    fs.writeFileSync(versionFile, 'broken');
    fixture.child.kill('SIGHUP');
    const state = (): string => `${fixture.stderr()} [primary exit ${fixture.child.exitCode} ${fixture.child.signalCode}]`;
    await expect.poll(state, { timeout: 45_000 }).toMatch(/reload failed: ERELOAD_FAILED: a worker of generation 2 exited \(code 3\) before it was listening/);
    expect((await request(peer, 1, 5, 'old connection')).toString()).toBe('old connection');
    expect(await version(fixture.port)).toBe('good');
    const stats = JSON.parse((await request(peer, 3, 6)).toString());
    expect(stats.loops.map((loop: { generation: number }) => loop.generation)).toEqual([1, 1]);
    // The next deploy works.
    fs.writeFileSync(versionFile, 'fixed');
    fixture.child.kill('SIGHUP');
    await expect.poll(() => fixture.stderr(), { timeout: 20_000 }).toContain('reload done');
    expect(await version(fixture.port)).toBe('fixed');
  }, 90_000);

  it('edgepoll serve --workers reloads on SIGHUP and keeps serving the port', async () => {
    const cli = path.join(root, 'dist', 'cli', 'main.js');
    const fixture = await startFixture({}, cli, ['serve', '--engine', 'native', '--workers', '2', '--port', '0', '--shutdown-timeout', '1000']);
    onTestFinished(async () => {
      await fixture.stop('SIGKILL');
    });
    const peer = await connectPeer(fixture.port);
    onTestFinished(() => peer.destroy());
    fixture.child.kill('SIGHUP');
    expect((await peer.readFrame(10_000)).type).toBe(0xff04);
    await expect.poll(() => fixture.stderr(), { timeout: 20_000 }).toContain('reload done');
    const fresh = await connectPeer(fixture.port);
    onTestFinished(() => fresh.destroy());
    const stats = JSON.parse((await request(fresh, 3, 1)).toString());
    expect(stats.loops.map((loop: { generation: number }) => loop.generation)).toEqual([2, 2]);
  }, 60_000);
});
