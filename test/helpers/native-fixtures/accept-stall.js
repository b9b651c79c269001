// A raw-echo engine that blocks its JS thread for 2 s when it receives the
// bytes "stall", sampling the loops' accept counters during the block
// (issue 11: accepts wait while the batch ring is full). Forked by
// test/engines/native/engine.native.stall.test.ts; talks over IPC:
//   → { port }                     once listening
//   → { stalled: [per 50 ms sample: [per loop: { accepted, ringFull }]] } after a stall
//   ← 'rss' → { rss }
'use strict';
const { addon, command } = require('./load');

const sample = () => engine.stats().loops.map(({ accepted, ringFull }) => ({ accepted, ringFull }));
// A synchronous handler or a GC pause: the JS thread takes no batch. The
// loops' counters are read every 50 ms meanwhile (atomics, no batch needed).
const block = (ms) => {
  const samples = [sample()];
  const started = Date.now();
  let next = started + 50;
  while (Date.now() < started + ms) {
    if (Date.now() >= next) {
      samples.push(sample());
      next += 50;
    }
  }
  samples.push(sample());
  return samples;
};

const engine = new addon.Engine({ threads: 2, framing: 3 }, (loop, batch, count) => {
  const view = new DataView(batch);
  for (let i = 0; i < count; i++) {
    const at = i * 32;
    const kind = view.getUint8(at);
    const slot = view.getUint32(at + 4, true);
    const generation = view.getUint32(at + 8, true);
    const offset = count * 32 + view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (kind === 3) {
      const bytes = Buffer.from(batch, offset, length);
      if (bytes.toString() === 'stall') {
        process.send({ stalled: block(2000) });
      }
      engine.submit(loop, command(1, slot, generation, bytes), 16 + length);
    }
    if (kind === 6) engine.submit(loop, command(2, slot, generation), 16);
  }
});
const port = engine.listen('127.0.0.1', 0, 511);
process.on('message', (message) => {
  if (message === 'rss') process.send({ rss: process.memoryUsage().rss });
  if (message === 'stop') {
    engine.stop();
    process.exit(0);
  }
});
process.send({ port });
