// A raw-echo engine that blocks its JS thread for 2 s when it receives the
// bytes "stall", sampling the loops' accept counters during the block
// (issue 11: accepts wait while the batch ring is full). Forked by
// test/engine.native.stall.test.ts; talks over IPC:
//   → { port }                     once listening
//   → { stalled: { accepted: [at 0 s, at 1 s, at 2 s] } } after a stall
//   ← 'rss' → { rss }
'use strict';
const { addon, command } = require('./load');

const accepted = () => engine.stats().loops.reduce((sum, loop) => sum + loop.accepted, 0);
const block = (ms) => {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    // a synchronous handler or a GC pause: the JS thread takes no batch
  }
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
        const samples = [accepted()];
        block(1000);
        samples.push(accepted());
        block(1000);
        samples.push(accepted());
        process.send({ stalled: { accepted: samples } });
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
