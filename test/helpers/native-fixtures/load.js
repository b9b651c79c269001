// Shared by the exit fixtures: loads the addon from the package root and
// offers a raw-echo engine (records decoded minimally, commands built by hand).
'use strict';
const path = require('node:path');
const net = require('node:net');

const root = path.join(__dirname, '..', '..', '..');
const addon = require(require.resolve('node-gyp-build', { paths: [root] }))(root);

function command(op, slot, generation, payload = Buffer.alloc(0)) {
  const bytes = Buffer.alloc(16 + payload.length);
  bytes[0] = op;
  bytes.writeUInt32LE(slot, 4);
  bytes.writeUInt32LE(generation, 8);
  bytes.writeUInt32LE(payload.length, 12);
  payload.copy(bytes, 16);
  return bytes;
}

/** An engine whose onBatch echoes raw data and answers END with END. */
// EDGEPOLL_FIXTURE_THREADS (test/engines/native/engine.native.exit.test.ts)
// overrides a fixture's thread count: 0 runs each on the JS thread.
const fixtureThreads = process.env.EDGEPOLL_FIXTURE_THREADS;

function echoEngine(options = {}) {
  const threads = fixtureThreads === undefined ? options.threads : Number(fixtureThreads);
  const engine = new addon.Engine({ threads: 1, framing: 3, ...options, ...(threads === undefined ? {} : { threads }) }, (loop, batch, count) => {
    const view = new DataView(batch);
    for (let i = 0; i < count; i++) {
      const at = i * 32;
      const kind = view.getUint8(at);
      const slot = view.getUint32(at + 4, true);
      const generation = view.getUint32(at + 8, true);
      const offset = count * 32 + view.getUint32(at + 16, true);
      const length = view.getUint32(at + 20, true);
      if (kind === 3) engine.submit(loop, command(1, slot, generation, Buffer.from(batch, offset, length)), 16 + length);
      if (kind === 6) engine.submit(loop, command(2, slot, generation), 16);
    }
  });
  return engine;
}

/** Connects, sends `text`, resolves with the echo. */
function roundTrip(port, text) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' }, () => socket.write(text));
    let got = '';
    socket.on('data', (chunk) => {
      got += chunk;
      if (got.length >= text.length) {
        socket.end();
        resolve(got);
      }
    });
    socket.on('error', reject);
  });
}

module.exports = { addon, echoEngine, roundTrip, command };
