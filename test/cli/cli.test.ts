/** The `edgepoll serve` contract of docs/PROTOCOL.md section 5, on the real CLI. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectPeer, frame } from '../helpers/wire';
import { engineCases, root, startFixture } from '../helpers/fixture';

const cli = path.join(root, 'dist', 'cli', 'main.js');

describe.each(engineCases())('edgepoll serve on $name', ({ options }) => {
  const args = ['serve', '--port', '0', '--engine', options.engine!];
  if (options.threads) args.push('--threads', String(options.threads));
  if (options.workers) args.push('--workers', String(options.workers));

  it('prints exactly one stdout line, serves the demo, drains and exits 0 on SIGTERM', async () => {
    const server = await startFixture({}, cli, args);
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 1, 1, 'hi'));
    expect((await peer.readFrame()).payload.toString()).toBe('hi');
    peer.write(frame(0, 3, 2));
    const stats = JSON.parse((await peer.readFrame()).payload.toString());
    expect(stats).toMatchObject({ connections: expect.any(Number), accepted: expect.any(Number), unhandled: 0 });
    expect(stats.connections).toBeGreaterThanOrEqual(1);
    expect(Array.isArray(stats.loops)).toBe(true);
    const exit = server.stop('SIGTERM');
    expect((await peer.readFrame()).type).toBe(0xff04);
    peer.destroy();
    expect(await exit).toBe(0);
    expect(server.stdout).toEqual([`listening on 127.0.0.1:${server.port}`]);
  });

  it('echoes lines with --framing line', async () => {
    const server = await startFixture({}, cli, [...args, '--framing', 'line']);
    const peer = await connectPeer(server.port);
    peer.write('one\r\ntwo\n');
    expect(await peer.readLine()).toBe('one');
    expect(await peer.readLine()).toBe('two');
    peer.destroy();
    expect(await server.stop('SIGINT')).toBe(0);
  });
});

describe('edgepoll serve errors', () => {
  it('exits non-zero with a clear message for a bad flag', () => {
    const result = spawnSync(process.execPath, [cli, 'serve', '--framing', 'xml'], { encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/framing/);
  });

  it('checks flags with the options\' rules: a heartbeat in line framing and a day-plus timeout are refused', () => {
    const run = (...flags: string[]) =>
      spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--engine', 'net', ...flags], { encoding: 'utf8', timeout: 10_000 });
    const heartbeat = run('--framing', 'line', '--heartbeat-interval', '1000');
    expect(heartbeat.stdout).toBe('');
    expect(heartbeat.stderr).toMatch(/EINVALID_OPTION: option `heartbeat` must be false for the 'line' framing/);
    expect(heartbeat.status).toBe(1);
    const longTimeout = run('--shutdown-timeout', '86400001');
    expect(longTimeout.stderr).toMatch(/option `shutdownTimeout` must be an integer from 0 to 86400000/);
    expect(longTimeout.status).toBe(1);
  });

  it('exits non-zero when the port is taken', async () => {
    const first = await startFixture({}, cli, ['serve', '--port', '0', '--engine', 'net']);
    const result = spawnSync(process.execPath, [cli, 'serve', '--port', String(first.port), '--engine', 'net'], {
      encoding: 'utf8',
    });
    await first.stop('SIGKILL');
    expect(result.status).not.toBe(0);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/EADDRINUSE/);
  });

  it('--engine native without the addon exits non-zero with the reason and a hint', () => {
    const result = spawnSync(process.execPath, [cli, 'serve', '--port', '0', '--engine', 'native'], {
      encoding: 'utf8',
      env: { ...process.env, EDGEPOLL_FORCE_NO_NATIVE: '1' },
    });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/ENATIVE_UNAVAILABLE/);
    expect(result.stderr).toMatch(/--engine net/);
  });

  it('--engine auto without the addon falls back to net with one warning', async () => {
    const previous = process.env.EDGEPOLL_FORCE_NO_NATIVE;
    process.env.EDGEPOLL_FORCE_NO_NATIVE = '1';
    const server = await startFixture({}, cli, ['serve', '--port', '0', '--engine', 'auto']);
    if (previous === undefined) delete process.env.EDGEPOLL_FORCE_NO_NATIVE;
    else process.env.EDGEPOLL_FORCE_NO_NATIVE = previous;
    const peer = await connectPeer(server.port);
    peer.write(frame(0, 3, 1));
    expect(JSON.parse((await peer.readFrame()).payload.toString()).engine).toBe('net');
    peer.destroy();
    await server.stop('SIGKILL');
    expect(server.stderr().match(/native engine is unavailable/g)?.length).toBe(1);
    expect(server.stderr()).toMatch(/EDGEPOLL_FORCE_NO_NATIVE/);
  });
});
