/**
 * The public types as a user of the package sees them: a consumer compiled
 * with tsc against the built dist/*.d.ts, and the emitted declarations and
 * JavaScript checked for what must not ship (internal members, test fakes).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { root } from './helpers/fixture';

const dist = path.join(root, 'dist');

it('a consumer compiles against dist/index.d.ts: public signature types exported, internals and test hooks not', () => {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const file = path.join(root, 'test', 'helpers', 'types', 'public-api.ts');
  const result = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'ES2022', '--types', 'node', file],
    { encoding: 'utf8', cwd: root },
  );
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
}, 60_000);

it('dist holds no test fakes and no @internal declarations', () => {
  const files = fs.readdirSync(dist, { recursive: true, encoding: 'utf8' }).filter((f) => /\.(js|d\.ts)$/.test(f));
  expect(files.length).toBeGreaterThan(10);
  for (const file of files) {
    const text = fs.readFileSync(path.join(dist, file), 'utf8');
    expect(text, file).not.toMatch(/FakeClock/);
    if (file.endsWith('.d.ts')) {
      expect(text, file).not.toMatch(/@internal/);
      expect(text, file).not.toMatch(/connectWithHooks|ClientHooks|ConnectionInternals/);
    }
  }
  // One declaration each (they were declared twice, server side and client side).
  const declarations = files.filter((f) => f.endsWith('.d.ts')).map((f) => fs.readFileSync(path.join(dist, f), 'utf8')).join('\n');
  expect(declarations.match(/type HandlerResult =/g)).toHaveLength(1);
  expect(declarations.match(/interface RequestOptions \{/g)).toHaveLength(1);
  const connection = fs.readFileSync(path.join(dist, 'server', 'connection.d.ts'), 'utf8');
  expect(connection).toMatch(/private constructor\(/);
  expect(connection).not.toMatch(/\binFlight\b|closedBy|peerEnded|handlerSettled/);
  const options = fs.readFileSync(path.join(dist, 'client', 'options.d.ts'), 'utf8');
  expect(options).not.toMatch(/\bclock\?|\brandom\?/);
});
