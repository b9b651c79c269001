/**
 * The `logger` option (README "Logs"): pino receives what edgepoll writes, the
 * default stays one line on stderr, and `edgepoll serve --log-level` filters.
 */
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import path from 'node:path';
import pino from 'pino';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, EdgepollError } from '../../src/index';
import { engineCases, root, startFixture } from '../helpers/fixture';
import { connectPeer, frame } from '../helpers/wire';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const cli = path.join(root, 'dist', 'cli', 'main.js');

/** A pino logger writing JSON lines into an array. */
function capture(level = 'debug'): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, stream), lines };
}

describe.each(engineCases({ cluster: false }))('logger option on $name', ({ options }) => {
  it('sends a handler error with no error listener to pino, and debug lines on listen', async () => {
    const { logger, lines } = capture();
    const server = createServer({ ...options, logger });
    server.handle(17, () => {
      throw new Error('push boom');
    });
    const { port } = await server.listen();
    onTestFinished(() => server.close());
    expect(lines.some((l) => l.level === 20 && /^listening on 127\.0\.0\.1:\d+/.test(String(l.msg)))).toBe(true);
    const peer = await connectPeer(port);
    peer.write(frame(0, 17, 0, 'x'));
    for (let i = 0; i < 100 && !lines.some((l) => l.level === 50); i++) await sleep(20);
    const error = lines.find((l) => l.level === 50);
    expect(error).toMatchObject({
      msg: 'EHANDLER: handler for type 17 failed: push boom',
      // pino's serializer appends the cause's message.
      err: { code: 'EHANDLER', message: expect.stringContaining('handler for type 17 failed: push boom'), type: 'EdgepollError' },
    });
    peer.destroy();
  });
});

describe('logger option', () => {
  it('is validated', () => {
    expect(() => createServer({ engine: 'net', logger: { info() {} } as never })).toThrow(EdgepollError);
    expect(() => createServer({ engine: 'net', logger: console })).not.toThrow();
  });

  it('defaults to one line on stderr', async () => {
    const fixture = await startFixture({}, path.join(root, 'test', 'helpers', 'logger-fixtures', 'no-listener.js'), ['net']);
    onTestFinished(() => void fixture.stop());
    const peer = await connectPeer(fixture.port);
    peer.write(frame(0, 17, 0, 'x'));
    for (let i = 0; i < 100 && !fixture.stderr().includes('push boom'); i++) await sleep(20);
    expect(fixture.stderr()).toBe('edgepoll: EHANDLER: handler for type 17 failed: push boom\n');
    peer.destroy();
  });
});

describe('edgepoll serve --log-level', () => {
  it('warn hides the startup lines, debug adds the listening line, a bad level is refused', async () => {
    const quiet = await startFixture({}, cli, ['serve', '--port', '0', '--engine', 'net', '--log-level', 'warn']);
    await sleep(200);
    expect(await quiet.stop('SIGTERM')).toBe(0);
    expect(quiet.stderr()).toBe('');

    const loud = await startFixture({}, cli, ['serve', '--port', '0', '--engine', 'net', '--log-level', 'debug']);
    for (let i = 0; i < 50 && !loud.stderr().includes('engine net'); i++) await sleep(20);
    expect(await loud.stop('SIGTERM')).toBe(0);
    expect(loud.stderr()).toMatch(new RegExp(`^edgepoll: listening on 127\\.0\\.0\\.1:${loud.port} \\(engine net\\)\\n`));
    expect(loud.stderr()).toContain('edgepoll: engine net, framing frame');

    const bad = await startFixture({}, cli, ['serve', '--port', '0', '--log-level', 'loud']).catch((error: Error) => error);
    expect(String(bad)).toContain('--log-level must be one of debug, info, warn, error, silent');
  }, 20_000);
});

describe('warnings', () => {
  const script = path.join(root, 'test', 'helpers', 'logger-fixtures', 'warnings.js');
  const run = (args: string[], env: Record<string, string>): { logged: string[]; warnings: string[] } => {
    const result = spawnSync(process.execPath, [script, ...args], { env: { ...process.env, ...env }, encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as { logged: string[]; warnings: string[] };
  };

  it('go to logger.warn instead of process warnings when a logger is given', () => {
    const fallback = run(['logger', 'auto'], { EDGEPOLL_FORCE_NO_NATIVE: '1' });
    expect(fallback.warnings).toEqual([]);
    expect(fallback.logged).toHaveLength(1);
    expect(fallback.logged[0]).toMatch(/^the native engine is unavailable \(.*\); using the node:net engine$/);
    const ignored = run(['logger', 'net'], { EDGEPOLL_ENGINE: 'cluster' });
    expect(ignored).toEqual({ logged: ["EDGEPOLL_ENGINE=cluster is ignored: the engine option asks for 'net' explicitly"], warnings: [] });
  });

  it('stay process warnings without a logger', () => {
    expect(run(['none', 'auto'], { EDGEPOLL_FORCE_NO_NATIVE: '1' })).toEqual({ logged: [], warnings: ['EDGEPOLL_NATIVE_UNAVAILABLE'] });
    expect(run(['none', 'net'], { EDGEPOLL_ENGINE: 'cluster' })).toEqual({ logged: [], warnings: ['EDGEPOLL_ENGINE_IGNORED'] });
  });
});
