/** Typed message maps (src/protocol/messages.ts) hold at compile time: tsc over a usage file. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';
import { root } from '../helpers/fixture';

it('a message map types handle, send, request and broadcast', () => {
  const tsc = require.resolve('typescript/bin/tsc', { paths: [root] });
  const file = path.join(root, 'test', 'helpers', 'types', 'typed-usage.ts');
  const result = spawnSync(
    process.execPath,
    [tsc, '--noEmit', '--strict', '--skipLibCheck', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'ES2022', '--types', 'node', file],
    { encoding: 'utf8', cwd: root },
  );
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
}, 60_000);
