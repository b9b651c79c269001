#!/usr/bin/env node
// Issue 17: one share of a reconnect storm. Opens `count` edgepoll clients
// (reconnect on: the first retry 0.75-1.5 s after losing the server, then at
// most 1.5 s apart, so the whole share comes back within about a second of a
// quick restart) and reports on stdout, one JSON
// line per line read on stdin: { open, opens, errors: { CODE: n }, lastErrorAt }.
// `errors` counts the clients' 'error' events by code; `errorsSince` those of
// attempts begun at or after the time on the line (ECONNREFUSED while the
// server is down is expected; the test looks at attempts made after it is back).
'use strict';
const readline = require('node:readline');
const { connect } = require('../../../dist/index.js');

const port = Number(process.argv[2]);
const count = Number(process.argv[3]);
let open = 0;
let opens = 0;
const errors = {};
const errorTimes = [];
const clients = [];
for (let i = 0; i < count; i++) {
  const client = connect({
    host: '127.0.0.1',
    port,
    reconnect: { initialDelay: 1500, maxDelay: 1500, jitter: 0.5 },
    heartbeat: false,
  });
  let isOpen = false;
  // An error belongs to the attempt that made it: its time is when that
  // attempt began (a busy process may report a refusal long after the SYN).
  let attemptAt = Date.now();
  client.on('connecting', () => (attemptAt = Date.now()));
  client.on('open', () => {
    isOpen = true;
    open++;
    opens++;
  });
  client.on('reconnecting', () => {
    if (isOpen) open--;
    isOpen = false;
  });
  client.on('error', (error) => {
    errors[error.code] = (errors[error.code] ?? 0) + 1;
    errorTimes.push([attemptAt, error.code]);
  });
  clients.push(client);
}
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const since = Number(line) || 0;
  const after = {};
  for (const [at, code] of errorTimes) if (at >= since) after[code] = (after[code] ?? 0) + 1;
  process.stdout.write(`${JSON.stringify({ open, opens, errors, errorsSince: after })}\n`);
});
