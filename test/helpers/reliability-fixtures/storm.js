#!/usr/bin/env node
// T21: one process of the accept storm. Fires `count` connects at once, then
// on each sends one ECHO frame and waits for its reply (proof it was
// accepted and served), holding every connection until all are done. Prints
// one JSON line: { served, failed, errors, connectMs }.
'use strict';
const net = require('node:net');

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
const request = Buffer.from('eb0000010000000100000001' + '78', 'hex');
const sockets = [];
const connectMs = [];
const errors = [];
let served = 0;
let settled = 0;
const start = Date.now();
function done() {
  if (++settled < count) return;
  for (const socket of sockets) socket.destroy();
  process.stdout.write(`${JSON.stringify({ served, failed: errors.length, errors, connectMs })}\n`, () => process.exit(0));
}
for (let i = 0; i < count; i++) {
  const socket = net.connect({ port, host: '127.0.0.1' });
  sockets.push(socket);
  let got = 0;
  let finished = false;
  const finish = (error) => {
    if (finished) return;
    finished = true;
    if (error) errors.push(error);
    else served++;
    done();
  };
  // A connection whose handshake ACK the full accept queue dropped is
  // recovered by TCP itself, when the client retransmits its request: after a
  // retransmitted SYN the RTO starts at 3 s, so the tries come 3, 9, 21, 45
  // and 93 s after connect. 60 s allowed four; late in a long suite (tens of
  // thousands of TIME_WAIT sockets on loopback) CI once had 368 of 5,000 on
  // the net engine still unserved at 60 s.
  socket.setTimeout(120_000, () => finish('ETIMEDOUT'));
  socket.once('connect', () => {
    connectMs.push(Date.now() - start);
    socket.write(request);
  });
  socket.on('data', (data) => {
    got += data.length;
    if (got >= 13) finish();
  });
  socket.on('error', (error) => finish(error.code || 'error'));
  socket.on('close', () => finish('closed before the reply'));
}
