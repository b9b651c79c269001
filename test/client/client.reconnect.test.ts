/**
 * Client reconnection against real servers on 127.0.0.1: a child-process
 * frame server that is killed, restarted on the same port and SIGSTOPped
 * (test/helpers/client-fixtures), GOAWAY under load, a fleet of 200 clients
 * after a restart, and the real createServer over the native and net engines.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { chosenDelayBuckets, client, nextEvent, codeOf, firstReconnect } from '../helpers/client-fixtures/clients';
import { tryLoadNative } from '../../src/engines/native/binding';
import { ChildServer } from '../helpers/client-fixtures/child-server';
import { createFrameServer } from '../helpers/client-fixtures/frame-server.cjs';

function delayed(ms: number, tag = ''): Buffer {
  const out = Buffer.alloc(4 + tag.length);
  out.writeUInt32BE(ms);
  out.write(tag, 4);
  return out;
}

describe('a restarted or dead server', () => {
  it('reconnects to a server restarted on the same port; requests made meanwhile wait and succeed', async () => {
    const server = await ChildServer.start();
    const c = client({ port: server.port, reconnect: { initialDelay: 50, maxDelay: 200 } });
    await c.ready();
    expect((await c.request(1, 'before')).toString()).toBe('before');
    const reconnecting = nextEvent(c, 'reconnecting');
    await server.kill();
    await reconnecting;
    const during = c.request(1, 'during');
    await server.restart();
    await c.ready();
    expect((await during).toString()).toBe('during');
    expect((await c.request(1, 'after')).toString()).toBe('after');
    expect((await server.stats()).requests).toBe(2);
  });

  it('rejects in-flight requests with ECONNECTION_LOST when the server dies', async () => {
    const server = await ChildServer.start();
    const c = client({ port: server.port, reconnect: { initialDelay: 50 } });
    await c.ready();
    const inFlight = Array.from({ length: 5 }, (_, i) => codeOf(c.request(4, delayed(5000, `${i}`))));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await server.stats()).requests).toBe(5);
    await server.kill();
    expect(await Promise.all(inFlight)).toEqual(Array(5).fill('ECONNECTION_LOST'));
    expect(['reconnecting', 'connecting']).toContain(c.status);
  });

  it('detects a SIGSTOPped server within interval + timeout and reconnects', async () => {
    const server = await ChildServer.start();
    const interval = 200;
    const timeout = 200;
    const c = client({ port: server.port, heartbeat: { interval, timeout }, reconnect: { initialDelay: 50 } });
    const errors: string[] = [];
    c.on('error', (error) => errors.push((error as { code: string }).code));
    await c.ready();
    await c.request(1, 'alive');
    const stalled = codeOf(c.request(4, delayed(1000, 'stalled')));
    server.pause();
    const paused = performance.now();
    await nextEvent(c, 'reconnecting');
    const detected = performance.now() - paused;
    expect(await stalled).toBe('ECONNECTION_LOST');
    expect(errors).toContain('EHEARTBEAT_TIMEOUT');
    // The silence started with the last reply, just before the pause; allow timer lag on a busy box.
    expect(detected).toBeLessThan(interval + timeout + 600);
    expect(detected).toBeGreaterThan(interval);
    server.resume();
    await c.ready();
    expect((await c.request(1, 'back')).toString()).toBe('back');
    await server.kill();
  });
});

describe('GOAWAY', () => {
  it('under load: every request is answered exactly once, none lost or duplicated', async () => {
    const fixture = createFrameServer();
    const port: number = await fixture.listen(0);
    onTestFinished(() => fixture.close());
    const c = client({ port, reconnect: { initialDelay: 20, maxDelay: 100 } });
    const statuses: string[] = [];
    for (const event of ['goaway', 'reconnecting', 'open'] as const) c.on(event, () => statuses.push(event));
    await c.ready();
    // A closed loop: 50 callers, each with one request outstanding at a time (every third one
    // takes 3 ms on the server, so GOAWAY always finds requests in flight).
    const total = 3000;
    const callers = 50;
    const answered: Buffer[] = [];
    let issued = 0;
    let goaways = 0;
    const goawayAt = new Set([300, 1000, 1800, 2500]);
    const caller = async (): Promise<void> => {
      while (issued < total) {
        const i = issued++;
        if (goawayAt.has(i)) {
          fixture.goaway();
          goaways++;
        }
        answered[i] = await c.request(i % 3 === 0 ? 4 : 1, i % 3 === 0 ? delayed(3, `r${i}`) : `r${i}`);
      }
    };
    await Promise.all(Array.from({ length: callers }, caller));
    for (let i = 0; i < total; i++) expect(answered[i]!.toString().endsWith(`r${i}`)).toBe(true);
    const counts: Map<string, number> = fixture.counts;
    expect(counts.size).toBe(total);
    for (const count of counts.values()) expect(count).toBe(1);
    expect(statuses.filter((status) => status === 'goaway')).toHaveLength(goaways);
    expect(fixture.stats.accepted).toBe(goaways + 1);
  });

  it('a draining client queues new requests and sends them on the next connection', async () => {
    const fixture = createFrameServer();
    const port: number = await fixture.listen(0);
    onTestFinished(() => fixture.close());
    const c = client({ port, reconnect: { initialDelay: 30 } });
    await c.ready();
    const slow = c.request(4, delayed(100, 'slow'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const goaway = nextEvent(c, 'goaway');
    fixture.goaway();
    await goaway;
    expect(c.status).toBe('goaway');
    const queued = c.request(1, 'queued');
    expect(c.queued).toBe(1);
    expect((await slow).subarray(4).toString()).toBe('slow');
    expect((await queued).toString()).toBe('queued');
    expect(fixture.stats.accepted).toBe(2);
  });
});

describe('a fleet', () => {
  it('200 clients spread their first reconnect attempts over the jitter window after a restart', async () => {
    const server = await ChildServer.start();
    const initialDelay = 400;
    const count = 200;
    const clients = Array.from({ length: count }, () =>
      client({ port: server.port, reconnect: { initialDelay, jitter: 0.5 }, heartbeat: false }),
    );
    await Promise.all(clients.map((c) => c.ready()));
    const firsts = clients.map(firstReconnect);
    const outageAt = performance.now();
    await server.restart();
    // Delays are uniform in [200, 400] ms: no 20 ms bucket with a third of the fleet, and no client
    // tried before its own delay had passed. Measured from the delays the clients chose: bucketing
    // the wall-clock attempt times measures when this one loaded process ran 200 timers, which it
    // fires together after a stall, separate client processes would not.
    const chosen = await Promise.all(firsts);
    for (const { delay } of chosen) {
      expect(delay).toBeGreaterThanOrEqual(initialDelay * 0.5);
      expect(delay).toBeLessThanOrEqual(initialDelay);
    }
    const perBucket = chosenDelayBuckets(chosen, outageAt, 20);
    expect(perBucket.size).toBeGreaterThanOrEqual(8);
    expect(Math.max(...perBucket.values())).toBeLessThan(count / 3);
    await Promise.all(clients.map((c) => c.ready()));
    const replies = await Promise.all(clients.map((c, i) => c.request(1, `c${i}`)));
    expect(replies.map(String)).toEqual(clients.map((_, i) => `c${i}`));
    await Promise.all(clients.map((c) => c.close()));
  });
});

const engines = ['native', 'net'] as const;
describe.each(engines)('with createServer, engine %s', (engine) => {
  const available = engine !== 'native' || tryLoadNative() !== undefined;

  async function start(port = 0) {
    // Loaded here, not at the top: the rest of this file does not depend on the server layer.
    const [{ createServer }, { installDemo }] = await Promise.all([import('../../src/index'), import('../../src/cli/demo')]);
    const server = createServer({ engine });
    installDemo(server);
    server.handle(10, () => {
      throw new Error('boom');
    });
    onTestFinished(() => server.close());
    const address = await server.listen({ host: '127.0.0.1', port });
    return { server, port: address.port };
  }

  it.skipIf(!available)('request/reply, EREMOTE, and a push answered by the server', async () => {
    const { port } = await start();
    const c = client({ port });
    await c.ready();
    expect((await c.request(1, 'hello')).toString()).toBe('hello');
    await expect(c.request(10)).rejects.toMatchObject({ code: 'EREMOTE', message: 'boom' });
    await expect(c.request(999)).rejects.toMatchObject({ code: 'EREMOTE', message: 'unknown type 999' });
    const pushed = new Promise<string>((resolve) => c.handle(2, (payload) => resolve(payload.toString())));
    expect((await c.request(2, 'to all')).length).toBe(0);
    expect(await pushed).toBe('to all');
  });

  it.skipIf(!available)('reconnects after the server closes (GOAWAY) and another starts on the same port', async () => {
    const first = await start();
    const c = client({ port: first.port, reconnect: { initialDelay: 50, maxDelay: 200 } });
    await c.ready();
    expect((await c.request(1, 'one')).toString()).toBe('one');
    const goaway = nextEvent(c, 'goaway');
    await first.server.close();
    await goaway;
    const meanwhile = c.request(1, 'two');
    await start(first.port);
    expect((await meanwhile).toString()).toBe('two');
    expect(c.status).toBe('open');
  });
});
