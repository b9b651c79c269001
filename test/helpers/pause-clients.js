// Clients for test/engines/native/engine.native.pause.test.ts, run in a worker thread so
// that they keep sending while the test's JS thread is blocked on purpose.
// workerData: { port, framing, sizes, send, clientPause }. Each client sends
// `size` payload bytes in the framing, then shutdown(SHUT_WR), keeps reading,
// and reports when the server has closed it. send: 'burst' (one write and the
// FIN), 'trickle' (2 KiB writes 1 ms apart), 'split' (64 KiB, 200 ms, the rest
// and the FIN). clientPause: ms the client does not read at first.
'use strict';
const net = require('node:net');
const { parentPort, workerData } = require('node:worker_threads');

const { port, framing, sizes, send, clientPause = 0 } = workerData;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function encode(total) {
  const parts = [];
  let payload = 0;
  let seq = 1;
  while (payload < total) {
    const size = Math.min(1000 + (seq % 7) * 97, total - payload);
    const body = Buffer.alloc(size, 0x41 + (seq % 26));
    payload += size;
    if (framing === 'frame') {
      const header = Buffer.alloc(12);
      header[0] = 0xeb;
      header.writeUInt16BE(2, 2);
      header.writeUInt32BE(size, 4);
      header.writeUInt32BE(seq, 8);
      parts.push(header, body);
    } else if (framing === 'length') {
      const prefix = Buffer.alloc(4);
      prefix.writeUInt32BE(size, 0);
      parts.push(prefix, body);
    } else if (framing === 'line') {
      parts.push(body, Buffer.from('\n'));
    } else {
      parts.push(body);
    }
    seq++;
  }
  return { wire: Buffer.concat(parts), payload };
}

const clients = sizes.map((size) => {
  const { wire, payload } = encode(size);
  const socket = net.connect({ port, host: '127.0.0.1' });
  const client = { payload, received: 0, ended: false, closed: false, error: '' };
  if (clientPause) socket.pause();
  socket.on('data', (chunk) => (client.received += chunk.length));
  socket.on('end', () => (client.ended = true));
  socket.on('error', (error) => (client.error = error.code || error.message));
  client.done = new Promise((resolve) => socket.once('close', () => resolve((client.closed = true))));
  client.run = async () => {
    await new Promise((resolve) => (socket.connecting ? socket.once('connect', resolve) : resolve()));
    if (send === 'burst') {
      socket.end(wire);
    } else if (send === 'split') {
      socket.write(wire.subarray(0, 64 * 1024));
      await sleep(200);
      socket.end(wire.subarray(64 * 1024));
    } else {
      for (let at = 0; at < wire.length; at += 2048) {
        socket.write(wire.subarray(at, at + 2048));
        await sleep(1);
      }
      socket.end();
    }
    if (clientPause) {
      await sleep(clientPause);
      socket.resume();
    }
  };
  client.socket = socket;
  return client;
});

const report = () =>
  clients.map(({ payload, received, ended, closed, error }) => ({ payload, received, ended, closed, error }));
parentPort.on('message', (message) => {
  if (message === 'report') parentPort.postMessage({ kind: 'report', clients: report() });
  if (message === 'stop') {
    for (const client of clients) client.socket.destroy();
    parentPort.close();
  }
});
Promise.all(clients.map((client) => client.run()))
  .then(() => Promise.all(clients.map((client) => client.done)))
  .then(() => parentPort.postMessage({ kind: 'done', clients: report() }));
