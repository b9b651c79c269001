// The addon inside worker_threads: load + listen + echo + stop in one worker,
// worker.terminate() on a worker whose engine listens, and a second addon
// instance in the main thread at the same time (context-aware, no globals).
'use strict';
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

if (isMainThread) {
  const { echoEngine, roundTrip } = require('./load');
  const main = echoEngine();
  const mainPort = main.listen('127.0.0.1', 0, 16);
  const run = (mode) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: { mode } });
      worker.on('error', reject);
      worker.on('message', async (message) => {
        if (message.port) {
          const echo = await roundTrip(message.port, `worker ${mode}`);
          if (echo !== `worker ${mode}`) reject(new Error(`echo ${echo}`));
          if (mode === 'terminate') await worker.terminate();
          else worker.postMessage('stop');
        }
      });
      worker.on('exit', (code) => resolve(code));
    });
  (async () => {
    const stopped = await run('stop');
    const terminated = await run('terminate');
    const echo = await roundTrip(mainPort, 'main');
    if (echo !== 'main') throw new Error(`main echo ${echo}`);
    main.stop();
    process.stdout.write(`workers exited ${stopped} ${terminated}\n`);
  })();
} else {
  const { echoEngine } = require('./load');
  const engine = echoEngine({ threads: 2 });
  const port = engine.listen('127.0.0.1', 0, 16);
  parentPort.postMessage({ port });
  parentPort.on('message', () => {
    engine.stop();
    parentPort.close();
  });
  void workerData;
}
