// Child processes of test/engines/native/engine.native.bounds.test.ts: the server under test
// (RSS measured in it) and client sides with many sockets.
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';

const here = __dirname;

export interface Child {
  proc: ChildProcess;
  /** Sends a command and resolves with the reply carrying its id. */
  ask(cmd: string, extra?: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, any>>;
  /** Resolves with the next message for which `match` is true. */
  next(match: (message: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  kill(): void;
}

function wrap(proc: ChildProcess): Child {
  let id = 0;
  const next = (match: (message: Record<string, any>) => boolean, timeoutMs = 60_000) =>
    new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.off('message', on);
        reject(new Error('child: no answer in time'));
      }, timeoutMs);
      const on = (message: Record<string, any>) => {
        if (!match(message)) return;
        clearTimeout(timer);
        proc.off('message', on);
        resolve(message);
      };
      proc.on('message', on);
    });
  return {
    proc,
    next,
    ask(cmd, extra = {}, timeoutMs) {
      const mine = ++id;
      const answer = next((message) => message.id === mine, timeoutMs);
      proc.send({ id: mine, cmd, ...extra });
      return answer;
    },
    kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/**
 * Starts the server fixture with `options`; resolves once it listens.
 * `addressSpace` (bytes) runs it under that RLIMIT_AS (prlimit), so memory a
 * server commits without using fails there as it would on a machine without
 * overcommit, instead of hiding in untouched pages.
 */
export async function startServer(
  options: Record<string, unknown>,
  {
    execArgv = [],
    addressSpace,
    env,
  }: { execArgv?: string[]; addressSpace?: number; env?: Record<string, string> } = {},
): Promise<Child & { port: number }> {
  const limited = addressSpace !== undefined;
  const proc = fork(path.join(here, 'server.js'), [JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    execPath: limited ? 'prlimit' : process.execPath,
    execArgv: limited ? [`--as=${addressSpace}`, process.execPath, ...execArgv] : execArgv,
    env: { ...process.env, ...env },
  });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on [^:]+:(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    proc.once('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { ...wrap(proc), port };
}

/** Starts a client side; resolves once its `count` connections are open. */
export async function startClients(options: Record<string, unknown>): Promise<Child> {
  const proc = fork(path.join(here, 'clients.js'), [JSON.stringify(options)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const child = wrap(proc);
  await child.next((message) => message.opened !== undefined, 120_000);
  return child;
}
