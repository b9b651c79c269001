/**
 * node:diagnostics_channel events (README "Diagnostics"): connection open and
 * close (with the close reason), handler errors, slow-consumer closes, on the
 * native and net engines in process (subscribers live in the server's process).
 */
import diagnostics from 'node:diagnostics_channel';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  CHANNEL_CONNECTION_CLOSE,
  CHANNEL_CONNECTION_OPEN,
  CHANNEL_HANDLER_ERROR,
  CHANNEL_SLOW_CONSUMER,
  createServer,
  type ConnectionCloseMessage,
  type ConnectionOpenMessage,
  type HandlerErrorMessage,
  type SlowConsumerMessage,
} from '../../src/index';
import { engineCases } from '../helpers/fixture';
import { connectPeer, frame, nonReader } from '../helpers/wire';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function record<T>(name: string): T[] {
  const seen: T[] = [];
  const listener = (message: unknown): void => void seen.push(message as T);
  diagnostics.subscribe(name, listener);
  onTestFinished(() => void diagnostics.unsubscribe(name, listener));
  return seen;
}

describe.each(engineCases({ cluster: false }))('diagnostics_channel on $name', ({ options }) => {
  it('publishes open, close with reason, handler error and slow consumer', async () => {
    expect([CHANNEL_CONNECTION_OPEN, CHANNEL_CONNECTION_CLOSE, CHANNEL_HANDLER_ERROR, CHANNEL_SLOW_CONSUMER]).toEqual([
      'edgepoll:connection:open', 'edgepoll:connection:close', 'edgepoll:handler:error', 'edgepoll:connection:slow-consumer',
    ]);
    const opened = record<ConnectionOpenMessage>(CHANNEL_CONNECTION_OPEN);
    const closed = record<ConnectionCloseMessage>(CHANNEL_CONNECTION_CLOSE);
    const failed = record<HandlerErrorMessage>(CHANNEL_HANDLER_ERROR);
    const slow = record<SlowConsumerMessage>(CHANNEL_SLOW_CONSUMER);
    const closedYet: boolean[] = [];
    const whenClosed = (m: unknown): void => void closedYet.push((m as ConnectionCloseMessage).connection.closed);
    diagnostics.subscribe(CHANNEL_CONNECTION_CLOSE, whenClosed);
    onTestFinished(() => void diagnostics.unsubscribe(CHANNEL_CONNECTION_CLOSE, whenClosed));
    const server = createServer({ ...options, maxFrame: 32 * 1024 * 1024, maxBufferedAmount: 1024 * 1024 });
    server.on('error', () => {});
    server.handle(5, () => {
      throw new Error('boom');
    });
    server.handle(15, (payload) => Buffer.alloc(Number(payload.toString()), 0x61));
    const { port } = await server.listen();
    onTestFinished(() => server.close());

    const peer = await connectPeer(port);
    peer.write(frame(0, 5, 9, 'x'));
    const answer = await peer.readFrame();
    expect(answer.payload.toString()).toBe('boom');
    expect(opened).toHaveLength(1);
    expect(opened[0].server).toBe(server);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ server, connection: opened[0].connection, type: 5, seq: 9 });
    expect((failed[0].error as Error).message).toBe('boom');

    peer.destroy();
    for (let i = 0; i < 100 && closed.length < 1; i++) await sleep(20);
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ server, connection: opened[0].connection, closeReason: 'peer' });
    expect(closedYet[0]).toBe(false); // published before the connection's 'close'

    const hog = await nonReader(port);
    hog.write(frame(0, 15, 1, String(16 * 1024 * 1024)));
    for (let i = 0; i < 200 && slow.length < 1; i++) await sleep(25);
    expect(slow).toHaveLength(1);
    expect(slow[0]).toMatchObject({ server, code: 'ESLOW_CONSUMER', connection: opened[1].connection });
    expect(closed.at(-1)).toMatchObject({ code: 'ESLOW_CONSUMER', closeReason: 'slowConsumer' });
  }, 20_000);
});
