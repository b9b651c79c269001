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
  socket.setTimeout(60_000, () => finish('ETIMEDOUT'));
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
