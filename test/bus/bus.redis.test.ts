/**
 * The cross-server suite over a real redis-server (7, sharded pub/sub), plus
 * Redis-specific faults: CLIENT KILL TYPE pubsub, and interest routing seen
 * with PUBSUB SHARDNUMSUB. Skipped when redis-server is not installed
 * (scripts/install-brokers.sh installs it; .ci/run does).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBus } from '../../src/index';
import { busSuite, busUp, node } from '../helpers/bus-suite';
import { have, startBroker, type Broker } from '../helpers/brokers';
import { connectPeer } from '../helpers/wire';
import { subscribe } from '../helpers/topic-requests';

const available = (have('redis-server') && have('redis-cli')) || Boolean(process.env.CI);
let broker: Broker;

describe.skipIf(!available)('redis', () => {
  beforeAll(async () => {
    broker = await startBroker('redis');
  });
  afterAll(async () => {
    await broker?.kill();
  });

  busSuite('redis', () => ({
    bus: () => redisBus({ url: broker.url, dropDelay: 100 }),
    outage: () => broker.kill(),
    restore: () => broker.start(),
    holders: async (channel) => {
      // `PUBSUB SHARDNUMSUB ch` answers the channel, then its subscriber count.
      const out = (await broker.redis('PUBSUB', 'SHARDNUMSUB', channel)).split('\n');
      return Number(out[1]);
    },
  }));

  it('CLIENT KILL TYPE pubsub: one gap, resubscribed, deliveries resume', async () => {
    const make = () => redisBus({ url: broker.url, dropDelay: 100 });
    const A = await node({ bus: make, outage: async () => {}, restore: async () => {} }, 'kill-a', 'native');
    const B = await node({ bus: make, outage: async () => {}, restore: async () => {} }, 'kill-b', 'net');
    await busUp(A.server, B.server);
    const onA = await connectPeer(A.port);
    await subscribe(onA, 1, 'k');
    const gaps = [new Promise((resolve) => A.server.once('busgap', resolve)), new Promise((resolve) => B.server.once('busgap', resolve))];
    expect(Number(await broker.redis('CLIENT', 'KILL', 'TYPE', 'pubsub'))).toBeGreaterThanOrEqual(2);
    await Promise.all(gaps);
    B.server.publish('k', 9, 'after');
    expect((await onA.readFrame(15_000)).payload.toString()).toBe('after');
    expect((await A.server.stats()).bus!.gaps).toBe(1);
  });
});
