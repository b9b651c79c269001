/**
 * The client against every engine, black-box (cluster included): requests,
 * pushes, ERROR replies, and a graceful server shutdown (GOAWAY) during which
 * a request in flight still gets its answer.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { connect } from '../../src/index';
import { engineCases, startFixture } from '../helpers/fixture';

describe.each(engineCases())('client against $name', ({ options }) => {
  it('requests, receives pushes, sees ERROR replies, and finishes in-flight work on GOAWAY', async () => {
    const server = await startFixture({ ...options, drainTimeout: 3000 });
    onTestFinished(async () => {
      await server.stop('SIGKILL');
    });
    const client = connect({ port: server.port, reconnect: { initialDelay: 100, maxDelay: 200 } });
    onTestFinished(() => client.destroy());
    client.on('error', () => undefined);
    await client.ready();

    const echoes = await Promise.all(Array.from({ length: 50 }, (_, i) => client.request(1, `m${i}`)));
    expect(echoes.map((b) => b.toString())).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));

    const pushes: string[] = [];
    client.handle(2, (payload) => {
      pushes.push(payload.toString());
    });
    expect((await client.request(2, 'to all')).length).toBe(0); // BROADCAST answers empty…
    await expect.poll(() => pushes).toEqual(['to all']); // …and pushes to the sender too

    await expect(client.request(10)).rejects.toMatchObject({ code: 'EREMOTE', message: 'boom' });

    const goaway = new Promise<void>((resolve) => client.once('goaway', () => resolve()));
    const slow = client.request(13, '400', { timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const exited = server.stop('SIGTERM');
    await goaway;
    expect((await slow).toString()).toBe('400');
    expect(await exited).toBe(0);
  });
});
