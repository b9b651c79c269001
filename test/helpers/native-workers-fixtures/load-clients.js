#!/usr/bin/env node
// Reconnecting edgepoll clients under steady request load, for the reload
// test in test/engines/workers/engine.native.workers.test.ts. Arguments: PORT COUNT. Each
// client sends one request at a time (echo, every fifth a 150 ms slow one,
// so some are in flight when GOAWAY comes), with a short pause between.
// Prints `ready` once every client is open; on `stop` (stdin) it closes them
// and prints one JSON line with what it saw.
'use strict';
const readline = require('node:readline');
const { connect } = require('../../../dist/index.js');

const [port, count] = process.argv.slice(2).map(Number);
const report = { sent: 0, answered: 0, wrong: 0, errors: {}, lostBeforeGoaway: 0, connectErrors: {}, opens: [], goaways: [] };
let stopping = false;
const loops = [];

function client(index) {
  const c = connect({ port, reconnect: { initialDelay: 50, maxDelay: 500 } });
  let opens = 0;
  let goawayAt = 0;
  c.on('open', () => opens++);
  c.on('goaway', () => {
    goawayAt = Date.now();
    report.goaways.push(goawayAt);
  });
  c.on('error', (error) => {
    if (error.code === 'ECONNREFUSED' || error.code === 'ECONNRESET' || error.code === 'EPIPE') {
      report.connectErrors[error.code] = (report.connectErrors[error.code] ?? 0) + 1;
    }
  });
  const loop = (async () => {
    await c.ready({ timeout: 10_000 });
    let n = 0;
    while (!stopping) {
      const slow = n % 5 === 4;
      const payload = slow ? '150' : `${index}:${n}`;
      const sentAt = Date.now();
      report.sent++;
      try {
        const reply = await c.request(slow ? 42 : 1, payload, { timeout: 10_000 });
        if (reply.toString() === payload) report.answered++;
        else report.wrong++;
      } catch (error) {
        report.errors[error.code] = (report.errors[error.code] ?? 0) + 1;
        // Lost although sent before the GOAWAY that ended its connection: the server dropped an in-flight request.
        if (error.code === 'ECONNECTION_LOST' && !(goawayAt > 0 && goawayAt <= sentAt)) report.lostBeforeGoaway++;
      }
      n++;
      await new Promise((resolve) => setTimeout(resolve, 40 + (n % 20)));
    }
    report.opens.push(opens);
    await c.close();
  })();
  return { c, loop };
}

async function main() {
  for (let i = 0; i < count; i++) loops.push(client(i));
  await Promise.all(loops.map(({ c }) => c.ready({ timeout: 20_000 })));
  process.stdout.write('ready\n');
  readline.createInterface({ input: process.stdin }).on('line', async (line) => {
    if (line !== 'stop') return;
    stopping = true;
    await Promise.all(loops.map(({ loop }) => loop));
    process.stdout.write(`${JSON.stringify(report)}\n`);
    process.exit(0);
  });
}

main().catch((error) => {
  process.stderr.write(`load failed: ${error.code}: ${error.message}\n`);
  process.exit(1);
});
