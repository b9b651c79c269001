#!/usr/bin/env node
// The benchmark's reference: a plain node:net server, no edgepoll code, written
// the way a careful user would write it for speed — frames parsed in 'data',
// all replies of one 'data' event in one write, PING answered, TCP_NODELAY,
// reads paused while the kernel's send buffer is full. Every ratio in
// bench/RESULTS.md is taken against it. Speaks ECHO, BROADCAST and PING of the
// demo service (bench/baseline-frames.mjs).
// Usage: node bench/baseline-net.mjs [--host 127.0.0.1] [--port 0]; prints
// `listening on HOST:PORT` like `edgepoll serve`, exits 0 on SIGTERM/SIGINT.
import net from 'node:net';
import { answer, newConnection } from './baseline-frames.mjs';

const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
};

const sockets = new Set();

const server = net.createServer({ noDelay: true }, (socket) => {
  sockets.add(socket);
  const conn = newConnection();
  const broadcast = (push) => {
    for (const peer of sockets) if (peer !== socket) peer.write(push);
  };
  const resume = () => socket.resume();
  socket.on('data', (chunk) => {
    const replies = answer(conn, chunk, broadcast);
    if (replies === false) socket.destroy();
    else if (replies !== null && !socket.write(replies)) {
      socket.pause();
      socket.once('drain', resume);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => sockets.delete(socket));
});

server.listen(Number(option('--port', '0')), option('--host', '127.0.0.1'), 511, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening on ${address}:${port}\n`);
});

const stop = () => {
  server.close(() => process.exit(0));
  for (const socket of sockets) socket.destroy();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
