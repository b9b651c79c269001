/**
 * Starts servers for tests: in a child process (every engine, black-box) and
 * lists the engines available here, for describe.each.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { tryLoadNative } from '../../src/engines/native/binding';
import type { ServerOptions } from '../../src/server/options';

export const root = path.join(__dirname, '..', '..');

/** An engine configuration to run a suite over. */
export interface EngineCase {
  name: string;
  options: ServerOptions;
}

/**
 * Every engine available here: native with 1 and 2 threads and on the JS thread (threads: 0) if
 * the addon loads, net, cluster.
 * Under EDGEPOLL_DEBUG_TINY_BOUNDS=1 (test/engines/native/engine.native.tiny.test.ts) only the
 * native ones: the switch shrinks native bounds and changes nothing else.
 */
export function engineCases({ cluster = true } = {}): EngineCase[] {
  const cases: EngineCase[] = [];
  if (tryLoadNative()) {
    cases.push({ name: 'native threads=1', options: { engine: 'native', threads: 1 } });
    cases.push({ name: 'native threads=2', options: { engine: 'native', threads: 2 } });
    cases.push({ name: 'native threads=0', options: { engine: 'native', threads: 0 } });
  }
  if (process.env.EDGEPOLL_DEBUG_TINY_BOUNDS === '1') return cases;
  cases.push({ name: 'net', options: { engine: 'net' } });
  if (cluster) cases.push({ name: 'cluster workers=2', options: { engine: 'cluster', workers: 2 } });
  return cases;
}

export interface Fixture {
  port: number;
  child: ChildProcess;
  /** Standard error so far. */
  stderr(): string;
  /** Standard output lines so far. */
  stdout: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

/** Runs test/helpers/fixture-server.js (or any script printing `listening on`) with options. */
export async function startFixture(
  options: ServerOptions & { port?: number; host?: string; path?: string },
  script = path.join(root, 'test', 'helpers', 'fixture-server.js'),
  args: string[] = [JSON.stringify(options)],
): Promise<Fixture> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: root });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const stdout: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const lines = readline.createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 15000);
    lines.on('line', (line) => {
      stdout.push(line);
      const match = /^listening on [^ ]+:(\d+)$/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening: ${stderr}`));
    });
  });
  const fixture: Fixture = {
    port,
    child,
    stdout,
    stderr: () => stderr,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return fixture;
}
