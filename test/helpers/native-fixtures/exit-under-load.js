// process.exit(0) while the loop threads are busy: 1,000 connections echo
// traffic through a 2-loop engine, and the main thread exits mid-stream
// (Node runs no environment cleanup hook on process.exit, docs/reliability.md
// T37). Run repeatedly by test/engines/native/engine.native.exit.test.ts (a few times) and
// scripts/sanitize.sh (100 times under ASan). Must exit 0 with no output on stderr.
'use strict';
const net = require('node:net');
const { echoEngine } = require('./load');

const CONNECTIONS = Number(process.env.EXIT_CONNECTIONS || 1000);
const engine = echoEngine({ threads: 2 });
const port = engine.listen('127.0.0.1', 0, 1024);
const chunk = Buffer.alloc(4096, 0x61);
let connected = 0;
let echoed = 0;
for (let i = 0; i < CONNECTIONS; i++) {
  const socket = net.connect({ port, host: '127.0.0.1' }, () => {
    socket.write(chunk);
    if (++connected === CONNECTIONS) waitForTraffic(echoed);
  });
  // Every echo is sent straight back: traffic never stops on its own.
  socket.on('data', (data) => {
    echoed += data.length;
    socket.write(data);
  });
  socket.on('error', () => undefined);
}

// Exit once every connection is up and another MiB has been echoed since
// (the loops are then busy); a sanitized build is slow, hence the long deadline.
function waitForTraffic(from) {
  const deadline = Date.now() + 20_000;
  const check = () => {
    if (echoed - from >= 1024 * 1024) return exitNow();
    if (Date.now() > deadline) {
      process.stderr.write('no traffic before exit\n');
      process.exit(2);
    }
    setTimeout(check, 10);
  };
  check();
}

function exitNow() {
  process.stdout.write(`exiting with ${connected} connections, ${echoed} bytes echoed\n`);
  process.exit(0);
}
