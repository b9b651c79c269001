/**
 * The cross-server suite over a real nats-server (core pub/sub). Skipped
 * when nats-server is not installed (scripts/install-brokers.sh; .ci/run).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { natsBus } from '../../src/index';
import { subjectOf } from '../../src/bus/nats';
import { busSuite } from '../helpers/bus-suite';
import { have, startBroker, type Broker } from '../helpers/brokers';

const available = have('nats-server') || Boolean(process.env.CI);
let broker: Broker;

describe.skipIf(!available)('nats', () => {
  beforeAll(async () => {
    broker = await startBroker('nats');
  });
  afterAll(async () => {
    await broker?.kill();
  });

  it('maps channels to valid subjects', () => {
    expect(subjectOf('edgepoll', 'edgepoll:b')).toBe('edgepoll.b');
    expect(subjectOf('edgepoll', 'edgepoll:t:a.b c*>')).toMatch(/^edgepoll\.t\.[A-Za-z0-9_-]+$/);
    expect(subjectOf('edgepoll', 'edgepoll:n:node-1')).toBe(`edgepoll.n.${Buffer.from('node-1').toString('base64url')}`);
  });

  busSuite('nats', () => ({
    bus: () => natsBus({ servers: broker.url, dropDelay: 100 }),
    outage: () => broker.kill(),
    restore: () => broker.start(),
  }));
});
