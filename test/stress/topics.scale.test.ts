/**
 * Topics at scale (issue 14), in the stress suite so its 10,000 sockets do
 * not disturb the timing tests of `npm test`: 10,000 connections each in a
 * topic of its own plus 10 shared topics, on every in-process engine.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, type Connection, type Server } from '../../src/index';
import { installDemo } from '../../src/cli/demo';
import type { ServerOptions } from '../../src/server/options';
import { connectPeer, type WirePeer } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { spawnClients } from '../helpers/topic-clients';

async function demoServer(options: ServerOptions): Promise<{ server: Server; port: number }> {
  const server = createServer({ drainTimeout: 200, ...options });
  onTestFinished(() => server.close());
  installDemo(server);
  const address = await server.listen({ port: 0 });
  return { server, port: address.port };
}

describe.each(engineCases({ cluster: false }))('topics at scale on $name', ({ options }) => {
  it('10,000 connections each in its own topic plus 10 shared topics', async () => {
    const { server, port } = await demoServer(options);
    const count = 10_000;
    const connections: Connection[] = [];
    server.on('connection', (c) => connections.push(c));
    // Two readers in this process, subscribed through the API to the 10 shared topics.
    const readers: WirePeer[] = [];
    for (let i = 0; i < 2; i++) readers.push(await connectPeer(port));
    await expect.poll(() => connections.length).toBe(2);
    for (const c of connections) for (let t = 0; t < 10; t++) await c.subscribe(`shared-${t}`);
    // 10,000 more in 4 child processes, each in own-<i> and the 10 shared topics (demo SUBSCRIBE).
    const clients = await spawnClients(port, count, 4);
    onTestFinished(() => clients.stop());
    await expect.poll(async () => (await server.stats()).subscriptions, { timeout: 60_000, interval: 200 }).toBe(count * 11 + 20);
    expect((await server.stats()).topics).toBe(count + 10);
    for (let t = 0; t < 10; t++) server.publish(`shared-${t}`, 9, `s${t}`);
    server.publish('own-1234', 9, 'personal');
    const got = await readers[0]!.readFrames(10);
    expect(got.map((f) => f.payload.toString())).toEqual(Array.from({ length: 10 }, (_, t) => `s${t}`));
    expect(await clients.counts()).toEqual({ shared: count * 10, personal: 1 });
  }, 120_000);
});
