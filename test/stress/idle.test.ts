/**
 * docs/reliability.md T23: 10,000 idle connections held by the native load
 * generator (idle mode: each sends a PING every 2 s; the server PINGs those
 * silent for 1 s). Memory per connection is measured against a stated
 * budget, every PING is answered, and heartbeats do not melt the CPU: the
 * server stays under half a core while holding them.
 */
import { describe, expect, it } from 'vitest';
import { runLoad, type LoadProgress } from '../../src/cli/bench';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { cpuTicks, rssBytes, sleep } from '../helpers/reliability-fixtures/proc';

const CONNECTIONS = 10_000;
/** Server memory per idle connection, bytes: native keeps a slot + decoder; JS engines a net.Socket. */
const BUDGET = { native: 8 * 1024, net: 24 * 1024, cluster: 32 * 1024 } as const;

describe.each(engineCases())('idle connections on $name', ({ options }) => {
  it(`T23 ${CONNECTIONS} idle connections: memory per connection within budget, heartbeats cheap, every PING answered`, async () => {
    const server = await startServer({ ...options, heartbeat: { interval: 1000, timeout: 5000 } });
    const pid = server.child.pid!;
    await sleep(300);
    const baseRss = rssBytes(pid);
    let heldRss = 0;
    let cpuStart = 0;
    let cpuAt = 0;
    let cpuEnd = 0;
    let cpuEndAt = 0;
    const onProgress = (progress: LoadProgress): void => {
      if (progress.open < CONNECTIONS) return;
      const now = Date.now();
      if (cpuAt === 0) {
        cpuAt = now;
        cpuStart = cpuTicks(pid);
      } else {
        cpuEndAt = now;
        cpuEnd = cpuTicks(pid);
      }
      heldRss = Math.max(heldRss, rssBytes(pid));
    };
    const report = await runLoad(
      { port: server.port, mode: 'idle', connections: CONNECTIONS, interval: 2000, payload: 8, duration: 6, threads: 2, progressInterval: 1000 },
      onProgress,
    );
    expect(report.opened).toBe(CONNECTIONS);
    expect(report.errors).toBe(0);
    expect(report.missedPongs).toBe(0);
    expect(report.pings).toBeGreaterThan(CONNECTIONS);
    const perConnection = (heldRss - baseRss) / CONNECTIONS;
    const cpuShare = (cpuEnd - cpuStart) / 100 / ((cpuEndAt - cpuAt) / 1000);
    console.log(
      `${options.engine}: ${report.opened} open, ${(perConnection / 1024).toFixed(1)} KiB per connection, ` +
        `server CPU ${(cpuShare * 100).toFixed(1)}% of a core over ${((cpuEndAt - cpuAt) / 1000).toFixed(1)} s, ${report.pings} pings`,
    );
    expect(cpuEndAt - cpuAt).toBeGreaterThan(2000);
    expect(perConnection).toBeLessThan(BUDGET[options.engine as keyof typeof BUDGET]);
    expect(cpuShare).toBeLessThan(0.5);
  });
});
