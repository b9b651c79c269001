#!/usr/bin/env node
// The server of the black-box suites: the demo service plus handlers that
// fail, stall, call back or check ordering, on any engine (with the cluster
// engine this script runs in every worker, as node:cluster users expect).
// Argument: one JSON object of server options plus optional `port`, `host`,
// `path` (a Unix socket) and `backlog`; prints `listening on HOST:PORT` like
// `edgepoll serve` (`listening on PATH:0` for a Unix socket).
'use strict';
const cluster = require('node:cluster');
const { createServer } = require('../../dist/index.js');
const { installDemo } = require('../../dist/cli/demo.js');

const { backlog, port, host, path, ...options } = JSON.parse(process.argv[2] || '{}');
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
  // TIMED BLOCK: like BLOCK, and answers `start end`, process.hrtime.bigint() in ns around the
  // block (CLOCK_MONOTONIC, the same clock in every process of the machine), so a test can tell
  // whether what it sent went out while this thread was blocked.
  server.handle(18, (payload) => {
    const start = process.hrtime.bigint();
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(payload.toString()) || 0);
    return `${start} ${process.hrtime.bigint()}`;
  });
  // PUSH-THROW: a push whose handler throws (no reply; an 'error' event).
  server.handle(17, () => {
    throw new Error('push boom');
  });
  // ORDER (T28): pushes and requests carry a decimal sequence number; the
  // handler counts each connection's numbers that do not follow 1, 2, 3, …
  // and answers requests with the number (so the peer checks reply order too).
  const order = new WeakMap();
  server.handle(30, (payload, { connection }) => {
    const state = order.get(connection) ?? { last: 0, violations: 0 };
    order.set(connection, state);
    const n = Number(payload.toString());
    if (n !== state.last + 1) state.violations++;
    state.last = n;
    return payload;
  });
  // ORDER-RESULT: `last violations` of this connection.
  server.handle(31, (_payload, { connection }) => {
    const state = order.get(connection) ?? { last: 0, violations: 0 };
    return `${state.last} ${state.violations}`;
  });
  // PEER: `remoteAddress remotePort` as this connection reports them.
  server.handle(32, (_payload, { connection }) => `${connection.remoteAddress} ${connection.remotePort}`);
  // TLS: connection.tls as JSON (null when undefined; absent fields as null).
  server.handle(33, (_payload, { connection }) => JSON.stringify(connection.tls ?? null, (_key, value) => (value === undefined ? null : value)));
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
server.listen(path ? { path, backlog } : { port: port || 0, host: host || '127.0.0.1', backlog }).then(
  (address) => {
    if (!cluster.isWorker) process.stdout.write(`listening on ${address.path ?? address.host}:${address.port}\n`);
  },
  (error) => {
    process.stderr.write(`fixture listen failed: ${error.code} ${error.message}\n`);
    process.exit(1);
  },
);
