// docs/reliability.md T36, run by scripts/sanitize.sh under the ASan build: in one
// process, start a native server, let CLOSE_CLIENTS clients hammer it, close
// it while traffic (and queued batches) flow, and repeat CLOSE_ITERATIONS
// times. Alternates between the public API (createServer … close(), with
// GOAWAY, drain and CLOSE) and the bare addon Engine (stop() from a timer, and
// stop() from inside onBatch while more batches wait in the rings).
// The process must then exit by itself: no process.exit() here. If handles
// are still alive 15 s after the last iteration, an unref()ed timer names them
// and exits 3 (it cannot itself keep the process alive).
// Usage: node close-under-load.js [packageRoot]  (default: this repository)
'use strict';
const path = require('node:path');
const net = require('node:net');

const root = path.resolve(process.argv[2] || path.join(__dirname, '..', '..', '..'));
const { createServer } = require(path.join(root, 'dist', 'index.js'));
const addon = require(require.resolve('node-gyp-build', { paths: [root] }))(root);
const iterations = Number(process.env.CLOSE_ITERATIONS || 60);
const clientCount = Number(process.env.CLOSE_CLIENTS || 50);

function frame(type, seq, payload) {
  const bytes = Buffer.alloc(12 + payload.length);
  bytes[0] = 0xeb;
  bytes.writeUInt16BE(type, 2);
  bytes.writeUInt32BE(payload.length, 4);
  bytes.writeUInt32BE(seq, 8);
  payload.copy(bytes, 12);
  return bytes;
}

/** Clients that send a burst on connect and another on every chunk they get. */
function hammer(port, raw) {
  let received = 0;
  let seq = 0;
  const burst = () => {
    if (raw) return Buffer.alloc(4096, 'r');
    const parts = [];
    for (let i = 0; i < 8; i++) parts.push(frame(1 + (i % 2), ++seq, Buffer.alloc(200 + (i % 4) * 300, 'q')));
    return Buffer.concat(parts);
  };
  const sockets = [];
  for (let i = 0; i < clientCount; i++) {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(burst()));
    socket.on('data', (chunk) => {
      received += chunk.length;
      if (!socket.destroyed && socket.writableLength < 1 << 20) socket.write(burst());
    });
    sockets.push(socket);
  }
  return {
    received: () => received,
    destroy: () => sockets.forEach((socket) => socket.destroy()),
  };
}

const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function untilTraffic(clients, bytes, limit, over = () => false) {
  const start = Date.now();
  while (clients.received() < bytes && Date.now() - start < limit && !over()) await wait(5);
}

async function throughServer(i) {
  const server = createServer({ engine: 'native', threads: 1 + (i % 3), drainTimeout: 20 + (i % 4) * 20 });
  server.on('error', () => {});
  server.handle(1, (payload) => payload);
  server.handle(2, async (payload) => {
    await new Promise((resolve) => setImmediate(resolve));
    return payload;
  });
  const { port } = await server.listen({ port: 0 });
  const clients = hammer(port, false);
  await untilTraffic(clients, 64 * 1024, 2000);
  await server.close();
  clients.destroy();
  return clients.received();
}

async function throughEngine(i) {
  const stopInside = i % 4 === 1;
  let engine;
  let batches = 0;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    engine.stop();
  };
  engine = new addon.Engine({ threads: 2 + (i % 3), framing: 3 }, (loop, batch, count) => {
    batches++;
    if (stopped) return;
    const view = new DataView(batch);
    const commands = [];
    for (let r = 0; r < count; r++) {
      const at = r * 32;
      const kind = view.getUint8(at);
      const offset = count * 32 + view.getUint32(at + 16, true);
      const length = view.getUint32(at + 20, true);
      if (kind !== 3 && kind !== 6) continue;
      const command = Buffer.alloc(16 + (kind === 3 ? length : 0));
      command[0] = kind === 3 ? 1 : 2;
      command.writeUInt32LE(view.getUint32(at + 4, true), 4);
      command.writeUInt32LE(view.getUint32(at + 8, true), 8);
      if (kind === 3) {
        command.writeUInt32LE(length, 12);
        Buffer.from(batch, offset, length).copy(command, 16);
      }
      commands.push(command);
    }
    if (commands.length > 0) {
      const all = Buffer.concat(commands);
      engine.submit(loop, all, all.length);
    }
    if (stopInside && batches > 40) stop();
  });
  const port = engine.listen('127.0.0.1', 0, 511);
  const clients = hammer(port, true);
  await untilTraffic(clients, 256 * 1024, 2000, () => stopped);
  stop();
  clients.destroy();
  return clients.received();
}

(async () => {
  let bytes = 0;
  for (let i = 0; i < iterations; i++) {
    const started = Date.now();
    bytes += i % 2 === 0 ? await throughServer(i) : await throughEngine(i);
    if (process.env.CLOSE_VERBOSE) console.log(`iteration ${i}: ${Date.now() - started} ms`);
  }
  if (bytes === 0) {
    console.error('no traffic at all: the test did not test anything');
    process.exitCode = 1;
  }
  console.log(`close under load: ${iterations} iterations, ${clientCount} clients, ${bytes} bytes echoed`);
  setTimeout(() => {
    console.error(`still alive 15 s after the last close: ${JSON.stringify(process.getActiveResourcesInfo())}`);
    process.exit(3);
  }, 15_000).unref();
})().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
