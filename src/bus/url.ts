/**
 * `--bus URL` of `edgepoll serve`: `redis://HOST:PORT` → redisBus,
 * `nats://HOST:PORT` → natsBus (PROTOCOL.md section 5).
 * Owns: nothing. Runs on: the JS thread.
 */
import { EdgepollError } from '../errors';
import type { Bus } from './bus';
import { natsBus } from './nats';
import { redisBus } from './redis';

export function busFromUrl(url: string): Bus {
  if (/^rediss?:\/\//.test(url)) return redisBus({ url });
  if (/^nats:\/\//.test(url)) return natsBus({ servers: url });
  throw new EdgepollError('EINVALID_OPTION', `--bus must be redis://HOST:PORT or nats://HOST:PORT, got ${JSON.stringify(url)}`);
}
