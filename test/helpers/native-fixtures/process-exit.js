// process.exit() while an engine listens with an open connection: must exit cleanly.
'use strict';
const net = require('node:net');
const { echoEngine, roundTrip } = require('./load');

const engine = echoEngine({ threads: 2 });
const port = engine.listen('127.0.0.1', 0, 16);
roundTrip(port, 'ping').then(() => {
  const idle = net.connect({ port, host: '127.0.0.1' }, () => {
    process.stdout.write('exiting\n');
    process.exit(0);
  });
  idle.on('error', () => undefined);
});
