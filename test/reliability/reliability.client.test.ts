/**
 * docs/reliability.md T44-T45 gaps (test/client/client.reconnect.test.ts covers one
 * restart, SIGSTOP detection and a 200-client spread): repeated kill -9 and
 * late restarts with the delay schedule checked, signal.abort() stopping the
 * reconnect loop, 500 clients not reconnecting in lockstep, and a SIGSTOPped
 * edgepoll server: the client reconnects after SIGCONT and the server cleans
 * up the stale connection by heartbeat.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { chosenDelayBuckets, client, codeOf, firstReconnect } from '../helpers/client-fixtures/clients';
import { ChildServer } from '../helpers/client-fixtures/child-server';
import { startServer } from '../helpers/reliability-fixtures/start';
import { sleep } from '../helpers/reliability-fixtures/proc';

describe('T44 a server that crashes again and again', () => {
  it('kill -9, restart after 700 ms, 5 times: delays grow exponentially within jitter and the cap; in-flight requests reject; service resumes', async () => {
    const server = await ChildServer.start();
    const backoff = { initialDelay: 40, maxDelay: 320, factor: 2, jitter: 0.5 };
    const c = client({ port: server.port, reconnect: backoff, heartbeat: false });
    const delays: Array<{ attempt: number; delay: number }> = [];
    c.on('reconnecting', (event: { attempt: number; delay: number }) => delays.push(event));
    await c.ready();
    for (let round = 0; round < 5; round++) {
      const inFlight = codeOf(c.request(4, Buffer.from([0, 0, 0x13, 0x88]), { timeout: 3000 }));
      await sleep(30);
      const from = delays.length;
      const killedAt = performance.now();
      await server.kill();
      expect(await inFlight).toBe('ECONNECTION_LOST');
      expect(performance.now() - killedAt).toBeLessThan(1000);
      await sleep(700);
      await server.restart();
      await c.ready();
      expect((await c.request(1, `round ${round}`)).toString()).toBe(`round ${round}`);
      const outage = delays.slice(from);
      expect(outage.length).toBeGreaterThanOrEqual(3);
      for (const { attempt, delay } of outage) {
        const base = Math.min(backoff.maxDelay, backoff.initialDelay * 2 ** (attempt - 1));
        expect(delay).toBeLessThanOrEqual(base);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * (1 - backoff.jitter)));
      }
      // Attempts restart at 1 for each outage.
      expect(outage[0]!.attempt).toBe(1);
    }
  });

  it('signal.abort() during reconnecting stops the loop: no further attempts, even once the server is back', async () => {
    const server = await ChildServer.start();
    const controller = new AbortController();
    const c = client({ port: server.port, reconnect: { initialDelay: 50, maxDelay: 100 }, heartbeat: false, signal: controller.signal });
    let attempts = 0;
    c.on('connecting', () => attempts++);
    await c.ready();
    await server.kill();
    await new Promise((resolve) => c.once('reconnecting', resolve));
    controller.abort();
    const atAbort = attempts;
    expect(c.status).toBe('closed');
    await server.restart();
    await sleep(500);
    expect(attempts).toBe(atAbort);
    expect((await server.stats()).accepted).toBe(0);
    await expect(c.request(1, 'x')).rejects.toMatchObject({ code: expect.stringMatching(/^E/) });
  });

  it('500 clients after a crash spread their first attempts over the jitter window', async () => {
    const server = await ChildServer.start();
    const count = 500;
    const initialDelay = 400;
    // The default jitter (full: each first wait uniform in [0, initialDelay]).
    const clients = Array.from({ length: count }, () => client({ port: server.port, reconnect: { initialDelay }, heartbeat: false }));
    await Promise.all(clients.map((c) => c.ready()));
    const firsts = clients.map(firstReconnect);
    const outageAt = performance.now();
    await server.kill();
    // What the clients chose is uniform over [0, 400] ms: no 10 ms bucket with a tenth, and no
    // client tried before its own delay had passed. (Bucketing, or spanning, the wall-clock attempt
    // times instead measures this one process's event loop: 500 closes handled in a burst, or a
    // starved test process, fire the timers together, which separate client processes would not:
    // 133 and 164 in one bucket under full-suite load.)
    const chosen = await Promise.all(firsts);
    for (const { delay } of chosen) expect(delay).toBeLessThanOrEqual(initialDelay);
    const buckets = chosenDelayBuckets(chosen, outageAt, 10);
    expect(buckets.size).toBeGreaterThan(30);
    expect(Math.max(...buckets.values())).toBeLessThan(count / 10);
    await server.restart();
    await Promise.all(clients.map((c) => c.ready()));
    const replies = await Promise.all(clients.map((c, i) => c.request(1, `c${i}`)));
    expect(replies.map(String)).toEqual(clients.map((_, i) => `c${i}`));
  });
});

describe('T45 a SIGSTOPped edgepoll server', () => {
  it('the client declares it dead at interval + timeout, reconnects after SIGCONT, and the server keeps only the new connection', async () => {
    const server = await startServer({ engine: 'net', heartbeat: { interval: 300, timeout: 300 } });
    const c = client({ port: server.port, heartbeat: { interval: 200, timeout: 200 }, reconnect: { initialDelay: 50, maxDelay: 200 } });
    await c.ready();
    expect((await c.request(1, 'before')).toString()).toBe('before');
    server.child.kill('SIGSTOP');
    onTestFinished(() => void server.child.kill('SIGCONT'));
    const stoppedAt = performance.now();
    await new Promise((resolve) => c.once('reconnecting', resolve));
    const detected = performance.now() - stoppedAt;
    expect(detected).toBeLessThan(200 + 200 + 600);
    await sleep(1500);
    server.child.kill('SIGCONT');
    await c.ready();
    expect((await c.request(1, 'after')).toString()).toBe('after');
    // The old connection is gone from the server (on loopback its FIN arrives on SIGCONT;
    // a FIN lost on a real network is the server heartbeat's job, T18).
    let connections = 0;
    for (let i = 0; i < 30; i++) {
      connections = JSON.parse((await c.request(3)).toString()).connections;
      if (connections === 1) break;
      await sleep(100);
    }
    expect(connections).toBe(1);
  });
});
