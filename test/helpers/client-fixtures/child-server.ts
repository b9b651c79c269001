/**
 * Runs test/helpers/client-fixtures/frame-server.cjs as a child process, so a
 * test can kill it, restart it on the same port, or SIGSTOP it. Cleanup is
 * registered with `onTestFinished` as soon as the child exists.
 */
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { onTestFinished } from 'vitest';

const script = path.join(__dirname, 'frame-server.cjs');

export interface ServerStats {
  accepted: number;
  requests: number;
  pongs: number;
  pushes: number;
  connections: number;
  counts: Record<string, number>;
}

function spawnOnce(port: number): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(script, [String(port)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  try {
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      }
    });
  } catch {
    // outside a test: the caller kills it
  }
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on [^:]+:(\d+)/.exec(out);
      if (match) resolve({ child, port: Number(match[1]) });
    });
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`frame server exited (${code}): ${err.trim()}`)));
  });
}

export class ChildServer {
  private nextId = 1;
  private constructor(
    public child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(port = 0): Promise<ChildServer> {
    const started = await spawnOnce(port);
    return new ChildServer(started.child, started.port);
  }

  /** Sends an IPC command (goaway, ping, close-all, stats) and resolves with the server's counters. */
  command(cmd: string, extra: Record<string, unknown> = {}): Promise<ServerStats> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (message: { id?: number; stats: ServerStats }): void => {
        if (message.id !== id) return;
        this.child.off('message', onMessage);
        resolve(message.stats);
      };
      this.child.on('message', onMessage);
      this.child.send({ cmd, id, ...extra }, (error) => error && reject(error));
    });
  }

  stats(): Promise<ServerStats> {
    return this.command('stats');
  }

  /** SIGKILL: the kernel resets every connection, like a crashed server. */
  kill(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    });
  }

  /** A new process on the same port (retried while the old socket lets go of it). */
  async restart(): Promise<void> {
    await this.kill();
    for (let tries = 0; ; tries++) {
      try {
        this.child = (await spawnOnce(this.port)).child;
        return;
      } catch (error) {
        if (tries >= 20 || !String(error).includes('EADDRINUSE')) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }

  pause(): void {
    this.child.kill('SIGSTOP');
  }

  resume(): void {
    this.child.kill('SIGCONT');
  }
}
