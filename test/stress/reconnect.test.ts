/**
 * Issue 17 at full size: 19,000 clients (4 child processes) reconnecting
 * after a server restart, backlog 19,000 (capped by net.core.somaxconn): none
 * refused or reset once the new server listens, every one back.
 */
import { describe, expect, it } from 'vitest';
import { reconnectStorm } from '../helpers/reconnect-storm';

describe.each([
  { name: 'native', options: { engine: 'native' as const, threads: 1 } },
  { name: 'net', options: { engine: 'net' as const } },
])('reconnect storm on $name', ({ options }) => {
  it('19,000 clients reconnecting after a restart: none refused or reset, all back', async () => {
    const { reopenMs, errorsBefore } = await reconnectStorm(options, 19_000, 4);
    console.log(`${options.engine}: 19,000 clients back ${reopenMs} ms after the restart`);
    expect(errorsBefore).toEqual({});
  }, 180_000);
});
