/**
 * The Redis bus on a three-master Redis Cluster (issue 14): `redis-server
 * --cluster-enabled yes` ×3 + `redis-cli --cluster create`, two servers on
 * `redisBus({ cluster })` seeded with one master only. Topics spread over the
 * shards (PUBSUB SHARDCHANNELS on each master), and every publish reaches
 * every subscriber in order, whichever shard its channel lives on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisBus } from '../../src/index';
import { busUp, node } from '../helpers/bus-suite';
import { have, startBroker, type Broker } from '../helpers/brokers';
import { connectPeer } from '../helpers/wire';
import { subscribe } from '../helpers/topic-requests';

const available = (have('redis-server') && have('redis-cli')) || Boolean(process.env.CI);

describe.skipIf(!available)('redis cluster bus', () => {
  const masters: Broker[] = [];
  let dir = '';
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-cluster-'));
    for (let i = 0; i < 3; i++) {
      masters.push(
        await startBroker('redis', ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--dir', dir]),
      );
    }
    await masters[0]!.redis('--cluster', 'create', ...masters.map((m) => `127.0.0.1:${m.port}`), '--cluster-replicas', '0', '--cluster-yes');
    for (const master of masters) {
      const deadline = Date.now() + 30_000;
      while (!/cluster_state:ok/.test(await master.redis('CLUSTER', 'INFO'))) {
        if (Date.now() > deadline) throw new Error(`cluster not ok on ${master.port}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  });
  afterAll(async () => {
    for (const master of masters) await master.kill();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('topics spread over the shards; every publish reaches its subscribers in order', async () => {
    const seed = [{ host: '127.0.0.1', port: masters[0]!.port }];
    const b = { bus: () => redisBus({ cluster: seed, dropDelay: 100 }), outage: async () => {}, restore: async () => {} };
    const A = await node(b, 'rc-a', 'native');
    const B = await node(b, 'rc-b', 'net');
    await busUp(A.server, B.server);
    const topics = Array.from({ length: 30 }, (_, i) => `shard-topic-${i}`);
    const subscriber = await connectPeer(A.port);
    for (let i = 0; i < topics.length; i++) await subscribe(subscriber, i + 1, topics[i]!);
    const perShard = await Promise.all(
      masters.map(async (m) => (await m.redis('PUBSUB', 'SHARDCHANNELS', 'edgepoll:t:*')).split('\n').filter(Boolean).length),
    );
    expect(perShard.reduce((a, c) => a + c, 0)).toBe(topics.length);
    expect(perShard.filter((n) => n > 0).length).toBe(3);
    for (let round = 0; round < 10; round++) for (const topic of topics) B.server.publish(topic, 9, `${topic}#${round}`);
    const frames = await subscriber.readFrames(topics.length * 10, 30_000);
    for (const topic of topics) {
      const mine = frames.map((f) => f.payload.toString()).filter((p) => p.startsWith(`${topic}#`));
      expect(mine).toEqual(Array.from({ length: 10 }, (_, round) => `${topic}#${round}`));
    }
    expect((await B.server.stats()).bus!.sendDropped).toBe(0);
  });
});
