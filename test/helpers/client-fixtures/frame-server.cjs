'use strict';
/**
 * A small edgepoll frame-protocol server for the client tests, written on
 * node:net with its own decoder (independent of src/codec.ts, so a codec bug
 * cannot hide a client bug). Used in-process (createFrameServer) or as a child
 * process (`node frame-server.cjs PORT`) that can be killed, restarted on the
 * same port and SIGSTOPped; the child prints `listening on 127.0.0.1:PORT` and
 * obeys IPC commands: goaway, ping, close-all, stats.
 *
 * Types: 1 ECHO; 4 DELAYED ECHO (first 4 payload bytes: u32 ms to wait);
 * 5 FAIL (RESPONSE|ERROR `boom`); others: RESPONSE|ERROR `unknown type <n>`.
 * Every request's payload is counted (stats.counts) so tests can prove that
 * each request ran exactly once.
 */
const net = require('node:net');

function frame(flags, type, seq, payload) {
  const body = Buffer.from(payload || '');
  const out = Buffer.alloc(12 + body.length);
  out[0] = 0xeb;
  out[1] = flags;
  out.writeUInt16BE(type, 2);
  out.writeUInt32BE(body.length, 4);
  out.writeUInt32BE(seq >>> 0, 8);
  body.copy(out, 12);
  return out;
}

function createFrameServer() {
  const sockets = new Set();
  const counts = new Map();
  const stats = { accepted: 0, requests: 0, pongs: 0, pushes: 0 };
  const server = net.createServer((socket) => {
    stats.accepted++;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buffered = buffered.length ? Buffer.concat([buffered, chunk]) : chunk;
      while (buffered.length >= 12) {
        if (buffered[0] !== 0xeb) {
          socket.destroy();
          return;
        }
        const length = buffered.readUInt32BE(4);
        if (buffered.length < 12 + length) break;
        const flags = buffered[1];
        const type = buffered.readUInt16BE(2);
        const seq = buffered.readUInt32BE(8);
        const payload = Buffer.from(buffered.subarray(12, 12 + length));
        buffered = buffered.subarray(12 + length);
        onFrame(socket, flags, type, seq, payload);
      }
    });
  });

  function onFrame(socket, flags, type, seq, payload) {
    if (type === 0xff01) return void socket.write(frame(0, 0xff02, seq, payload));
    if (type === 0xff02) return void stats.pongs++;
    if (type === 0xff03) return void socket.end();
    if (flags & 1) return; // replies to our own requests are not used here
    if (seq === 0) {
      stats.pushes++;
      if (type === 2) socket.write(frame(0, 2, 0, payload)); // push back (broadcast to self)
      return;
    }
    stats.requests++;
    const key = payload.toString('hex');
    counts.set(key, (counts.get(key) || 0) + 1);
    const answer = (f, body) => {
      if (!socket.destroyed) socket.write(frame(f, type, seq, body));
    };
    if (type === 1) answer(1, payload);
    else if (type === 4) setTimeout(() => answer(1, payload), payload.length >= 4 ? payload.readUInt32BE(0) : 0);
    else if (type === 5) answer(3, 'boom');
    else answer(3, `unknown type ${type}`);
  }

  return {
    server,
    sockets,
    counts,
    stats,
    listen(port = 0) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => resolve(server.address().port));
      });
    },
    broadcast(bytes) {
      for (const socket of sockets) socket.write(bytes);
    },
    goaway() {
      this.broadcast(frame(0, 0xff04, 0, ''));
    },
    ping(payload = 'hb') {
      this.broadcast(frame(0, 0xff01, 7, payload));
    },
    closeAll(reason = 'shutdown') {
      for (const socket of sockets) socket.end(frame(0, 0xff03, 0, reason));
    },
    /** Sends a request to every client (the client's handlers answer). */
    requestAll(type, seq, payload) {
      this.broadcast(frame(0, type, seq, payload));
    },
    snapshot() {
      return { ...stats, connections: sockets.size, counts: Object.fromEntries(counts) };
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { createFrameServer, frame };

if (require.main === module) {
  const fixture = createFrameServer();
  fixture.listen(Number(process.argv[2] || 0)).then(
    (port) => process.stdout.write(`listening on 127.0.0.1:${port}\n`),
    (error) => {
      process.stderr.write(`${error.code || error.message}\n`);
      process.exit(1);
    },
  );
  process.on('message', (message) => {
    if (message.cmd === 'goaway') fixture.goaway();
    else if (message.cmd === 'ping') fixture.ping();
    else if (message.cmd === 'close-all') fixture.closeAll(message.reason);
    if (message.id !== undefined) process.send({ id: message.id, stats: fixture.snapshot() });
  });
  process.on('disconnect', () => process.exit(0));
}
