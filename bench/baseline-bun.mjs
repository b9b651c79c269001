// The benchmark's Bun reference: a `Bun.listen` server with the same frame
// handling as the plain node:net one (bench/baseline-frames.mjs: ECHO,
// BROADCAST, PING; all replies of one 'data' call in one write). Bun's write
// takes what the kernel accepts and returns the count, so the rest is queued
// here and written on 'drain', in order. Runs under Bun only (bench/bun.mjs
// finds or installs it); no edgepoll code.
// Usage: bun bench/baseline-bun.mjs [--host 127.0.0.1] [--port 0]; prints
// `listening on HOST:PORT` like `edgepoll serve`, exits 0 on SIGTERM/SIGINT.
import { answer, newConnection } from './baseline-frames.mjs';

const option = (name, fallback) => {
  const at = process.argv.indexOf(name);
  return at > 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
};

const sockets = new Set();

function send(socket, bytes) {
  const state = socket.data;
  if (state.queued !== null) {
    state.queued = Buffer.concat([state.queued, bytes]);
    return;
  }
  const written = socket.write(bytes);
  if (written < bytes.length) state.queued = Buffer.from(bytes.subarray(Math.max(written, 0)));
}

const listener = Bun.listen({
  hostname: option('--host', '127.0.0.1'),
  port: Number(option('--port', '0')),
  socket: {
    open(socket) {
      socket.setNoDelay?.(true);
      const broadcast = (push) => {
        for (const peer of sockets) if (peer !== socket) send(peer, push);
      };
      socket.data = { conn: newConnection(), queued: null, broadcast };
      sockets.add(socket);
    },
    data(socket, chunk) {
      const replies = answer(socket.data.conn, chunk, socket.data.broadcast);
      if (replies === false) socket.end();
      else if (replies !== null) send(socket, replies);
    },
    drain(socket) {
      const state = socket.data;
      if (state.queued === null) return;
      const queued = state.queued;
      state.queued = null;
      send(socket, queued);
    },
    close(socket) {
      sockets.delete(socket);
    },
    error(socket) {
      sockets.delete(socket);
    },
  },
});

process.stdout.write(`listening on ${listener.hostname}:${listener.port}\n`);

const stop = () => {
  listener.stop(true);
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
