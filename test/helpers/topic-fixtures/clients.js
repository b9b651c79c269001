#!/usr/bin/env node
// Many topic subscribers in one child process (keeps the test process's fds
// low): argv port, first, count. Connection i SUBSCRIBEs to `own-i` and to
// shared-0 … shared-9, then counts the type-9 pushes it gets. IPC: 'ready'
// once every SUBSCRIBE is answered; on 'counts?' replies { shared, personal }.
'use strict';
const net = require('node:net');

const [port, first, count] = process.argv.slice(2).map(Number);
const counts = { shared: 0, personal: 0 };

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
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let buffered = Buffer.alloc(0);
    let answered = 0;
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 12) {
        const length = buffered.readUInt32BE(4);
        if (buffered.length < 12 + length) break;
        const type = buffered.readUInt16BE(2);
        const flags = buffered[1];
        const payload = buffered.subarray(12, 12 + length).toString();
        buffered = buffered.subarray(12 + length);
        if (type === 4 && flags === 1 && ++answered === 11) resolve(socket);
        else if (type === 4 && flags !== 1) reject(new Error(`SUBSCRIBE failed: ${payload}`));
        else if (type === 9 && payload === 'personal') counts.personal++;
        else if (type === 9) counts.shared++;
      }
    });
    socket.on('connect', () => {
      const parts = [frame(4, 1, `own-${index}`)];
      for (let t = 0; t < 10; t++) parts.push(frame(4, 2 + t, `shared-${t}`));
      socket.write(Buffer.concat(parts));
    });
  });
}

(async () => {
  const sockets = [];
  for (let i = first; i < first + count; i += 100) {
    const batch = [];
    for (let j = i; j < Math.min(i + 100, first + count); j++) batch.push(open(j));
    sockets.push(...(await Promise.all(batch)));
  }
  process.send({ ready: true });
  process.on('message', (message) => {
    if (message === 'counts?') process.send({ counts });
    if (message === 'stop') {
      for (const socket of sockets) socket.destroy();
      process.exit(0);
    }
  });
})().catch((error) => {
  process.stderr.write(`${error.stack}\n`);
  process.exit(1);
});
