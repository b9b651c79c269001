/**
 * docs/reliability.md T21 at full size: an accept storm against backlog 128. 5,000
 * connects fired at once (from 4 child processes, 1,250 each); every one must
 * connect and be served (tcp_abort_on_overflow=0: overflow means SYN
 * retransmits, never resets). Native with 2 loops and cluster with 2 workers
 * must spread the accepts (per-loop counters in STATS). ListenOverflows and
 * connect times are logged, not asserted (they measure the kernel).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectPeer, frame } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';

function listenOverflows(): number {
  const text = fs.readFileSync('/proc/net/netstat', 'utf8').split('\n');
  const names = text[0]!.split(/\s+/);
  const values = text[1]!.split(/\s+/);
  return Number(values[names.indexOf('ListenOverflows')]);
}

interface StormResult {
  served: number;
  failed: number;
  errors: string[];
  connectMs: number[];
}

function storm(port: number, count: number): Promise<StormResult> {
  const script = path.join(__dirname, '..', 'helpers', 'reliability-fixtures', 'storm.js');
  const child = spawn(process.execPath, [script, String(port), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  onTestFinished(() => void child.kill('SIGKILL'));
  return new Promise((resolve) => readline.createInterface({ input: child.stdout! }).once('line', (line) => resolve(JSON.parse(line))));
}

describe.each(engineCases())('accept storm on $name', ({ options }) => {
  it('T21 5,000 connects at once against backlog 128: all connect and are served; accepts spread over loops', async () => {
    const server = await startServer({ ...options, backlog: 128, heartbeat: false });
    const probe = await connectPeer(server.port);
    probe.write(frame(0, 1, 1, 'x'));
    await probe.readFrame();
    const overflowsBefore = listenOverflows();
    const results = await Promise.all(Array.from({ length: 4 }, () => storm(server.port, 1250)));
    const served = results.reduce((sum, r) => sum + r.served, 0);
    const errors = results.flatMap((r) => r.errors);
    const times = results.flatMap((r) => r.connectMs).sort((a, b) => a - b);
    probe.write(frame(0, 3, 2));
    const stats = JSON.parse((await probe.readFrame()).payload.toString());
    const perLoop = stats.loops.map((loop: Record<string, number>) => loop.accepted);
    console.log(
      `${options.engine}: served ${served}/5000, errors ${errors.length} ${[...new Set(errors)].join(',')}, ` +
        `connect p50 ${times[Math.floor(times.length / 2)]} ms p99 ${times[Math.floor(times.length * 0.99)]} ms max ${times[times.length - 1]} ms, ` +
        `ListenOverflows +${listenOverflows() - overflowsBefore}, accepted per loop ${perLoop.join('/')}`,
    );
    expect(errors).toEqual([]);
    expect(served).toBe(5000);
    expect(stats.accepted).toBeGreaterThanOrEqual(5001);
    if (perLoop.length > 1) {
      // No thundering herd and no single hot loop: each of 2 takes at least a fifth.
      for (const accepted of perLoop) expect(accepted).toBeGreaterThan(5000 / 5);
    }
    if (options.engine === 'native' && options.threads === 2) expect(perLoop.length).toBe(2);
  });
});
