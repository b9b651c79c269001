#!/usr/bin/env node
// T24: the fire-hose, in its own process so its reads and writes do not share
// an event loop with the latency probes. Streams N MiB of a known pattern to a
// raw echo server as fast as the socket takes it, reads the echo back, and
// prints one JSON line: { sent, received, intact, ms }.
'use strict';
const net = require('node:net');

const port = Number(process.argv[2]);
const total = Number(process.argv[3]) * 1024 * 1024;
const chunk = Buffer.alloc(64 * 1024);
for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 13 + 7) & 0xff;

const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
const start = Date.now();
let sent = 0;
let received = 0;
let intact = true;
function pump() {
  while (sent < total) {
    sent += chunk.length;
    if (!socket.write(chunk)) return void socket.once('drain', pump);
  }
}
socket.on('connect', pump);
socket.on('data', (data) => {
  for (let i = 0; i < data.length; i += 997) {
    if (data[i] !== chunk[(received + i) % chunk.length]) intact = false;
  }
  received += data.length;
  if (received >= total) {
    process.stdout.write(`${JSON.stringify({ sent, received, intact, ms: Date.now() - start })}\n`);
    socket.destroy();
  }
});
socket.on('error', (error) => {
  // Exit only once the line is written: stdout to a pipe is asynchronous.
  process.stdout.write(`${JSON.stringify({ sent, received, intact: false, error: error.code })}\n`, () => process.exit(1));
});
