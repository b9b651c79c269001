/**
 * PROTOCOL.md sections 5-6, the demo's topic types, byte for byte on every
 * engine (native 1 and 2 threads, net, cluster with 2 workers), black-box
 * through `test/helpers/fixture-server.js`: every frame each peer receives is
 * compared with the frame the protocol prescribes (RESPONSE flag, type, seq,
 * exact payload; pushes type 6/8 with seq 0), in order, nothing more; the
 * ERROR replies for bad topic names (empty, over 200 bytes, not UTF-8,
 * containing 0x00) on SUBSCRIBE, UNSUBSCRIBE and PUBLISH; STATS `topics` and
 * `subscriptions`. The ERROR texts must be the same on every engine. And on
 * a bus whose subscriptions take a while, SUBSCRIBE is answered only once the
 * bus side is in effect (section 5).
 */
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { createServer, memoryBus } from '../../src/index';
import { installDemo } from '../../src/cli/demo';
import { engineCases, startFixture } from '../helpers/fixture';
import { slowSubscriptions } from '../helpers/slow-bus.cjs';
import { connectPeer, frame, type WireFrame, type WirePeer } from '../helpers/wire';

const RESPONSE = 1;
const ERROR = 2;
const [SUBSCRIBE, UNSUBSCRIBE, PUBLISH, WHOAMI, SENDTO, STATS, ECHO] = [4, 5, 6, 7, 8, 3, 1];
const bytes = (...parts: Array<string | number[]>): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));
const hex = (f: WireFrame): string => frame(f.flags, f.type, f.seq, f.payload).toString('hex');

/** ERROR texts per engine, compared once every engine ran. */
const errorTexts = new Map<string, string[]>();

class Peer {
  private seq = 0;
  constructor(readonly wire: WirePeer) {}
  /** Sends a request; returns every frame up to and including its reply. */
  async request(type: number, payload: Buffer | string = ''): Promise<{ seq: number; frames: WireFrame[] }> {
    const seq = ++this.seq;
    this.wire.write(frame(0, type, seq, payload));
    const frames: WireFrame[] = [];
    for (;;) {
      const f = await this.wire.readFrame(10_000);
      frames.push(f);
      if (f.flags & RESPONSE && f.seq === seq) return { seq, frames };
    }
  }
  /** The request's frames must be exactly `pushes` then an empty reply. */
  async expectEmptyReply(type: number, payload: Buffer | string, pushes: Buffer[] = []): Promise<void> {
    const { seq, frames } = await this.request(type, payload);
    expect(frames.map(hex)).toEqual([...pushes.map((p) => frame(0, type, 0, p).toString('hex')), frame(RESPONSE, type, seq, '').toString('hex')]);
  }
  async expectError(type: number, payload: Buffer | string): Promise<string> {
    const { seq, frames } = await this.request(type, payload);
    expect(frames).toHaveLength(1);
    const [reply] = frames;
    expect({ flags: reply!.flags, type: reply!.type, seq: reply!.seq }).toEqual({ flags: RESPONSE | ERROR, type, seq });
    const text = reply!.payload.toString('utf8');
    expect(text.length).toBeGreaterThan(0);
    expect(Buffer.from(text, 'utf8').equals(reply!.payload)).toBe(true);
    return text;
  }
  /** The next frame is exactly this push. */
  async expectPush(type: number, payload: Buffer): Promise<void> {
    expect(hex(await this.wire.readFrame(10_000))).toBe(frame(0, type, 0, payload).toString('hex'));
  }
  /** Nothing is pending: the next frame is the ECHO reply. */
  async expectNothingMore(): Promise<void> {
    const { seq, frames } = await this.request(ECHO, 'end');
    expect(frames.map(hex)).toEqual([frame(RESPONSE, ECHO, seq, 'end').toString('hex')]);
  }
  async stats(): Promise<{ topics: number; subscriptions: number }> {
    const { frames } = await this.request(STATS);
    return JSON.parse(frames[frames.length - 1]!.payload.toString());
  }
}

describe.each(engineCases())('PROTOCOL.md 5-6 topic types on $name', ({ name, options }) => {
  it('SUBSCRIBE/UNSUBSCRIBE/PUBLISH/WHOAMI/SENDTO/STATS answer and push exactly the prescribed frames', async () => {
    const fixture = await startFixture({ ...options, nodeId: 'conf', drainTimeout: 200 });
    try {
      // Cluster: round robin puts A and C on one worker, B on the other.
      const [A, B, C] = [new Peer(await connectPeer(fixture.port)), new Peer(await connectPeer(fixture.port)), new Peer(await connectPeer(fixture.port))];
      await A.expectEmptyReply(SUBSCRIBE, 'room');
      await A.expectEmptyReply(SUBSCRIBE, 'room'); // again: not an error, not counted twice
      await B.expectEmptyReply(SUBSCRIBE, 'room');
      await C.expectEmptyReply(SUBSCRIBE, 'other');
      expect(await A.stats()).toMatchObject({ topics: 2, subscriptions: 3 });

      // PUBLISH: the sender's own push (it subscribed) before its reply; the payload is the request's `topic 0x00 message`.
      const hello = bytes('room', [0], 'hello');
      await A.expectEmptyReply(PUBLISH, hello, [hello]);
      await B.expectPush(PUBLISH, hello);
      // A publisher that did not subscribe gets just the reply; a subscriber after its reply gets what is published next.
      const fromC = bytes('room', [0], 'from c');
      await C.expectEmptyReply(PUBLISH, fromC);
      await A.expectPush(PUBLISH, fromC);
      await B.expectPush(PUBLISH, fromC);
      // Binary message bytes (0x00 and 0xff included) travel unchanged; only the first 0x00 splits.
      const binary = bytes('other', [0], [0, 0xff, 0, 1]);
      await A.expectEmptyReply(PUBLISH, binary);
      await C.expectPush(PUBLISH, binary);

      // UNSUBSCRIBE: empty reply; a topic the connection is not in is not an error.
      await B.expectEmptyReply(UNSUBSCRIBE, 'room');
      await B.expectEmptyReply(UNSUBSCRIBE, 'never-joined');
      const after = bytes('room', [0], 'after');
      await C.expectEmptyReply(PUBLISH, after);
      await A.expectPush(PUBLISH, after);
      expect(await A.stats()).toMatchObject({ topics: 2, subscriptions: 2 });

      // WHOAMI: the address as UTF-8 text, naming the node; distinct per connection.
      const addresses = [];
      for (const peer of [A, B, C]) {
        const { seq, frames } = await peer.request(WHOAMI);
        expect(frames).toHaveLength(1);
        expect(frames[0]).toMatchObject({ flags: RESPONSE, type: WHOAMI, seq });
        const address = frames[0]!.payload.toString('utf8');
        expect(address).toMatch(/^conf(\.w\d+)?\/\S+$/);
        addresses.push(address);
      }
      expect(new Set(addresses).size).toBe(3);
      if (name.startsWith('cluster')) expect(addresses[0]!.split('/')[0]).not.toBe(addresses[1]!.split('/')[0]);

      // SENDTO: the message alone, type 8 seq 0, wherever the connection is; empty reply.
      await B.expectEmptyReply(SENDTO, bytes(addresses[0]!, [0], 'psst'));
      await A.expectPush(SENDTO, Buffer.from('psst'));
      await A.expectEmptyReply(SENDTO, bytes(addresses[1]!, [0], [0, 1, 2]));
      await B.expectPush(SENDTO, Buffer.from([0, 1, 2]));
      // An address that is gone: not an error, nothing delivered.
      const D = new Peer(await connectPeer(fixture.port));
      const { frames: who } = await D.request(WHOAMI);
      const gone = who[0]!.payload.toString('utf8');
      D.wire.destroy();
      await new Promise((resolve) => setTimeout(resolve, 200));
      await B.expectEmptyReply(SENDTO, bytes(gone, [0], 'too late'));

      // Topic names: 1-200 bytes of UTF-8 without 0x00; anything else is ERROR, and the connection stays open.
      const texts: string[] = [];
      const bad: Array<[number, Buffer]> = [
        [SUBSCRIBE, Buffer.alloc(0)],
        [SUBSCRIBE, Buffer.from('x'.repeat(201))],
        [SUBSCRIBE, Buffer.from('é'.repeat(101))], // 202 bytes
        [SUBSCRIBE, bytes('a', [0], 'b')],
        [SUBSCRIBE, Buffer.from([0xff, 0xfe])],
        [SUBSCRIBE, Buffer.from([0xed, 0xa0, 0x80])], // an encoded lone surrogate is not UTF-8
        [UNSUBSCRIBE, Buffer.alloc(0)],
        [UNSUBSCRIBE, Buffer.from('x'.repeat(201))],
        [UNSUBSCRIBE, Buffer.from([0xc3, 0x28])],
        [PUBLISH, bytes([0], 'empty topic')],
        [PUBLISH, bytes('x'.repeat(201), [0], 'm')],
        [PUBLISH, bytes([0xc3, 0x28], [0], 'm')],
        [PUBLISH, Buffer.from('no zero byte')],
        [SENDTO, Buffer.from('no zero byte')],
        [SENDTO, bytes('not an address', [0], 'x')],
      ];
      for (const [type, payload] of bad) texts.push(await C.expectError(type, payload));
      errorTexts.set(name, texts);
      // The bounds themselves are valid.
      await C.expectEmptyReply(SUBSCRIBE, 'x'.repeat(200));
      await C.expectEmptyReply(SUBSCRIBE, 'é'.repeat(100));
      await C.expectEmptyReply(SUBSCRIBE, 'ü');
      const wide = bytes('é'.repeat(100), [0], 'wide');
      await A.expectEmptyReply(PUBLISH, wide);
      await C.expectPush(PUBLISH, wide);
      expect(await C.stats()).toMatchObject({ topics: 5, subscriptions: 5 });

      // Exactly once: nothing else is pending for anybody.
      for (const peer of [A, B, C]) await peer.expectNothingMore();
    } finally {
      await fixture.stop();
    }
  }, 60_000);
});

afterAll(() => {
  // Same texts on every engine (the ERROR payloads come from the same code path).
  const all = [...errorTexts.values()];
  for (const texts of all) expect(texts).toEqual(all[0]);
});

describe.each(engineCases({ cluster: false }))('SUBSCRIBE on a bus, $name', ({ options }) => {
  it('is answered only once the bus subscription is in effect: a publish elsewhere right after the reply reaches it', async () => {
    const delay = 400;
    const bus = slowSubscriptions(memoryBus(), delay);
    const here = createServer({ ...options, bus, nodeId: 'here', drainTimeout: 200 });
    const there = createServer({ engine: 'net', bus, nodeId: 'there', drainTimeout: 200 });
    for (const server of [here, there]) {
      installDemo(server);
      onTestFinished(() => server.close());
    }
    const { port } = await here.listen({ port: 0 });
    await there.listen({ port: 0 });
    const peer = new Peer(await connectPeer(port));
    for (let round = 0; round < 3; round++) {
      const topic = `slow-${round}`;
      const started = performance.now();
      await peer.expectEmptyReply(SUBSCRIBE, topic);
      expect(performance.now() - started).toBeGreaterThanOrEqual(delay - 50);
      there.publish(topic, 9, `after the reply ${round}`);
      expect(hex(await peer.wire.readFrame(10_000))).toBe(frame(0, 9, 0, `after the reply ${round}`).toString('hex'));
    }
    // Subscribing again to a topic already in effect on the bus does not wait.
    const started = performance.now();
    await peer.expectEmptyReply(SUBSCRIBE, 'slow-0');
    expect(performance.now() - started).toBeLessThan(delay);
    await peer.expectNothingMore();
  }, 30_000);
});
