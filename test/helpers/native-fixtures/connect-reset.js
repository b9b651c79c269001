// Client side of a connect/reset flood, in its own process (fd limits):
// `node connect-reset.js PORT CYCLES CONCURRENCY [RATE]` connects and resets
// (RST) CYCLES times, CONCURRENCY at a time and at most RATE per second (so a
// flood outlasts a stall), then prints "done OK ERRORS".
// A connection attempt that fails (backlog full and SYNs dropped for long
// enough) counts as an error and the cycle is retried.
'use strict';
const net = require('node:net');

const [port, cycles, concurrency, rate = 0] = process.argv.slice(2).map(Number);
const began = Date.now();
let started = 0;
let ok = 0;
let errors = 0;
let reported = false;

function cycle() {
  if (started >= cycles) {
    if (ok === cycles && !reported) {
      reported = true;
      process.stdout.write(`done ${ok} ${errors}\n`);
    }
    return;
  }
  const due = rate > 0 ? began + (started * 1000) / rate : 0;
  if (due > Date.now()) {
    setTimeout(cycle, due - Date.now());
    return;
  }
  started++;
  const socket = net.connect({ port, host: '127.0.0.1' });
  let connected = false;
  socket.once('connect', () => {
    connected = true;
    ok++;
    socket.resetAndDestroy();
    setImmediate(cycle);
  });
  socket.on('error', () => {
    if (connected) return;
    connected = true; // one continuation per attempt
    errors++;
    started--; // retry this cycle
    setImmediate(cycle);
  });
}
for (let i = 0; i < concurrency; i++) cycle();
