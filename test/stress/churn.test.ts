/**
 * docs/reliability.md T22 at full size: 100,000 connect/close cycles per engine,
 * half clean (the native load generator's churn mode: connect, one ECHO,
 * close) and half reset with SO_LINGER 0 right after connecting, often before
 * the server accepts. The server's fds must return to baseline and its RSS
 * close to it, and it keeps serving.
 */
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { runLoad } from '../../src/cli/bench';
import { connectPeer, frame } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { fdCount, processTree, rssBytes, settle, sleep } from '../helpers/reliability-fixtures/proc';

const CYCLES = 100_000;

/** `count` connects that reset (RST) at once, `parallel` at a time. */
async function resetCycles(port: number, count: number, parallel = 64): Promise<number> {
  let next = 0;
  let connected = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      next++;
      await new Promise<void>((resolve) => {
        const socket = net.connect({ port, host: '127.0.0.1' });
        socket.on('error', () => resolve());
        socket.once('connect', () => {
          connected++;
          socket.resetAndDestroy();
          resolve();
        });
      });
    }
  };
  await Promise.all(Array.from({ length: parallel }, lane));
  return connected;
}

describe.each(engineCases())('churn on $name', ({ options }) => {
  it('T22 100,000 connect/close cycles, half reset: fds back to baseline, RSS near it', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const probe = await connectPeer(server.port);
    probe.write(frame(0, 1, 1, 'warm'));
    await probe.readFrame();
    // Warm up allocators, JIT and the GC's heap sizing (JS heaps grow to a plateau
    // over the first ~30,000 cycles), then take the baseline.
    await runLoad({ port: server.port, mode: 'churn', connections: 16, duration: 6, threads: 2, progressInterval: 0 });
    await sleep(500);
    const pid = server.child.pid!;
    const baseFds = fdCount(pid);
    const baseRss = rssBytes(pid);
    let clean = 0;
    const started = Date.now();
    while (clean < CYCLES / 2 && Date.now() - started < 60_000) {
      const report = await runLoad({ port: server.port, mode: 'churn', connections: 16, duration: 2, threads: 2, progressInterval: 0 });
      expect(report.errors).toBe(0);
      expect(report.mismatches).toBe(0);
      clean += report.messages;
    }
    const resets = await resetCycles(server.port, CYCLES / 2);
    expect(clean).toBeGreaterThanOrEqual(CYCLES / 2);
    expect(resets).toBeGreaterThan(CYCLES / 2 - 100);
    const fds = await settle(() => fdCount(pid), (n) => n <= baseFds, 10_000);
    expect(fds).toBeLessThanOrEqual(baseFds);
    // Heaps and allocator caches may keep some; a leak of 1 KiB per connection would be 100 MB.
    const bound = 48 * 1024 * 1024 * processTree(pid).length;
    const rss = await settle(() => rssBytes(pid), (n) => n - baseRss < bound, 10_000);
    expect(rss - baseRss).toBeLessThan(bound);
    // The server's own count agrees once the last closes are processed (only the probe is left).
    let connections = -1;
    for (let seq = 2; seq < 52 && connections !== 1; seq++) {
      probe.write(frame(0, 3, seq));
      connections = JSON.parse((await probe.readFrame()).payload.toString()).connections;
      if (connections !== 1) await sleep(100);
    }
    expect(connections).toBe(1);
    console.log(`${options.engine}: ${clean} clean + ${resets} reset cycles, fds ${baseFds} -> ${fds}, rss +${((rss - baseRss) / 1048576).toFixed(1)} MiB`);
  });
});
