/**
 * Issue 17: a server restart with many clients reconnecting at once (their
 * own backoff brings them back within about a second). npm test size: 2,000
 * clients from 2 processes; test/stress/reconnect.test.ts runs 19,000.
 */
import { describe, expect, it } from 'vitest';
import { reconnectStorm } from '../helpers/reconnect-storm';

describe.each([
  { name: 'native', options: { engine: 'native' as const, threads: 1 } },
  { name: 'net', options: { engine: 'net' as const } },
])('reconnect storm on $name', ({ options }) => {
  it('2,000 clients reconnecting after a restart: none refused or reset, all back', async () => {
    const { reopenMs, errorsBefore } = await reconnectStorm(options, 2000, 2);
    console.log(`${options.engine}: 2,000 clients back ${reopenMs} ms after the restart`);
    expect(errorsBefore).toEqual({});
  }, 120_000);
});
