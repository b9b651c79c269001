#!/usr/bin/env node
// A server with no 'error' listener and no logger option: its handler errors
// go to the default logger (test/server/logger.test.ts checks stderr).
'use strict';
const { createServer } = require('../../../dist/index.js');

const server = createServer({ engine: process.argv[2] || 'net' });
server.handle(17, () => {
  throw new Error('push boom');
});
server.listen().then((address) => process.stdout.write(`listening on ${address.host}:${address.port}\n`));
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
