/** A server listening on a free port for one test (closed when it ends), and its next connection. */
import { onTestFinished } from 'vitest';
import { createServer, type Connection, type Server } from '../../src/index';
import type { ServerOptions } from '../../src/server/options';

export async function listening(options: ServerOptions, setup?: (server: Server) => void): Promise<{ server: Server; port: number }> {
  const server = createServer({ drainTimeout: 200, ...options });
  onTestFinished(() => server.close());
  setup?.(server);
  const address = await server.listen({ port: 0 });
  return { server, port: address.port };
}

export function nextConnection(server: Server): Promise<Connection> {
  return new Promise((resolve) => server.once('connection', resolve));
}
