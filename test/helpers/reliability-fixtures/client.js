#!/usr/bin/env node
// T18: an edgepoll client in its own process (so the test can SIGSTOP it).
// Argument: JSON { port, heartbeat }. Prints `ready` once connected and keeps
// the connection open, answering the server's PINGs, until killed.
'use strict';
const { connect } = require('../../../dist/index.js');

const { port, heartbeat } = JSON.parse(process.argv[2]);
const client = connect({ port, host: '127.0.0.1', heartbeat, reconnect: false });
client.on('error', () => undefined);
client.ready().then(
  () => process.stdout.write('ready\n'),
  (error) => {
    process.stderr.write(`client failed: ${error.message}\n`);
    process.exit(1);
  },
);
