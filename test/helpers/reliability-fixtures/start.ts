/**
 * Starts the black-box fixture server (test/helpers/fixture-server.js) in a
 * child process (any engine) and stops it when the test ends.
 */
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { root, startFixture, type Fixture } from '../fixture';
import type { ServerOptions } from '../../../src/server/options';

export const serverScript = path.join(root, 'test', 'helpers', 'fixture-server.js');

export type ReliabilityOptions = ServerOptions & { port?: number; backlog?: number };

/** The reliability fixture, killed when the current test finishes. */
export async function startServer(options: ReliabilityOptions): Promise<Fixture> {
  const server = await startFixture(options, serverScript, [JSON.stringify(options)]);
  try {
    onTestFinished(async () => {
      await server.stop('SIGKILL');
    });
  } catch {
    // outside a test: the caller stops it
  }
  return server;
}
