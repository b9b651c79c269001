/**
 * docs/reliability.md T36 without a sanitizer (the ASan/valgrind repetition is the
 * sanitizer suite's): SIGTERM while 200 clients keep sending. close()
 * resolves, the process exits 0 on its own within drainTimeout plus slack,
 * and every request that got an answer got the right one.
 */
import { describe, expect, it } from 'vitest';
import { connectPeer, frame } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { sleep } from '../helpers/reliability-fixtures/proc';

describe.each(engineCases())('shutdown under load on $name', ({ options }) => {
  it('T36 SIGTERM while 200 clients send: exits 0 by itself, answers stay correct', async () => {
    const drainTimeout = 1000;
    const server = await startServer({ ...options, drainTimeout, heartbeat: false });
    const peers = await Promise.all(Array.from({ length: 200 }, () => connectPeer(server.port)));
    let sending = true;
    let wrong = 0;
    const loads = peers.map(async (peer, index) => {
      let seq = 1;
      while (sending && !peer.closed && !peer.ended) {
        const batch = Array.from({ length: 10 }, () => frame(0, 1, seq++, `${index}:${seq}`));
        peer.write(Buffer.concat(batch));
        try {
          for (let i = 0; i < 10; i++) {
            const f = await peer.readFrame(3000);
            if (f.type === 1 && f.payload.toString() !== `${index}:${f.seq + 1}`) wrong++;
          }
        } catch {
          return; // closed by the shutdown
        }
      }
    });
    await sleep(300);
    const started = Date.now();
    const code = await server.stop('SIGTERM');
    const took = Date.now() - started;
    sending = false;
    await Promise.all(loads);
    expect(code).toBe(0);
    expect(took).toBeLessThan(drainTimeout + 4000);
    expect(wrong).toBe(0);
    expect(server.stderr()).not.toMatch(/Error|error/);
  });
});
