// threads: N given as argv[2]. Prints one JSON line: the process's threads
// before the engine and after it served 20 echoes (threads: 0 adds none).
'use strict';
const fs = require('node:fs');
const { echoEngine, roundTrip } = require('./load');

const tasks = () => fs.readdirSync('/proc/self/task').length;
const threads = Number(process.argv[2]);

async function main() {
  const before = tasks();
  const engine = echoEngine({ threads });
  const port = engine.listen('127.0.0.1', 0, 64);
  for (let i = 0; i < 20; i++) {
    const echo = await roundTrip(port, `echo ${i}`);
    if (echo !== `echo ${i}`) throw new Error(`echo ${echo}`);
  }
  const after = tasks();
  engine.stop();
  process.stdout.write(`${JSON.stringify({ before, after })}\n`);
}
main().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
