/**
 * A cluster engine with an echo sink, run by test/engines/cluster/engine.cluster.test.ts
 * (bundled with esbuild, so the primary and its workers run the same file).
 * The primary prints `listening on 127.0.0.1:PORT` and drains on SIGTERM.
 * Frame types: 1 echo; 2 broadcast the payload as a type-2 push, reply empty;
 * 3 reply with stats() as JSON; 4 reply with this worker's pid.
 * Workers: 2, or EDGEPOLL_TEST_WORKERS; maxConnections: EDGEPOLL_TEST_MAX_CONNECTIONS.
 */
import cluster from 'node:cluster';
import { createClusterEngine } from '../../../src/engines/cluster/engine';
import type { Engine, EngineOptions, EngineSink } from '../../../src/engines/engine';
import { TYPE_GOAWAY, encodeFrame } from '../../../src/protocol/constants';

const options: EngineOptions & { drainTimeout: number } = {
  framing: 'frame',
  maxFrame: 1024 * 1024,
  threads: 1,
  workers: Number(process.env.EDGEPOLL_TEST_WORKERS ?? 2),
  highWaterMark: 64 * 1024,
  maxBufferedAmount: 8 * 1024 * 1024,
  heartbeatInterval: 0,
  heartbeatTimeout: 0,
  idleTimeout: 0,
  frameTimeout: 30_000,
  maxConnections: Number(process.env.EDGEPOLL_TEST_MAX_CONNECTIONS ?? 0),
  allowHalfOpen: false,
  acceptMode: 'exclusive',
  nativeEcho: false,
  triggerMode: 'edge',
  drainTimeout: 5000,
};

const open = new Set<number>();
let engine: Engine;
let onEmpty: (() => void) | undefined;
let draining = false;

/** A worker's graceful shutdown, as the server layer does it: GOAWAY, wait for the peers, close. */
async function drain(): Promise<void> {
  if (draining) return;
  draining = true;
  await engine.stopAccepting();
  engine.broadcast(encodeFrame(0, TYPE_GOAWAY, 0, new Uint8Array(0)));
  engine.flush();
  if (open.size > 0) {
    await new Promise<void>((resolve) => {
      onEmpty = resolve;
      setTimeout(resolve, options.drainTimeout).unref();
    });
  }
  await engine.shutdown();
}

const sink: EngineSink = {
  open: (id) => open.add(id),
  message: (id, type, _flags, seq, payload) => {
    if (type === 2) {
      engine.broadcast(encodeFrame(0, 2, 0, payload));
      engine.sendFrame(id, 1, 2, seq, new Uint8Array(0));
    } else if (type === 3) {
      void engine.stats().then((stats) => {
        engine.sendFrame(id, 1, 3, seq, Buffer.from(JSON.stringify(stats)));
        engine.flush();
      });
    } else if (type === 4) {
      engine.sendFrame(id, 1, 4, seq, Buffer.from(String(process.pid)));
    } else {
      engine.sendFrame(id, 1, type, seq, payload);
    }
  },
  data: () => {},
  drain: () => {},
  // The server's policy (src/server/connection.ts): without allowHalfOpen, end our side after the peer's FIN.
  end: (id) => engine.end(id),
  close: (id) => {
    open.delete(id);
    if (open.size === 0) onEmpty?.();
  },
  error: (error) => process.stderr.write(`fixture error: ${(error as { code?: string }).code} ${error.message}\n`),
  batchEnd: () => engine.flush(),
  requestClose: () => void drain(),
};

async function main(): Promise<void> {
  engine = createClusterEngine(options, sink);
  const address = await engine.listen('127.0.0.1', 0, 511);
  if (!cluster.isPrimary) return;
  process.stdout.write(`listening on ${address.host}:${address.port}\n`);
  process.on('SIGTERM', () => {
    process.stderr.write('primary: draining\n');
    void engine
      .stopAccepting()
      .then(() => engine.shutdown())
      .then(() => {
        process.stderr.write(`primary: drained, connections ${engine.connectionCount?.()}\n`);
        process.exit(0);
      });
  });
}

main().catch((error: Error) => {
  process.stderr.write(`fixture failed: ${error.message}\n`);
  process.exit(1);
});
