#!/usr/bin/env node
// A cluster-engine demo server on an external bus (test/bus/bus.cluster.test.ts):
// argv JSON { bus: 'redis://…' | 'nats://…', workers, nodeId, subscribeDelay?, engine? ('cluster' | 'native' workers) }
// (subscribeDelay: ms each bus subscription takes to come into effect, as
// test/helpers/slow-bus.cjs, shared with the in-process suites). The script runs
// in the primary and in every worker, as node:cluster users write it. The
// primary prints `listening on HOST:PORT`, then takes one JSON command a line
// on standard input and acts on its own server — { op: 'publish', topic,
// message } | { op: 'sendTo', address, message } | { op: 'broadcast', message }
// (type 9, 8 and 2 pushes) — answering `done <op>` or `failed <code>`.
'use strict';
const cluster = require('node:cluster');
const readline = require('node:readline');
const { createServer, redisBus, natsBus } = require('../../../dist/index.js');
const { installDemo } = require('../../../dist/cli/demo.js');
const { slowSubscriptions } = require('../slow-bus.cjs');

const spec = JSON.parse(process.argv[2]);
const real = spec.bus.startsWith('nats:') ? natsBus({ servers: spec.bus }) : redisBus({ url: spec.bus, dropDelay: 100 });
const bus = spec.subscribeDelay ? slowSubscriptions(real, spec.subscribeDelay) : real;
const server = createServer({ engine: spec.engine ?? 'cluster', workers: spec.workers ?? 2, bus, nodeId: spec.nodeId, drainTimeout: 200 });
installDemo(server);
server.on('error', (error) => process.stderr.write(`fixture error: ${error.code ?? ''} ${error.message}\n`));
process.on('SIGTERM', () => server.close().then(() => process.exit(0), () => process.exit(1)));
server.listen({ port: 0 }).then(
  (address) => {
    if (!cluster.isPrimary) return;
    process.stdout.write(`listening on ${address.host}:${address.port}\n`);
    readline.createInterface({ input: process.stdin }).on('line', (line) => {
      const command = JSON.parse(line);
      try {
        if (command.op === 'publish') server.publish(command.topic, 9, command.message);
        else if (command.op === 'sendTo') server.sendTo(command.address, 8, command.message);
        else if (command.op === 'broadcast') server.broadcast(2, command.message);
        process.stdout.write(`done ${command.op}\n`);
      } catch (error) {
        process.stdout.write(`failed ${error.code}\n`);
      }
    });
  },
  (error) => {
    process.stderr.write(`fixture listen failed: ${error.code} ${error.message}\n`);
    process.exit(1);
  },
);

