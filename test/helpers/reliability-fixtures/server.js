#!/usr/bin/env node
// The reliability suites' server: test/helpers/fixture-server.js's demo and
// handlers that stall, plus what the catalogue needs beyond them: a listen
// backlog (T21) and per-connection ordering checks (T28). Runs on any engine
// (with cluster, in every worker). Argument: one JSON object of server
// options plus an optional `backlog`; prints `listening on HOST:PORT`.
'use strict';
const cluster = require('node:cluster');
const { createServer } = require('../../../dist/index.js');
const { installDemo } = require('../../../dist/demo.js');

const { backlog, port, ...options } = JSON.parse(process.argv[2] || '{}');
const server = createServer(options);
installDemo(server);

if (server.options.framing === 'frame') {
  // SLOW: waits the number of ms in the payload (decimal text), then echoes it.
  server.handle(13, (payload) => new Promise((resolve) => setTimeout(resolve, Number(payload.toString()) || 0, payload)));
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
  // ORDER (T28): pushes and requests carry a decimal sequence number; the handler
  // checks that each connection's numbers arrive as 1, 2, 3, … and answers
  // requests with the number itself (so the peer also checks reply order).
  const order = new WeakMap();
  const check = (payload, connection) => {
    const state = order.get(connection) ?? { last: 0, violations: 0 };
    order.set(connection, state);
    const n = Number(payload.toString());
    if (n !== state.last + 1) state.violations++;
    state.last = n;
    return payload;
  };
  server.handle(30, (payload, { connection }) => check(payload, connection));
  // ORDER-RESULT: `last violations` of this connection.
  server.handle(31, (_payload, { connection }) => {
    const state = order.get(connection) ?? { last: 0, violations: 0 };
    return `${state.last} ${state.violations}`;
  });
}
server.on('error', (error) => process.stderr.write(`fixture error: ${error.code ?? ''} ${error.message}\n`));
let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  server.close().then(() => process.exit(0), () => process.exit(1));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
server.listen({ port: port || 0, host: '127.0.0.1', backlog }).then(
  (address) => {
    if (!cluster.isWorker) process.stdout.write(`listening on ${address.host}:${address.port}\n`);
  },
  (error) => {
    process.stderr.write(`fixture listen failed: ${error.code} ${error.message}\n`);
    process.exit(1);
  },
);
