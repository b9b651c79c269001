// Run with --expose-gc. Engines nobody references any more are collected
// (finalizer stops them) without crashing; a listening engine that was
// unref()'d lets the process exit (the environment cleanup hook stops it).
'use strict';
const { echoEngine, roundTrip } = require('./load');

let collected = 0;
const registry = new FinalizationRegistry(() => {
  collected++;
});
for (let i = 0; i < 20; i++) {
  const engine = echoEngine({ threads: 2 });
  registry.register(engine, i);
}
(function stoppedOne() {
  const engine = echoEngine();
  engine.listen('127.0.0.1', 0, 16);
  engine.stop();
  registry.register(engine, 'stopped');
})();

const listening = echoEngine();
const port = listening.listen('127.0.0.1', 0, 16);
listening.unref();

async function main() {
  for (let round = 0; round < 20 && collected < 21; round++) {
    global.gc();
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  if (collected < 21) throw new Error(`only ${collected} of 21 engines were collected`);
  const echo = await roundTrip(port, 'still serving');
  if (echo !== 'still serving') throw new Error(`echo ${echo}`);
  process.stdout.write(`collected ${collected}\n`);
  // Nothing holds the loop open now: the process exits with `listening` still listening.
}
main();
