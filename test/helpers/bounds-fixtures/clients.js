#!/usr/bin/env node
// Client side of test/engines/native/engine.native.bounds.test.ts (many fds, so its own
// process). Argument: JSON { port, count, mode, bytes? }.
//   mode 'partial': each connection sends `bytes` (hex) once and then waits.
//   mode 'read':    each connection reads and discards everything.
//   mode 'flood':   each connection sends `total / count` bytes of raw data and
//                   reads the echo back; { done } once every echo arrived.
// Reports { opened } when all are connected; exits when the parent disconnects.
'use strict';
const net = require('node:net');

const { port, count, mode, bytes, total } = JSON.parse(process.argv[2]);
const sockets = [];
let opened = 0;
let echoed = 0;
const each = total ? Math.ceil(total / count) : 0;
const chunk = Buffer.alloc(64 * 1024, 0x63);


// Connect in a window of 200 at a time so the backlog is never the limit.
let next = 0;
function more() {
  while (next < count && next - opened < 200) {
    const i = next++;
    const socket = net.connect({ port, host: '127.0.0.1' });
    sockets.push(socket);
    socket.on('error', () => {});
    socket.on('connect', () => {
      if (mode === 'partial') socket.write(Buffer.from(bytes, 'hex'));
      opened++;
      if (opened === count) process.send({ opened });
      more();
    });
    let got = 0;
    socket.on('data', (data) => {
      if (mode !== 'flood') return;
      got += data.length;
      if (got === each) {
        echoed++;
        if (echoed === count) process.send({ done: true });
      }
    });
    void i;
  }
}
more();

process.on('message', (message) => {
  if (message.cmd !== 'flood') return;
  for (const socket of sockets) {
    let left = each;
    while (left > 0) {
      const n = Math.min(left, chunk.length);
      socket.write(chunk.subarray(0, n));
      left -= n;
    }
  }
});
process.on('disconnect', () => process.exit(0));
