/**
 * Exit and teardown of the native engine, each in a forked child
 * (test/helpers/native-fixtures/*): a hung or crashed child fails the test
 * instead of hanging the runner.
 */
import { fork } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';

const fixtures = path.join(__dirname, '..', '..', 'helpers', 'native-fixtures');

interface Outcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runFixture(name: string, execArgv: string[] = [], timeout = 15_000, env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  const child = fork(path.join(fixtures, name), [], { execArgv, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not exit within ${timeout} ms; stdout=${stdout} stderr=${stderr}`));
    }, timeout);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// Each fixture's own loop threads, then every engine in it on the JS thread
// (threads: 0: libuv handles instead of threads to stop).
describe.each([
  { name: 'loop threads', env: {} },
  { name: 'loop on the JS thread', env: { EDGEPOLL_FIXTURE_THREADS: '0' } },
])('native engine exit and teardown ($name)', ({ env }) => {
  it('lets the process exit after stop()', async () => {
    const outcome = await runFixture('stop-exit.js', [], 15_000, env);
    expect(outcome.stderr).toBe('');
    expect(outcome).toMatchObject({ code: 0, signal: null, stdout: 'stopped\n' });
  });

  it('exits cleanly on process.exit() with a listening engine and an open connection', async () => {
    const outcome = await runFixture('process-exit.js', [], 15_000, env);
    expect(outcome.stderr).toBe('');
    expect(outcome).toMatchObject({ code: 0, signal: null, stdout: 'exiting\n' });
  });

  it('exits cleanly on process.exit() with 1,000 connections under traffic (3 runs; 100 under ASan in scripts/sanitize.sh)', async () => {
    for (let run = 0; run < 3; run++) {
      const outcome = await runFixture('exit-under-load.js', [], 30_000, env);
      expect(outcome.stderr).toBe('');
      expect(outcome).toMatchObject({ code: 0, signal: null });
      expect(outcome.stdout).toMatch(/^exiting with 1000 connections, \d+ bytes echoed\n$/);
    }
  });

  it('collects unreferenced engines and exits with an unref()ed listening one', async () => {
    const outcome = await runFixture('gc.js', ['--expose-gc'], 15_000, env);
    expect(outcome.stderr).toBe('');
    expect(outcome).toMatchObject({ code: 0, signal: null, stdout: 'collected 21\n' });
  });

  it('loads, listens and tears down inside worker threads, including worker.terminate()', async () => {
    const outcome = await runFixture('worker.js', [], 15_000, env);
    expect(outcome.stderr).toBe('');
    // terminate() makes a worker exit with code 1.
    expect(outcome).toMatchObject({ code: 0, signal: null, stdout: 'workers exited 0 1\n' });
  });
});

describe('native engine, the loop on the JS thread', () => {
  it('threads: 0 serves without a thread of its own; threads: 2 starts two', async () => {
    const counts = async (threads: number) => {
      const child = fork(path.join(fixtures, 'js-thread.js'), [String(threads)], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
      let stdout = '';
      child.stdout!.on('data', (chunk) => (stdout += chunk));
      const code = await new Promise((resolve) => child.on('exit', resolve));
      expect(code).toBe(0);
      return JSON.parse(stdout) as { before: number; after: number };
    };
    const none = await counts(0);
    expect(none.after).toBe(none.before);
    const two = await counts(2);
    expect(two.after).toBe(two.before + 2);
  });
});
