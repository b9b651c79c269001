#!/usr/bin/env node
// A server for black-box tests: the demo service plus handlers that fail,
// stall or call back, on any engine (with the cluster engine this script runs
// in every worker, as node:cluster users expect). Options come as one JSON
// argument; prints `listening on HOST:PORT` like `edgepoll serve`.
'use strict';
const cluster = require('node:cluster');
const { createServer } = require('../../dist/index.js');
const { installDemo } = require('../../dist/demo.js');

const options = JSON.parse(process.argv[2] || '{}');
const server = createServer(options);
installDemo(server);
if (server.options.framing === 'frame') {
  server.handle(10, () => {
    throw new Error('boom');
  });
  server.handle(11, async () => {
    throw new Error('async boom');
  });
  server.handle(12, () => {
    throw 'a plain string';
  });
  // SLOW: waits the number of ms in the payload (decimal text), then echoes it.
  server.handle(13, (payload) => new Promise((resolve) => setTimeout(() => resolve(payload), Number(payload.toString()) || 0)));
  // CALLBACK: asks the client (type 20) and replies with the client's answer.
  server.handle(14, (payload, { connection }) => connection.request(20, payload, { timeout: 2000 }));
  // BIG: replies with as many bytes as the payload says.
  server.handle(15, (payload) => Buffer.alloc(Number(payload.toString()), 0x61));
  // BLOCK: blocks the JS thread for the number of ms in the payload.
  server.handle(16, (payload) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(payload.toString()) || 0);
    return 'unblocked';
  });
  // PUSH-THROW: a push whose handler throws (no reply; an 'error' event).
  server.handle(17, () => {
    throw new Error('push boom');
  });
}
server.on('error', (error) => process.stderr.write(`fixture error: ${error.message}\n`));
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close().then(() => process.exit(0), () => process.exit(1));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen({ port: options.port || 0, host: '127.0.0.1' }).then(
  (address) => {
    if (!cluster.isWorker) process.stdout.write(`listening on ${address.host}:${address.port}\n`);
  },
  (error) => {
    process.stderr.write(`fixture listen failed: ${error.code} ${error.message}\n`);
    process.exit(1);
  },
);
