/**
 * The demo service that `edgepoll serve` runs (PROTOCOL.md section 5):
 * frame framing: 1 ECHO, 2 BROADCAST, 3 STATS; other framings: echo.
 */
import type { Server } from './server';

export const ECHO = 1;
export const BROADCAST = 2;
export const STATS = 3;

export function installDemo(server: Server): void {
  if (server.options.framing === 'frame') {
    server.handle(ECHO, (payload) => payload);
    server.handle(BROADCAST, (payload) => {
      server.broadcast(BROADCAST, payload);
    });
    server.handle(STATS, async () => JSON.stringify(await server.stats()));
    return;
  }
  const event = server.options.framing === 'raw' ? 'data' : 'message';
  server.on('connection', (connection) => {
    connection.on(event, (payload: Buffer) => {
      if (!connection.closed) connection.write(payload);
    });
  });
}
