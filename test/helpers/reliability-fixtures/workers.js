#!/usr/bin/env node
// T37: two worker_threads, each running createServer on port 0 at the same
// time, plus one in the main thread. The main thread terminates worker A and
// checks: A's port refuses, A's threads and fds are gone, B and main still
// echo. Argument: the engine name. Prints one JSON line with what it saw.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');
const { createServer } = require('../../../dist/index.js');
const { installDemo } = require('../../../dist/cli/demo.js');

function serve(engine) {
  const server = createServer({ engine, threads: 2, framing: 'line' });
  installDemo(server);
  return server.listen({ port: 0, host: '127.0.0.1' }).then((address) => ({ server, port: address.port }));
}

function roundTrip(port, text) {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    const timer = setTimeout(() => done('timeout'), 3000);
    function done(result) {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    }
    socket.on('data', (chunk) => {
      got += chunk;
      if (got.includes('\n')) done(got.trim());
    });
    socket.on('error', (error) => done(error.code));
    socket.on('connect', () => socket.write(`${text}\n`));
  });
}

const count = (dir) => fs.readdirSync(dir).length;

if (isMainThread) {
  const engine = process.argv[2];
  (async () => {
    const main = await serve(engine);
    const before = { fds: count('/proc/self/fd'), threads: count('/proc/self/task') };
    const start = () =>
      new Promise((resolve, reject) => {
        const worker = new Worker(__filename, { workerData: { engine } });
        worker.once('error', reject);
        worker.once('message', (port) => resolve({ worker, port }));
      });
    const [a, b] = await Promise.all([start(), start()]);
    const echoes = [await roundTrip(a.port, 'a'), await roundTrip(b.port, 'b')];
    const exitCode = await a.worker.terminate();
    // Thread and fd teardown finish right after 'exit'; give them a moment.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const afterA = await roundTrip(a.port, 'a again');
    const stillB = await roundTrip(b.port, 'b again');
    const stillMain = await roundTrip(main.port, 'main');
    await b.worker.terminate();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const after = { fds: count('/proc/self/fd'), threads: count('/proc/self/task') };
    await main.server.close();
    process.stdout.write(`${JSON.stringify({ echoes, exitCode, afterA, stillB, stillMain, before, after })}\n`);
  })().catch((error) => {
    process.stderr.write(`${error.stack}\n`);
    process.exit(1);
  });
} else {
  serve(workerData.engine).then(({ port }) => parentPort.postMessage(port));
}
