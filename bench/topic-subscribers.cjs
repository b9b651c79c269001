#!/usr/bin/env node
// Subscribers for bench/topics.mjs, in a child process: argv JSON
// { ports, first, count, topicOf: 'one' | 'spread', topics }. Connection i
// connects to ports[i % ports.length], SUBSCRIBEs to its topic, then counts
// type-6 pushes and samples publish→receive latency from the 8-byte
// timestamp (ms, float64 BE, performance.timeOrigin-based) after `topic 0x00`.
// IPC: 'ready' when subscribed; on 'report' sends { received, samples }.
'use strict';
const net = require('node:net');

const spec = JSON.parse(process.argv[2]);
let received = 0;
const samples = [];

function frame(type, seq, payload) {
  const body = Buffer.from(payload);
  const out = Buffer.alloc(12 + body.length);
  out[0] = 0xeb;
  out.writeUInt16BE(type, 2);
  out.writeUInt32BE(body.length, 4);
  out.writeUInt32BE(seq, 8);
  body.copy(out, 12);
  return out;
}

function open(index) {
  const topic = spec.topicOf === 'one' ? 'fan' : `t${index % spec.topics}`;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port: spec.ports[index % spec.ports.length], host: '127.0.0.1' });
    let buffered = Buffer.alloc(0);
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      let at = 0;
      while (buffered.length - at >= 12) {
        const length = buffered.readUInt32BE(at + 4);
        if (buffered.length - at < 12 + length) break;
        const type = buffered.readUInt16BE(at + 2);
        if (type === 4) resolve(socket);
        else if (type === 6) {
          received++;
          if ((received & 15) === 0) {
            const zero = buffered.indexOf(0, at + 12);
            const sent = buffered.readDoubleBE(zero + 1);
            samples.push(performance.timeOrigin + performance.now() - sent);
          }
        }
        at += 12 + length;
      }
      buffered = buffered.subarray(at);
    });
    socket.on('connect', () => socket.write(frame(4, 1, topic)));
  });
}

(async () => {
  for (let i = spec.first; i < spec.first + spec.count; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(i + 200, spec.first + spec.count); j++) batch.push(open(j));
    await Promise.all(batch);
  }
  process.send('ready');
  process.on('message', (message) => {
    if (message === 'reset') {
      received = 0;
      samples.length = 0;
    } else if (message === 'report') process.send({ received, samples });
    else if (message === 'stop') process.exit(0);
  });
})().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
