#!/usr/bin/env node
// One share of a large idle client side (bench/heartbeats.mjs spawns several,
// so no process holds more than ~10,000 fds): the native load generator in
// `idle` mode, answering the server's PINGs. Argument: JSON of runLoad options.
// Prints `ready` once every connection is open and measuring has started,
// then one JSON line with the load report when the run ends.
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { runLoad } = createRequire(import.meta.url)(path.join(root, 'dist', 'cli', 'bench.js'));
let ready = false;
const report = await runLoad(JSON.parse(process.argv[2]), (progress) => {
  if (!ready && progress.phase === 'record') {
    ready = true;
    process.stdout.write('ready\n');
  }
});
process.stdout.write(`${JSON.stringify(report)}\n`);
