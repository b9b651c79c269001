/** The cross-server suite over memoryBus() (servers of one process). */
import { describe, expect, it } from 'vitest';
import { memoryBus, type MemoryBus } from '../../src/index';
import { busSuite } from '../helpers/bus-suite';
import { loadOptional } from '../../src/bus/optional';
import { EdgepollError } from '../../src/errors';

busSuite('memory', () => {
  const bus: MemoryBus = memoryBus({ dropDelay: 100 });
  return {
    bus: () => bus,
    outage: async () => bus.outage(),
    restore: async () => bus.restore(),
    holders: async (channel) => bus.subscribers(channel),
  };
});

describe('memoryBus', () => {
  it('is a Bus adapter object accepted by createServer and rejected when malformed', async () => {
    const { createServer } = await import('../../src/index');
    expect(() => createServer({ bus: {} as never })).toThrow(/option `bus`/);
    expect(() => createServer({ nodeId: 'has space' })).toThrow(/option `nodeId`/);
    const server = createServer({ bus: memoryBus(), nodeId: 'ok.node-1' });
    expect(server.nodeId).toBe('ok.node-1');
    await server.close();
  });
});

describe('optional clients', () => {
  it('a missing client library is EBUS_CLIENT_MISSING with the install hint, the require error as cause', () => {
    try {
      loadOptional('edgepoll-no-such-client-package', 'redisBus()');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(EdgepollError);
      expect((error as EdgepollError).code).toBe('EBUS_CLIENT_MISSING');
      expect((error as Error).message).toMatch(/npm install edgepoll-no-such-client-package/);
      expect((error as Error).cause).toBeInstanceOf(Error);
    }
  });
});
