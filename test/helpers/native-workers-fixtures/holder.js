#!/usr/bin/env node
// Holds a listening socket and never accepts, for the queue test in
// test/engines/workers/engine.native.workers.test.ts. `reuseport PORT`: makes its own
// SO_REUSEPORT listener on PORT (its own accept queue); `inherit`: holds the
// socket it was given at fd 3 (the shared socket, one queue). Prints `ready`.
'use strict';
const { tryLoadNative } = require('../../../dist/engines/native/binding.js');

const [mode, port] = process.argv.slice(2);
if (mode === 'reuseport') tryLoadNative().createListener('127.0.0.1', Number(port), 511, true);
process.stdout.write('ready\n');
setInterval(() => {}, 1000);
