#!/usr/bin/env node
// The server of test/engines/workers/engine.native.workers.test.ts: the native engine in
// workers (this script runs in the primary and in every worker). Argument:
// one JSON object of server options. Frame types: the demo's (1 echo,
// 2 broadcast, 3 stats) plus 40 (this worker's pid), 41 (the version this
// worker read from FIXTURE_VERSION_FILE when it started: a reload must run
// code and data fresh from disk), 42 (wait the ms in the payload, then reply).
// A worker whose version is FIXTURE_FAIL_VERSION exits at once (a broken
// deploy). SIGHUP reloads (stderr `reload done` / `reload failed: CODE: …`),
// SIGTERM drains and exits 0.
'use strict';
const cluster = require('node:cluster');
const fs = require('node:fs');
const { createServer } = require('../../../dist/index.js');
const { installDemo } = require('../../../dist/cli/demo.js');

const version = process.env.FIXTURE_VERSION_FILE ? fs.readFileSync(process.env.FIXTURE_VERSION_FILE, 'utf8').trim() : '1';
if (cluster.isWorker && process.env.FIXTURE_FAIL_VERSION && version === process.env.FIXTURE_FAIL_VERSION) {
  process.stderr.write(`worker ${process.pid}: version ${version} refuses to start\n`);
  process.exit(3);
}
const server = createServer({ engine: 'native', ...JSON.parse(process.argv[2] || '{}') });
installDemo(server);
server.handle(40, () => String(process.pid));
server.handle(41, () => version);
server.handle(42, (payload) => new Promise((resolve) => setTimeout(() => resolve(payload), Number(payload.toString()) || 0)));
server.on('error', (error) => process.stderr.write(`${cluster.isPrimary ? 'primary' : `worker ${process.pid}`}: ${error.code}: ${error.message}\n`));

server.listen({ port: 0 }).then(
  (address) => {
    if (!cluster.isPrimary) return;
    // The handlers first: a test may signal as soon as it reads the line below.
    process.on('SIGHUP', () => {
      process.stderr.write('SIGHUP: reloading\n');
      server.reload().then(
        () => process.stderr.write('reload done\n'),
        (error) => process.stderr.write(`reload failed: ${error.code}: ${error.message}\n`),
      );
    });
    process.on('SIGTERM', () => {
      server.close().then(() => process.exit(0));
    });
    process.stdout.write(`listening on ${address.host}:${address.port}\n`);
  },
  (error) => {
    process.stderr.write(`listen failed: ${error.code}: ${error.message}\n`);
    process.exit(1);
  },
);
