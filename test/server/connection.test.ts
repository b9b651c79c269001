/**
 * A Connection is an EventEmitter that starts without a listener table (issue
 * 17: the empty table EventEmitter makes cost ~230 B per idle connection).
 * Every EventEmitter method must behave as on a fresh emitter before the
 * first listener, and as usual after it; `framing` comes from the server.
 */
import { EventEmitter, once } from 'node:events';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, type Connection } from '../../src/index';
import { engineCases } from '../helpers/fixture';
import { connectPeer } from '../helpers/wire';

async function firstConnection(options: object): Promise<{ connection: Connection; peer: Awaited<ReturnType<typeof connectPeer>> }> {
  const server = createServer({ shutdownTimeout: 200, ...options });
  onTestFinished(() => server.close());
  const opened = once(server, 'connection') as Promise<[Connection]>;
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const peer = await connectPeer(port);
  onTestFinished(() => peer.destroy());
  const [connection] = await opened;
  return { connection, peer };
}

for (const { name, options } of engineCases({ cluster: false })) {
  describe(`a connection's events on '${name}'`, () => {
    it('answers every EventEmitter query before its first listener', async () => {
      const { connection } = await firstConnection(options);
      expect(connection).toBeInstanceOf(EventEmitter);
      expect(connection.framing).toBe('frame');
      expect(connection.listenerCount('close')).toBe(0);
      expect(connection.listeners('close')).toEqual([]);
      expect(connection.rawListeners('close')).toEqual([]);
      expect(connection.eventNames()).toEqual([]);
      expect(connection.emit('drain')).toBe(false);
      expect(connection.removeListener('close', () => {})).toBe(connection);
      expect(connection.removeAllListeners()).toBe(connection);
      expect(connection.removeAllListeners('close')).toBe(connection);
      // An 'error' with nobody listening throws, as on any emitter.
      expect(() => connection.emit('error' as 'close', new Error('boom') as unknown as string, '')).toThrow('boom');
    });

    it('keeps listeners added by on, once, prepend and events.once, and removes them', async () => {
      const { connection, peer } = await firstConnection(options);
      const seen: string[] = [];
      const onDrain = (): void => void seen.push('on');
      connection.once('drain', () => seen.push('once'));
      connection.on('drain', onDrain);
      connection.prependListener('drain', () => seen.push('prepend'));
      expect(connection.listenerCount('drain')).toBe(3);
      expect(connection.eventNames()).toEqual(['drain']);
      expect(connection.emit('drain')).toBe(true);
      expect(seen).toEqual(['prepend', 'once', 'on']);
      connection.off('drain', onDrain);
      expect(connection.listenerCount('drain')).toBe(1);
      const closed = once(connection, 'close');
      peer.destroy();
      const [code] = await closed;
      expect(typeof code).toBe('string');
      expect(connection.closed).toBe(true);
    });
  });
}
