// Listens, echoes once, stops: the process must then exit by itself.
'use strict';
const { echoEngine, roundTrip } = require('./load');

const engine = echoEngine({ threads: 2 });
const port = engine.listen('127.0.0.1', 0, 16);
roundTrip(port, 'ping').then((echo) => {
  if (echo !== 'ping') throw new Error(`echo ${echo}`);
  engine.stop();
  engine.stop(); // idempotent
  process.stdout.write('stopped\n');
});
