#!/usr/bin/env node
// The server under test of test/engines/native/engine.native.bounds.test.ts, in its own
// process so its RSS is its own. Argument: JSON server options. Echoes
// (raw: data; frame: type 1 requests), and obeys IPC commands:
//   { id, cmd: 'rss' }                  → { id, rss }
//   { id, cmd: 'stall', ms }            → blocks the JS thread, then { id }
//   { id, cmd: 'storm', count, size }   → broadcasts `count` messages at once,
//                                          ignoring the return value, then writes `write`
//                                          bytes to the first connection → { id, refused, wrote, rss }
//   { id, cmd: 'big', size }            → writes `size` bytes to the first connection at once → { id, wrote }
//   { id, cmd: 'stats' }                → { id, stats, connections }
//   { id, cmd: 'mem', gc? }             → collects garbage first when gc and --expose-gc, → { id, mem, smaps }
// Prints `listening on HOST:PORT`.
'use strict';
const { createServer } = require('../../../dist/index.js');

const server = createServer({ engine: 'native', heartbeat: false, ...JSON.parse(process.argv[2] || '{}') });
const closes = {};
let first;
let firstClose;
server.on('connection', (connection) => {
  if (!first) {
    first = connection;
    connection.on('close', (code) => (firstClose = code));
  }
  connection.on('data', (chunk) => connection.write(chunk));
  connection.on('close', (code) => {
    closes[code] = (closes[code] ?? 0) + 1;
  });
});
if (server.options.framing === 'frame') server.handle(1, (payload) => payload);
server.on('error', () => {});
let drains = 0;
server.on('broadcastDrain', () => drains++);

process.on('message', async (message) => {
  const reply = (extra) => process.send({ id: message.id, ...extra });
  switch (message.cmd) {
    case 'rss':
      return reply({ rss: process.memoryUsage.rss() });
    case 'mem':
      if (message.gc && global.gc) global.gc();
      return reply({ mem: process.memoryUsage(), smaps: require('node:fs').readFileSync('/proc/self/status', 'utf8').match(/Rss\w+:\s+\d+ kB/g) });
    case 'stall':
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, message.ms);
      return reply({});
    case 'storm': {
      const payload = Buffer.alloc(message.size, 0x62);
      let refused = 0;
      let peak = 0;
      for (let i = 0; i < message.count; i++) {
        if (!server.broadcast(server.options.framing === 'frame' ? 2 : payload, payload)) refused++;
        if (i % 1000 === 0) peak = Math.max(peak, process.memoryUsage.rss());
      }
      const wrote = message.write && first ? first.write(Buffer.alloc(message.write)) : undefined;
      return reply({ refused, wrote, rss: Math.max(peak, process.memoryUsage.rss()) });
    }
    case 'big':
      return reply({ wrote: first.write(Buffer.alloc(message.size, 0x65)) });
    case 'stats':
      return reply({ stats: await server.stats(), connections: server.connections, closes, drains, firstClose });
    default:
      return reply({ error: `unknown ${message.cmd}` });
  }
});
server.listen({ port: 0, backlog: 4096 }).then((address) => {
  process.stdout.write(`listening on ${address.host}:${address.port}\n`);
});
process.on('disconnect', () => process.exit(0));
