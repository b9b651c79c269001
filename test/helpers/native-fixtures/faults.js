// Run under test/helpers/native-fixtures/fault-shim.c (LD_PRELOAD): prints one
// JSON line { listen: 'ok' | error code, served, acceptErrors }.
'use strict';
const { echoEngine, roundTrip } = require('./load');

const engine = echoEngine({ threads: 1 });
let port;
try {
  port = engine.listen('127.0.0.1', 0, 16);
} catch (error) {
  process.stdout.write(`${JSON.stringify({ listen: error.code })}\n`);
  engine.stop();
  process.exit(0);
}
const timeout = new Promise((resolve) => setTimeout(() => resolve('no answer'), 3000));
Promise.race([roundTrip(port, 'hello'), timeout]).then((served) => {
  const acceptErrors = engine.stats().loops[0].acceptErrors;
  process.stdout.write(`${JSON.stringify({ listen: 'ok', served, acceptErrors })}\n`);
  engine.stop();
  process.exit(0);
});
