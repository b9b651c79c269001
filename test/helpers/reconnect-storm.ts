/**
 * Issue 17: a reconnect storm. N edgepoll clients spread over child processes
 * hold connections to a server, the server is killed and started again on the
 * same port, and every client must come back with no connection refused or
 * reset once the new server listens. Used by test/reliability/reliability.reconnect.test.ts
 * (npm test size) and test/stress/reconnect.test.ts (19,000).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { expect, onTestFinished } from 'vitest';
import { root } from './fixture';
import { startServer, type ReliabilityOptions } from './reliability-fixtures/start';

interface ShareReport {
  open: number;
  opens: number;
  errors: Record<string, number>;
  errorsSince: Record<string, number>;
}

class Share {
  private readonly lines: readline.Interface;
  private readonly waiting: Array<(report: ShareReport) => void> = [];

  constructor(readonly child: ChildProcess) {
    this.lines = readline.createInterface({ input: child.stdout! });
    this.lines.on('line', (line) => this.waiting.shift()?.(JSON.parse(line)));
  }

  report(since = 0): Promise<ShareReport> {
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.child.stdin!.write(`${since}\n`);
    });
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs the storm; returns what the clients saw after the restart (asserted here too). */
export async function reconnectStorm(options: ReliabilityOptions, clients: number, processes: number): Promise<{ reopenMs: number; errorsBefore: Record<string, number> }> {
  const port = await freePort();
  // The whole storm fits in the accept queue (the kernel caps it at net.core.somaxconn).
  const serverOptions = { ...options, port, backlog: Math.max(511, clients) };
  const first = await startServer(serverOptions);
  const script = path.join(root, 'test', 'helpers', 'reliability-fixtures', 'reconnect-clients.js');
  const shares = Array.from({ length: processes }, (_, i) => {
    const count = Math.floor(clients / processes) + (i < clients % processes ? 1 : 0);
    const child = spawn(process.execPath, [script, String(port), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
    onTestFinished(() => void child.kill('SIGKILL'));
    return new Share(child);
  });
  const openCount = async (): Promise<number> => (await Promise.all(shares.map((s) => s.report()))).reduce((n, r) => n + r.open, 0);
  await until(`${clients} clients open`, 60_000, async () => (await openCount()) === clients);
  const errorsBefore = (await Promise.all(shares.map((s) => s.report()))).reduce<Record<string, number>>((all, r) => {
    for (const [code, n] of Object.entries(r.errors)) all[code] = (all[code] ?? 0) + n;
    return all;
  }, {});
  // The restart: gone at once (no GOAWAY), back on the same port.
  await first.stop('SIGKILL');
  await until('every client to notice', 30_000, async () => (await openCount()) === 0);
  await startServer(serverOptions);
  const listeningAt = Date.now();
  await until(`${clients} clients back`, 60_000, async () => (await openCount()) === clients);
  const reopenMs = Date.now() - listeningAt;
  // Errors of attempts begun after the new server listens.
  const after = (await Promise.all(shares.map((s) => s.report(listeningAt)))).reduce<Record<string, number>>((all, r) => {
    for (const [code, n] of Object.entries(r.errorsSince)) all[code] = (all[code] ?? 0) + n;
    return all;
  }, {});
  expect(after).toEqual({});
  return { reopenMs, errorsBefore };
}
