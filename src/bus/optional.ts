/**
 * Loads an optional peer dependency (ioredis, nats) the first time its
 * adapter is used, so the package installs and runs without them.
 * Owns: nothing. Runs on: any JS thread.
 */
import { EdgepollError } from '../errors';

export function loadOptional<T>(name: string, adapter: string): T {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(name) as T;
  } catch (error) {
    throw new EdgepollError(
      'EBUS_CLIENT_MISSING',
      `${adapter} needs the optional package '${name}': npm install ${name}`,
      { cause: error },
    );
  }
}
