/**
 * docs/reliability.md T04-T12 gaps on every engine, black-box (the suites in
 * server.protocol/framings.test.ts cover the rest): maxFrame 300 boundaries
 * for frame and line framing, random chunking, random-delay pipelining, PING
 * abuse with bounded memory, unsolicited control frames, line and length
 * framing edge cases at EOF.
 */
import { describe, expect, it, onTestFinished } from 'vitest';
import { connectPeer, frame, type WirePeer, nonReader } from '../helpers/wire';
import { engineCases } from '../helpers/fixture';
import { startServer } from '../helpers/reliability-fixtures/start';
import { fdCount, rssBytes, settle, sleep } from '../helpers/reliability-fixtures/proc';

const RESPONSE = 1;

/** A deterministic random source (mulberry32), so a failure can be replayed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function lengthMessage(payload: Buffer): Buffer {
  const header = Buffer.alloc(4);
  header.writeUInt32BE(payload.length);
  return Buffer.concat([header, payload]);
}

async function alive(peer: WirePeer, seq: number): Promise<void> {
  peer.write(frame(0, 1, seq, 'alive'));
  let reply;
  do reply = await peer.readFrame(5000);
  while (reply.seq !== seq);
  expect(reply.payload.toString()).toBe('alive');
}

describe.each(engineCases())('input edge cases on $name', ({ options }) => {
  it('T04 frame framing with maxFrame 300: 0, 1, 299, 300 echoed, 301 refused at the header', async () => {
    const server = await startServer({ ...options, maxFrame: 300 });
    const peer = await connectPeer(server.port);
    for (const size of [0, 1, 299, 300]) {
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 7 + size) & 0xff;
      peer.write(frame(0, 1, size + 1, payload));
      const reply = await peer.readFrame();
      expect(reply).toMatchObject({ flags: RESPONSE, seq: size + 1 });
      expect(reply.payload.equals(payload)).toBe(true);
    }
    // Only the header of the 301-byte frame: the refusal must not wait for the payload.
    peer.write(frame(0, 1, 999, Buffer.alloc(301)).subarray(0, 12));
    expect(await peer.readFrame()).toMatchObject({ type: 0xff03, payload: Buffer.from('frame too large') });
    await peer.waitClosed();
  });

  it('T04 line framing with maxFrame 300: lines of 0, 1, 299, 300 bytes echoed, 301 closes', async () => {
    const server = await startServer({ ...options, framing: 'line', maxFrame: 300 });
    const peer = await connectPeer(server.port);
    for (const size of [0, 1, 299, 300]) {
      peer.write(Buffer.concat([Buffer.alloc(size, 0x62), Buffer.from('\n')]));
      expect(await peer.readLine()).toBe('b'.repeat(size));
    }
    peer.write(Buffer.concat([Buffer.alloc(301, 0x62), Buffer.from('\n')]));
    const rest = await peer.waitClosed();
    expect(rest.length).toBe(0);
  });

  it('T05 a stream of mixed frames cut at random offsets arrives whole and in order', async () => {
    const server = await startServer({ ...options });
    const peer = await connectPeer(server.port);
    const random = seeded(5);
    const frames: Buffer[] = [];
    const payloads: Buffer[] = [];
    for (let i = 0; i < 1000; i++) {
      const size = random() < 0.05 ? Math.floor(random() * 200_000) : Math.floor(random() * 64);
      const payload = Buffer.alloc(size, i & 0xff);
      payloads.push(payload);
      frames.push(frame(0, 1, i + 1, payload));
    }
    const stream = Buffer.concat(frames);
    for (let at = 0; at < stream.length; ) {
      const cut = Math.min(stream.length, at + 1 + Math.floor(random() * random() * 1024 * 1024));
      peer.write(stream.subarray(at, cut));
      at = cut;
      if (random() < 0.1) await sleep(1);
    }
    const replies = await peer.readFrames(1000, 20_000);
    expect(replies.map((r) => r.seq)).toEqual(payloads.map((_, i) => i + 1));
    for (const r of replies) expect(r.payload.equals(payloads[r.seq - 1]!)).toBe(true);
  });

  it('T06 1000 requests with random 0-20 ms handler delays and pushes mixed in: each answered once', async () => {
    const server = await startServer({ ...options });
    const peer = await connectPeer(server.port);
    const random = seeded(6);
    const chunks: Buffer[] = [];
    for (let i = 1; i <= 1000; i++) {
      chunks.push(frame(0, 13, i, String(Math.floor(random() * 21))));
      if (i % 10 === 0) chunks.push(frame(0, 13, 0, '1'));
    }
    peer.write(Buffer.concat(chunks));
    const replies = await peer.readFrames(1000, 20_000);
    expect(new Set(replies.map((r) => r.seq)).size).toBe(1000);
    for (const r of replies) expect(r).toMatchObject({ type: 13, flags: RESPONSE });
    // No reply to a push arrives after the last request's reply either.
    await alive(peer, 5000);
  });

  it('T08 a push whose handler throws reaches the error event, and the process survives', async () => {
    const server = await startServer({ ...options });
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 0x1234, 0, 'nobody'));
    peer.write(frame(0, 17, 0)); // a push whose handler throws: no reply
    await alive(peer, 1);
    await settle(() => server.stderr(), (text) => text.includes('push boom'), 3000);
    expect(server.stderr()).toMatch(/fixture error:.*push boom/);
    expect(server.child.exitCode).toBe(null);
  });

  it('T09 1,000,000 PINGs from a peer that never reads: the server stops reading or closes, memory stays bounded', async () => {
    const server = await startServer({ ...options, heartbeat: false });
    const bystander = await connectPeer(server.port);
    await alive(bystander, 1);
    await sleep(200);
    const baseline = rssBytes(server.child.pid!);
    const abuser = await nonReader(server.port);
    const ping = frame(0, 0xff01, 7, Buffer.alloc(64, 0x70)); // 76 bytes
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping));
    let sent = 0;
    let peak = baseline;
    let blocked = false;
    while (sent < 1_000_000 && !abuser.gone) {
      if (!abuser.write(burst)) {
        // Our own buffer is full: wait for the kernel to take more. If the server stopped
        // reading, 'drain' never comes.
        const drained = await Promise.race([
          new Promise<boolean>((resolve) => abuser.once('drain', () => resolve(true))),
          sleep(1500).then(() => false),
        ]);
        if (!drained) {
          blocked = true;
          break;
        }
      }
      sent += 1000;
      if (sent % 50_000 === 0) peak = Math.max(peak, rssBytes(server.child.pid!));
    }
    peak = Math.max(peak, rssBytes(server.child.pid!));
    // Bounded: the server either stopped reading (our writes stall) or closed us,
    // before taking all 76 MB of PINGs and queueing 76 MB of PONGs.
    expect(blocked || abuser.gone).toBe(true);
    expect(peak - baseline).toBeLessThan(48 * 1024 * 1024);
    // Others are served meanwhile.
    await alive(bystander, 2);
  });

  it('T10 CLOSE with a 1 MiB reason closes just that connection, and its fd is released', async () => {
    const server = await startServer({ ...options });
    const bystander = await connectPeer(server.port);
    await alive(bystander, 1);
    const fds = fdCount(server.child.pid!);
    for (let i = 0; i < 3; i++) {
      const peer = await connectPeer(server.port);
      await alive(peer, 1);
      peer.write(frame(0, 0xff03, 0, Buffer.alloc(1024 * 1024, 0x72)));
      await peer.waitClosed();
      peer.destroy();
    }
    // Over maxFrame, the reason is refused at the header like any frame.
    const over = await connectPeer(server.port);
    over.write(frame(0, 0xff03, 0, Buffer.alloc(1024 * 1024 + 1, 0x72)).subarray(0, 12));
    expect(await over.readFrame()).toMatchObject({ type: 0xff03, payload: Buffer.from('frame too large') });
    await over.waitClosed();
    over.destroy();
    await alive(bystander, 2);
    expect(await settle(() => fdCount(server.child.pid!), (n) => n <= fds)).toBeLessThanOrEqual(fds);
  });

  it('T10 unsolicited PONGs and stray RESPONSE frames in bulk are ignored without a leak', async () => {
    const server = await startServer({ ...options });
    const peer = await connectPeer(server.port);
    const chunks: Buffer[] = [];
    for (let i = 1; i <= 2000; i++) chunks.push(frame(0, 0xff02, i, 'p'), frame(RESPONSE, 1, i, 'stray'));
    peer.write(Buffer.concat(chunks));
    await alive(peer, 1);
    peer.write(frame(0, 3, 2));
    const stats = JSON.parse((await peer.readFrame()).payload.toString());
    expect(stats.unmatched).toBe(2000);
  });

  it('T11 line framing: 2 MiB without a newline closes without an echo; \\n first, NUL and bad UTF-8 are bytes', async () => {
    const server = await startServer({ ...options, framing: 'line' });
    const peer = await connectPeer(server.port);
    peer.write(Buffer.from([0x0a, 0x00, 0xff, 0xfe, 0xc3, 0x28, 0x0d, 0x0a, 0x0d, 0x41, 0x0a]));
    expect(await peer.readLine()).toBe('');
    expect(Buffer.from(await peer.readLine(), 'latin1')).toEqual(Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28]));
    expect(Buffer.from(await peer.readLine(), 'latin1')).toEqual(Buffer.from([0x0d, 0x41]));
    const long = await connectPeer(server.port);
    long.write(Buffer.alloc(2 * 1024 * 1024, 0x61));
    expect((await long.waitClosed()).length).toBe(0);
  });

  it('T12 length framing: 0xFFFFFFFF closes; a partial prefix or payload at EOF is never delivered', async () => {
    const server = await startServer({ ...options, framing: 'length' });
    const huge = await connectPeer(server.port);
    huge.write(Buffer.from('ffffffff', 'hex'));
    expect((await huge.waitClosed()).length).toBe(0);
    const partialPrefix = await connectPeer(server.port);
    partialPrefix.write(lengthMessage(Buffer.from('whole')));
    expect((await partialPrefix.readBytes(9)).subarray(4).toString()).toBe('whole');
    partialPrefix.socket.end(Buffer.from([0x00, 0x00]));
    expect((await partialPrefix.waitClosed()).length).toBe(0);
    const partialPayload = await connectPeer(server.port);
    partialPayload.socket.end(lengthMessage(Buffer.from('truncated')).subarray(0, 8));
    expect((await partialPayload.waitClosed()).length).toBe(0);
    const zero = await connectPeer(server.port);
    zero.write(lengthMessage(Buffer.alloc(0)));
    expect((await zero.readBytes(4)).readUInt32BE()).toBe(0);
  });

  it('T25 exactly k x 64 KiB (the native read buffer) and k x 256 KiB (its read budget), then silence: every byte echoed', async () => {
    const server = await startServer({ ...options, framing: 'raw' });
    for (const size of [64 * 1024, 128 * 1024, 256 * 1024, 512 * 1024, 1024 * 1024]) {
      const peer = await connectPeer(server.port);
      const payload = Buffer.alloc(size);
      for (let i = 0; i < size; i++) payload[i] = (i * 17 + size) & 0xff;
      peer.write(payload);
      // Nothing more is sent: a reader that stopped after a full buffer would wait forever.
      expect((await peer.readBytes(size, 10_000)).equals(payload)).toBe(true);
      peer.destroy();
    }
  });
});
