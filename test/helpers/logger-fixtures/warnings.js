#!/usr/bin/env node
// Creates servers whose creation warns (EDGEPOLL_FORCE_NO_NATIVE=1 with engine
// auto; EDGEPOLL_ENGINE=net against engine 'net'… set by the test), with a
// logger when argv[2] is 'logger', and prints what reached the logger and
// what reached process 'warning' as one JSON line.
'use strict';
const { createServer } = require('../../../dist/index.js');

const logged = [];
const warnings = [];
process.on('warning', (warning) => warnings.push(warning.code));
const logger = { debug() {}, info() {}, error() {}, warn: (message) => logged.push(message) };
const withLogger = process.argv[2] === 'logger';
const engines = process.argv.slice(3);
for (const engine of engines) createServer(withLogger ? { engine, logger } : { engine }).close();
setImmediate(() => process.stdout.write(`${JSON.stringify({ logged, warnings })}\n`));
