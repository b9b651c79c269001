/**
 * The native load generator (runLoad) and `edgepoll bench`, against a tiny
 * node:net frame echo server written here, independent of edgepoll's engines.
 * The server can corrupt one chosen reply, so the checks the load generator
 * makes (seq, payload bytes) are shown to catch what they claim to catch.
 * Then the benchmark's reference servers (bench/baseline-net.mjs, and
 * bench/baseline-bun.mjs when Bun is already on this machine) and the report's
 * ratios to them.
 */
import net from 'node:net';
import { describe, expect, it, onTestFinished, vi } from 'vitest';
import { watchLoopLag } from '../helpers/loop-lag';
import { runBenchCommand, runLoad, type LoadReport } from '../../src/cli/bench';
import { EdgepollError } from '../../src/errors';
import { tryLoadLoadgen, tryLoadNative } from '../../src/engines/native/binding';
// @ts-expect-error plain ESM scripts of bench/, no type declarations
import { findBun } from '../../bench/bun.mjs';
// @ts-expect-error plain ESM scripts of bench/, no type declarations
import { renderHeadline, renderResults } from '../../bench/report.mjs';
// @ts-expect-error plain ESM scripts of bench/, no type declarations
import { keepTopicsSection, TOPIC_SCENARIOS } from '../../bench/topics.mjs';
// @ts-expect-error plain ESM scripts of bench/, no type declarations
import { bunBaseline, nodeNetBaseline, startServer, stopServer } from '../../bench/server.mjs';
import { connectPeer, frame } from '../helpers/wire';

interface EchoServer {
  port: number;
  accepted: number;
  open: number;
}

interface EchoOptions {
  raw?: boolean;
  /** Change something in the nth reply (1-based, counted over all connections). */
  corrupt?: { nth: number; what: 'payload' | 'seq' | 'raw' };
}

async function startEcho(options: EchoOptions = {}): Promise<EchoServer> {
  const sockets = new Set<net.Socket>();
  let replies = 0;
  const state: EchoServer = { port: 0, accepted: 0, open: 0 };
  const damage = (reply: Buffer): void => {
    replies++;
    if (!options.corrupt || replies !== options.corrupt.nth) return;
    if (options.corrupt.what === 'seq') reply.writeUInt32BE(reply.readUInt32BE(8) + 1000, 8);
    else reply[reply.length - 1] ^= 0xff;
  };
  // No Nagle: the pushes and the reply of one BROADCAST are separate small writes, and Nagle with the
  // peer's delayed ACK held each round ~40 ms (11 BROADCASTs in 0.5 s, so a loaded machine got
  // near the test's floor of 6).
  const server = net.createServer({ noDelay: true }, (socket) => {
    state.accepted++;
    state.open++;
    sockets.add(socket);
    socket.on('close', () => {
      state.open--;
      sockets.delete(socket);
    });
    socket.on('error', () => {});
    if (options.raw) {
      socket.on('data', (chunk) => {
        const copy = Buffer.from(chunk);
        damage(copy);
        socket.write(copy);
      });
      return;
    }
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 12) {
        const length = buffered.readUInt32BE(4);
        if (buffered.length < 12 + length) break;
        const frame = Buffer.from(buffered.subarray(0, 12 + length));
        buffered = buffered.subarray(12 + length);
        const type = frame.readUInt16BE(2);
        const seq = frame.readUInt32BE(8);
        if (type === 0xff01) {
          frame.writeUInt16BE(0xff02, 2);
          socket.write(frame);
        } else if (type === 1) {
          frame[1] = 1;
          damage(frame);
          socket.write(frame);
        } else if (type === 2) {
          const push = Buffer.from(frame);
          push.writeUInt32BE(0, 8);
          for (const peer of sockets) peer.write(push);
          const reply = Buffer.from([0xeb, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0]);
          reply.writeUInt32BE(seq, 8);
          socket.write(reply);
        }
      }
    });
  });
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

function expectClean(report: LoadReport): void {
  expect(report.errors).toBe(0);
  expect(report.mismatches).toBe(0);
  expect(report.connectErrors).toBe(0);
  expect(report.firstError).toBeNull();
}

describe('runLoad rr', () => {
  it('counts validated replies and their latencies', async () => {
    const server = await startEcho();
    const progress: number[] = [];
    const report = await runLoad(
      { port: server.port, connections: 4, depth: 3, payload: 100, duration: 0.6, progressInterval: 100 },
      (p) => progress.push(p.open),
    );
    expectClean(report);
    expect(report.mode).toBe('rr');
    expect(report.opened).toBe(4);
    expect(report.connects).toBe(4);
    expect(server.accepted).toBe(4);
    expect(report.messages).toBeGreaterThan(10);
    expect(report.latency.count).toBe(report.messages);
    // Every reply answers a request sent before it; at most depth x connections are outstanding.
    expect(report.sent).toBeGreaterThanOrEqual(report.messages);
    expect(report.sent - report.messages).toBeLessThanOrEqual(12);
    expect(report.bytesReceived).toBeGreaterThanOrEqual(report.messages * 112);
    expect(report.latency.p50Us).toBeGreaterThan(0);
    expect(report.latency.p50Us).toBeLessThanOrEqual(report.latency.p99Us);
    expect(report.latency.p99Us).toBeLessThanOrEqual(report.latency.p999Us);
    expect(report.latency.p999Us).toBeLessThanOrEqual(report.latency.maxUs);
    expect(report.loadgenCpuSeconds).toBeGreaterThan(0);
    expect(progress.length).toBeGreaterThan(0);
  });

  it('catches a reply whose payload was changed', async () => {
    const server = await startEcho({ corrupt: { nth: 50, what: 'payload' } });
    const report = await runLoad({ port: server.port, connections: 2, duration: 0.4, progressInterval: 0 });
    expect(report.messages).toBeGreaterThan(50);
    expect(report.mismatches).toBe(1);
    expect(report.firstError).toMatch(/differs/);
  });

  it('catches a reply with a seq that matches no request', async () => {
    const server = await startEcho({ corrupt: { nth: 30, what: 'seq' } });
    const report = await runLoad({ port: server.port, connections: 1, depth: 2, duration: 0.4, progressInterval: 0 });
    expect(report.mismatches).toBeGreaterThanOrEqual(1);
    expect(report.firstError).toMatch(/seq/);
  });

  it('raw framing checks the echoed byte stream', async () => {
    const clean = await startEcho({ raw: true });
    const report = await runLoad({ port: clean.port, framing: 'raw', connections: 3, depth: 2, payload: 33, duration: 0.3, progressInterval: 0 });
    expectClean(report);
    expect(report.messages).toBeGreaterThan(10);
    const damaged = await startEcho({ raw: true, corrupt: { nth: 40, what: 'raw' } });
    const bad = await runLoad({ port: damaged.port, framing: 'raw', connections: 1, payload: 33, duration: 0.3, progressInterval: 0 });
    expect(bad.mismatches).toBe(1);
  });
});

describe('runLoad churn, idle, broadcast', () => {
  it('churn connects, asks once and closes, over and over', async () => {
    const server = await startEcho();
    const report = await runLoad({ port: server.port, mode: 'churn', connections: 4, duration: 0.5, progressInterval: 0 });
    expectClean(report);
    expect(report.messages).toBeGreaterThan(20);
    expect(report.connects).toBeGreaterThanOrEqual(report.messages);
    // Every completed cycle went through the server (the last connects may still wait in its accept queue).
    expect(server.accepted).toBeGreaterThanOrEqual(report.messages);
    expect(report.sourceAddresses).toBe(8);
  });

  it('idle holds the connections and pings each one', async () => {
    const server = await startEcho();
    let openSeen = 0;
    // The PONGs come from this process's event loop (startEcho): starved for an interval, it
    // answers late, and the load generator rightly counts a missed PONG, then the late one as
    // unexpected. That is this process's scheduling, not the load generator's counting.
    const lag = watchLoopLag();
    const report = await runLoad(
      { port: server.port, mode: 'idle', connections: 30, interval: 100, payload: 16, duration: 0.5, progressInterval: 50 },
      (p) => {
        openSeen = Math.max(openSeen, server.open);
        expect(p.open).toBeLessThanOrEqual(30);
      },
    );
    if (lag.longest >= 50 && report.missedPongs > 0) {
      console.log(`idle: this process went ${lag.longest.toFixed(0)} ms without running; ${report.missedPongs} PONGs were late`);
      expect(report.errors).toBe(0);
      expect(report.connectErrors).toBe(0);
      // Each late PONG arrives after the next PING: unexpected, once per missed one at most.
      expect(report.mismatches).toBeLessThanOrEqual(report.missedPongs);
    } else {
      expectClean(report);
      expect(report.missedPongs).toBe(0);
    }
    expect(report.opened).toBe(30);
    expect(openSeen).toBe(30);
    // About 5 pings per connection in 0.5 s; each answered (in flight at the end: one per connection).
    expect(report.pings).toBeGreaterThanOrEqual(60);
    expect(report.messages).toBeGreaterThanOrEqual(report.pings - 30 - report.missedPongs);
  });

  it('broadcast counts deliveries to every connection', async () => {
    const server = await startEcho();
    const report = await runLoad({ port: server.port, mode: 'broadcast', connections: 10, duration: 0.5, progressInterval: 0 });
    expectClean(report);
    expect(report.broadcasts).toBeGreaterThan(5);
    // Each answered BROADCAST reached all 10 connections (give or take the window edges).
    expect(report.messages).toBeGreaterThanOrEqual((report.broadcasts - 2) * 10);
    expect(report.messages).toBeLessThanOrEqual((report.broadcasts + 2) * 10);
    expect(report.latency.count).toBe(report.messages);
  });
});

describe('runLoad refuses', () => {
  it('bad options, non-loopback targets and unreachable servers', async () => {
    await expect(runLoad({ port: 0 })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(runLoad({ port: 1, depth: 0 })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(runLoad({ port: 1, mode: 'idle', framing: 'raw' })).rejects.toMatchObject({ code: 'EINVALID_OPTION' });
    await expect(runLoad({ port: 1, host: '10.1.2.3' })).rejects.toMatchObject({ code: 'EINVALID_OPTION', message: expect.stringMatching(/loopback/) });
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await runLoad({ port, connections: 2, duration: 0.2, progressInterval: 0 }).catch((error: unknown) => error);
    // Every error is an EdgepollError with a code, the load generator's own as cause.
    expect(refused).toBeInstanceOf(EdgepollError);
    expect(refused).toMatchObject({ code: 'ECONNREFUSED', message: expect.stringMatching(/could not connect.*ECONNREFUSED/) });
    expect((refused as EdgepollError).cause).toBeInstanceOf(Error);
  });
});

describe('edgepoll bench', () => {
  it('prints a JSON report and exits 0; exits 2 on bad arguments', async () => {
    const server = await startEcho();
    const out: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    onTestFinished(() => {
      stdout.mockRestore();
      stderr.mockRestore();
    });
    const code = await runBenchCommand(['--target', `127.0.0.1:${server.port}`, '--duration', '0.3', '--warmup', '0', '--connections', '3', '--json', '--quiet']);
    expect(code).toBe(0);
    const report = JSON.parse(out.join('')) as LoadReport;
    expect(report.connections).toBe(3);
    expect(report.messages).toBeGreaterThan(0);
    expect(await runBenchCommand(['--target', 'nowhere'])).toBe(2);
    expect(await runBenchCommand(['--target', '127.0.0.1:1', '--mode', 'sideways'])).toBe(2);
  });
});

// Issue 12: what serves holds only the engine; bench loads the load generator on its own.
describe('the load generator is its own addon', () => {
  it('the engine addon does not export runLoad; the load generator addon exports only runLoad', () => {
    const engine = tryLoadNative();
    expect(engine).toBeDefined();
    expect(Object.keys(engine!)).toContain('Engine');
    expect(Object.keys(engine!)).not.toContain('runLoad');
    const { addon, error } = tryLoadLoadgen();
    expect(error).toBeUndefined();
    expect(Object.keys(addon!)).toEqual(['runLoad']);
  });
});

interface ReferenceEngine {
  name: string;
  command: string[];
}

interface StartedServer {
  child: import('node:child_process').ChildProcess;
  port: number;
}

// Only a Bun that is already here (PATH, BENCH_BUN or the bench cache): tests never install it.
const bun = findBun({ install: false }) as { path?: string; skipped?: string };
const references: Array<{ engine: ReferenceEngine | null; why?: string }> = [
  { engine: nodeNetBaseline as ReferenceEngine },
  { engine: bun.path ? (bunBaseline(bun.path) as ReferenceEngine) : null, why: bun.skipped },
];

async function startReference(engine: ReferenceEngine): Promise<StartedServer> {
  const server = (await startServer(engine)) as StartedServer;
  onTestFinished(() => stopServer(server));
  return server;
}

describe.each(references.map((r) => ({ ...r, label: r.engine?.name ?? `bun (skipped: ${r.why})` })))('reference server $label', ({ engine }) => {
  it.skipIf(!engine)('answers ECHO, PING and unknown types, frames split and batched', async () => {
    const server = await startReference(engine!);
    const peer = await connectPeer(server.port);
    const batch = Buffer.concat([frame(0, 1, 1, 'hello'), frame(0, 0xff01, 2, 'ping!'), frame(0, 9, 3, 'x'), frame(0, 1, 4, 'split across writes')]);
    // The last frame arrives in two pieces: the server keeps the partial one.
    peer.write(batch.subarray(0, batch.length - 7));
    await new Promise((resolve) => setTimeout(resolve, 50));
    peer.write(batch.subarray(batch.length - 7));
    const replies = await peer.readFrames(4);
    expect(replies.map((f) => [f.flags, f.type, f.seq, f.payload.toString()])).toEqual([
      [1, 1, 1, 'hello'],
      [0, 0xff02, 2, 'ping!'],
      [3, 9, 3, 'unknown type 9'],
      [1, 1, 4, 'split across writes'],
    ]);
    // A push (seq 0) and a stray PONG get no answer; the next request does.
    peer.write(Buffer.concat([frame(0, 1, 0, 'push'), frame(0, 0xff02, 7), frame(0, 1, 5, 'after')]));
    const next = await peer.readFrame();
    expect([next.flags, next.seq, next.payload.toString()]).toEqual([1, 5, 'after']);
  });

  it.skipIf(!engine)('BROADCAST reaches every connection, the sender before its reply', async () => {
    const server = await startReference(engine!);
    const sender = await connectPeer(server.port);
    const other = await connectPeer(server.port);
    // Both connections are accepted and registered once each has an answer.
    for (const peer of [sender, other]) {
      peer.write(frame(0, 0xff01, 1));
      await peer.readFrame();
    }
    sender.write(frame(0, 2, 9, 'to all'));
    const [push, reply] = await sender.readFrames(2);
    expect([push!.flags, push!.type, push!.seq, push!.payload.toString()]).toEqual([0, 2, 0, 'to all']);
    expect([reply!.flags, reply!.type, reply!.seq, reply!.payload.length]).toEqual([1, 2, 9, 0]);
    const pushed = await other.readFrame();
    expect([pushed.type, pushed.seq, pushed.payload.toString()]).toEqual([2, 0, 'to all']);
  });

  it.skipIf(!engine)('closes a connection that sends a bad frame, and exits 0 on SIGTERM', async () => {
    const server = await startReference(engine!);
    const bad = await connectPeer(server.port);
    bad.write(Buffer.from([0x00, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]));
    await bad.waitClosed();
    const good = await connectPeer(server.port);
    good.write(frame(0, 1, 1, 'still here'));
    expect((await good.readFrame()).payload.toString()).toBe('still here');
    await stopServer(server);
    expect(server.child.exitCode).toBe(0);
  });

  it.skipIf(!engine)('passes the load generator: pipelined ECHO and idle PINGs', async () => {
    const server = await startReference(engine!);
    const rr = await runLoad({ port: server.port, connections: 4, depth: 16, payload: 64, duration: 0.5, progressInterval: 0 });
    expectClean(rr);
    expect(rr.messages).toBeGreaterThan(100);
    // A PONG later than the next PING counts as a mismatch: a wide interval for a loaded machine.
    const idle = await runLoad({ port: server.port, mode: 'idle', connections: 10, interval: 400, payload: 8, duration: 0.9, progressInterval: 0 });
    expectClean(idle);
    expect(idle.pings).toBeGreaterThanOrEqual(10);
    expect(idle.missedPongs).toBe(0);
  });
});

describe('bench report', () => {
  const result = (engine: string, round: number, rate: number) => ({
    scenario: 'S3',
    engine,
    round,
    messagesPerSecond: rate,
    latency: { p50Us: 1, p99Us: 2, p999Us: 3 },
    errors: 0,
    mismatches: 0,
    serverCpuMicrosPerMessage: 1_000_000 / rate,
  });
  const run = {
    date: '2026-12-01T00:00:00.000Z',
    elapsedSeconds: 60,
    settings: { seconds: 1, rounds: 2, warmup: 0, loadgenThreads: 1 },
    bun: { version: '1.0.0' },
    machine: { cpus: 2, model: 'test', kernel: 'test', node: 'v20' },
    scenarios: [{ id: 'S3', title: 'pipelined', metric: 'msgs/s', load: {} }],
    // Ratios are per round, then the median: 2.0 and 3.0 to node:net give 2.50×.
    results: [
      result('node:net', 1, 100), result('bun', 1, 150), result('native-1', 1, 200), result('net', 1, 50),
      result('node:net', 2, 100), result('bun', 2, 150), result('native-1', 2, 300), result('net', 2, 60),
    ],
  };

  it('leads with ratios to the plain node:net server, Bun beside them', () => {
    const headline = renderHeadline(run) as string;
    expect(headline).toContain('| S3 pipelined | 100 msgs/s | 1.50× | 2.50× | 0.55× |');
    expect(headline).toMatch(/\| S3 \| 10,000\.00 \| 6,666\.67 \| 4,166\.67 \| /);
    const markdown = renderResults(run) as string;
    expect(markdown.indexOf(headline)).toBeGreaterThan(0);
    expect(markdown).toContain('| vs node:net | vs Bun | vs net engine |');
    // native-1: 2.50× node:net, (200/150 + 300/150) / 2 = 1.67× Bun, (4 + 5) / 2 = 4.50× net.
    expect(markdown).toContain('| S3 | native-1 | 250 msgs/s | 2.50× | 1.67× | 4.50× |');
    expect(markdown).toContain('Bun 1.0.0');
  });

  it('says why Bun was skipped', () => {
    const skipped = { ...run, bun: { skipped: 'no Bun package for darwin-arm64' }, results: run.results.filter((r) => r.engine !== 'bun') };
    expect(renderResults(skipped)).toContain('Bun: skipped (no Bun package for darwin-arm64)');
    expect(renderResults(skipped)).not.toContain('vs Bun');
  });

  it('findBun honours BENCH_BUN', () => {
    vi.stubEnv('BENCH_BUN', '0');
    onTestFinished(() => void vi.unstubAllEnvs());
    expect(findBun({ install: false })).toEqual({ skipped: 'BENCH_BUN=0' });
    vi.stubEnv('BENCH_BUN', '/nonexistent/bun');
    expect(findBun({ install: false })).toEqual({ skipped: 'BENCH_BUN=/nonexistent/bun does not run' });
  });
});

describe('bench/topics.mjs in the matrix (T1, T2)', () => {
  it('keeps the last topics section of RESULTS.md when a run leaves T1/T2 out, and replaces it when it has one', () => {
    expect(TOPIC_SCENARIOS.map((s: { id: string }) => s.id)).toEqual(['T1', 'T2']);
    const old = '<!-- topics:start (x) -->\n## Topics\nold figures\n<!-- topics:end -->';
    const previous = `# results\n\nmatrix\n\n${old}\n`;
    expect(keepTopicsSection(previous, '# results\n\nnew matrix\n')).toBe(`# results\n\nnew matrix\n\n${old}\n`);
    const fresh = '# results\n\nnew matrix\n\n<!-- topics:start (x) -->\nnew figures\n<!-- topics:end -->\n';
    expect(keepTopicsSection(previous, fresh)).toBe(fresh);
    expect(keepTopicsSection('# results\n', '# new\n')).toBe('# new\n');
  });
});
