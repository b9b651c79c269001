/**
 * The cluster engine on an external bus (issue 14): every worker is a node of
 * the bus, and so is the primary, because the user's script runs there too —
 * a publish, sendTo or broadcast made in the primary reaches the workers'
 * connections (once each) and the other servers on the bus. Over a real
 * redis-server and nats-server (skipped when they are not installed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { createServer, natsBus, redisBus } from '../../src/index';
import { installDemo } from '../../src/cli/demo';
import { root } from '../helpers/fixture';
import { have, startBroker, type Broker } from '../helpers/brokers';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';
import { ask, subscribe, whoami } from '../helpers/topic-requests';

interface Primary {
  port: number;
  child: ChildProcess;
  /** Sends one command to the primary's own server; resolves with its answer line. */
  command(op: Record<string, string>): Promise<string>;
}

async function startPrimary(bus: string, nodeId: string, subscribeDelay = 0, engine: 'cluster' | 'native' = 'cluster'): Promise<Primary> {
  const script = path.join(root, 'test', 'helpers', 'topic-fixtures', 'cluster-bus.js');
  const child = spawn(process.execPath, [script, JSON.stringify({ bus, workers: 2, nodeId, subscribeDelay, engine })], { stdio: ['pipe', 'pipe', 'pipe'], cwd: root });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  onTestFinished(async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  });
  const answers: Array<(line: string) => void> = [];
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`primary did not start: ${stderr}`)), 20_000);
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      const match = /^listening on [^ ]+:(\d+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      } else answers.shift()?.(line);
    });
    void exited.then((code) => reject(new Error(`primary exited ${code}: ${stderr}`)));
  });
  return {
    port,
    child,
    command: (op) =>
      new Promise((resolve) => {
        answers.push(resolve);
        child.stdin!.write(`${JSON.stringify(op)}\n`);
      }),
  };
}

async function nothingMore(peer: WirePeer, seq: number): Promise<void> {
  peer.write(frame(0, 1, seq, 'end'));
  expect(await peer.readFrame(10_000)).toMatchObject({ type: 1, seq, flags: 1 });
}

for (const kind of ['redis', 'nats'] as const) {
  const available = Boolean(process.env.CI) || have(kind === 'redis' ? 'redis-server' : 'nats-server');
  describe.skipIf(!available)(`cluster engine on ${kind}://`, () => {
    let broker: Broker;
    beforeAll(async () => {
      broker = await startBroker(kind);
    });
    afterAll(async () => {
      await broker?.kill();
    });

    it.each(['cluster', 'native'] as const)('%s workers: publish, sendTo and broadcast made in the primary reach every worker\'s connections once, and the other servers', async (engine) => {
      const primary = await startPrimary(broker.url, `cl-${kind}-${engine}`, 0, engine);
      // Another server on the same bus, in this process.
      const other = createServer({ engine: 'net', bus: kind === 'redis' ? redisBus({ url: broker.url, dropDelay: 100 }) : natsBus({ servers: broker.url }), nodeId: `other-${kind}`, drainTimeout: 200 });
      installDemo(other);
      onTestFinished(() => other.close());
      const { port: otherPort } = await other.listen({ port: 0 });
      const peers: WirePeer[] = [];
      for (let i = 0; i < 4; i++) peers.push(await connectPeer(primary.port));
      peers.push(await connectPeer(otherPort));
      for (const [i, peer] of peers.entries()) await subscribe(peer, 1 + i, 'room');
      const addresses = await Promise.all(peers.map((p, i) => whoami(p, 10 + i)));
      // node:cluster's round-robin put the four peers on both workers: two nodes besides
      // `other`. Native workers share one socket (EPOLLEXCLUSIVE wakes the first idle
      // worker), so an idle server may put all four on one.
      const nodes = new Set(addresses.slice(0, 4).map((a) => a.split('/')[0])).size;
      if (engine === 'cluster') expect(nodes).toBe(2);
      else expect(nodes).toBeGreaterThanOrEqual(1);

      expect(await primary.command({ op: 'publish', topic: 'room', message: 'from the primary' })).toBe('done publish');
      for (const peer of peers) expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 9, seq: 0, payload: Buffer.from('from the primary') });
      expect(await primary.command({ op: 'sendTo', address: addresses[1]!, message: 'to one' })).toBe('done sendTo');
      expect(await peers[1]!.readFrame(10_000)).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('to one') });
      expect(await primary.command({ op: 'sendTo', address: addresses[4]!, message: 'to other' })).toBe('done sendTo');
      expect(await peers[4]!.readFrame(10_000)).toEqual({ flags: 0, type: 8, seq: 0, payload: Buffer.from('to other') });
      expect(await primary.command({ op: 'broadcast', message: 'all' })).toBe('done broadcast');
      for (const peer of peers) expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('all') });
      // Exactly once: the next frame each peer sees is its ECHO answer.
      for (const [i, peer] of peers.entries()) await nothingMore(peer, 100 + i);
      // A worker's BROADCAST still reaches everyone once too (relay and bus do not both carry it).
      expect((await ask(peers[0]!, 2, 200, 'from a worker')).flags).toBe(1);
      for (const peer of peers.slice(1)) expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 2, seq: 0, payload: Buffer.from('from a worker') });
      for (const [i, peer] of peers.entries()) await nothingMore(peer, 300 + i);
    }, 60_000);

    it('SUBSCRIBE on a worker is answered only once the bus subscription is in effect', async () => {
      const delay = 400;
      const primary = await startPrimary(broker.url, `slow-${kind}`, delay);
      const peers = [await connectPeer(primary.port), await connectPeer(primary.port)]; // one per worker
      for (const [i, peer] of peers.entries()) {
        const started = performance.now();
        await subscribe(peer, 1, `late-${i}`);
        expect(performance.now() - started).toBeGreaterThanOrEqual(delay - 50);
        // Published right after the reply, from another node (the primary): it must arrive.
        expect(await primary.command({ op: 'publish', topic: `late-${i}`, message: `after ${i}` })).toBe('done publish');
        expect(await peer.readFrame(10_000)).toEqual({ flags: 0, type: 9, seq: 0, payload: Buffer.from(`after ${i}`) });
      }
      for (const [i, peer] of peers.entries()) await nothingMore(peer, 50 + i);
    }, 60_000);
  });
}
