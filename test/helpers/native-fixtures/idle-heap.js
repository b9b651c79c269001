// Run with --expose-gc. Holds N idle connections on a heartbeating server
// (the native load generator, in this process but off the JS heap, is the
// client side) and prints the JS heap each connection costs the server, as
// JSON: { opened, heapPerConnection } (bytes, after full GCs).
'use strict';
const { createServer } = require('../../../dist/index.js');
const { installDemo } = require('../../../dist/cli/demo.js');
const { runLoad } = require('../../../dist/cli/bench.js');

const [engine, count] = [process.argv[2] || 'native', Number(process.argv[3] || 2000)];

async function main() {
  const server = createServer({ engine, threads: 1, heartbeat: { interval: 500, timeout: 2000 } });
  installDemo(server);
  const { port } = await server.listen({ port: 0, host: '127.0.0.1' });
  const heap = () => {
    global.gc();
    global.gc();
    return process.memoryUsage().heapUsed;
  };
  const before = heap();
  let during;
  let held = 0;
  const report = await runLoad(
    { host: '127.0.0.1', port, mode: 'idle', connections: count, interval: 600000, payload: 8, duration: 3, warmup: 0, rampTimeout: 30, progressInterval: 500 },
    (progress) => {
      // Measured a second into the hold: every connection open, heartbeats running.
      if (progress.phase === 'record' && progress.elapsedSeconds >= 1 && during === undefined) {
        held = progress.open;
        during = heap();
      }
    },
  );
  await server.close();
  process.stdout.write(`${JSON.stringify({ opened: report.opened, held, heapPerConnection: (during - before) / held })}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
