/**
 * Issue 17: what an idle connection costs the server's JS heap (the native
 * engine's addon side is measured in bench/heartbeats.mjs). A Connection must
 * hold nothing it does not use yet: no empty Map of requests, no empty data
 * object, no empty listener table (604 B before that, 266–313 B after).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { root } from '../helpers/fixture';

function idleHeap(engine: string, count: number): Promise<{ opened: number; held: number; heapPerConnection: number }> {
  const script = path.join(root, 'test', 'helpers', 'native-fixtures', 'idle-heap.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--expose-gc', script, engine, String(count)], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${error.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()!));
    });
  });
}

describe('idle connections', () => {
  it('cost the native server under 400 bytes of JS heap each (2,000 held, heartbeats on)', async () => {
    const result = await idleHeap('native', 2000);
    expect(result.held).toBe(2000);
    expect(result.heapPerConnection).toBeLessThan(400);
  });
});
