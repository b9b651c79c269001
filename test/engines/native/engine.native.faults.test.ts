/**
 * Issue 11 item 4: syscall failures the loopback cannot produce on demand,
 * injected with an LD_PRELOAD shim (test/helpers/native-fixtures/fault-shim.c)
 * into a forked fixture (faults.js).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const fixtures = path.join(__dirname, '..', '..', 'helpers', 'native-fixtures');
let shim = '';

beforeAll(() => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-faults-'));
  shim = path.join(dir, 'fault-shim.so');
  execFileSync(process.env.CC ?? 'cc', ['-shared', '-fPIC', '-O1', '-o', shim, path.join(fixtures, 'fault-shim.c'), '-ldl']);
});

function runFaults(env: Record<string, string>): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(fixtures, 'faults.js')], {
      env: { ...process.env, ...env, LD_PRELOAD: [process.env.LD_PRELOAD, shim].filter(Boolean).join(':') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`faults.js exited ${code ?? signal}: ${stderr}`));
      resolve(JSON.parse(stdout.trim()));
    });
  });
}

describe('native engine under injected syscall failures', () => {
  for (const error of ['ENOBUFS', 'ENOMEM']) {
    it(`retries accept4 ${error} on the back-off timer and serves the connection left in the backlog`, async () => {
      const outcome = await runFaults({ EDGEPOLL_FAULT_ACCEPT: `${error}:1` });
      expect(outcome).toMatchObject({ listen: 'ok', served: 'hello', acceptErrors: 1 });
    });
  }

  it('fails listen() when the listener cannot be added to the loop epoll, instead of never accepting', async () => {
    const outcome = await runFaults({ EDGEPOLL_FAULT_LISTENER_ADD: 'ENOMEM' });
    expect(outcome).toEqual({ listen: 'ENOMEM' });
  });
});
