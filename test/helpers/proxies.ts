/**
 * Running the real load balancers (HAProxy, nginx) as foreground children in
 * tests: installing them (scripts/install-proxies.sh), temporary directories,
 * free ports, children killed when the test ends, and the README's tested
 * configuration blocks. Used by test/proxy/proxy.haproxy.test.ts and test/proxy/proxy.tls.test.ts.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import { root } from './fixture';

/** undefined when haproxy and nginx (with its stream module) are usable, else why not. */
export function installProxies(): string | undefined {
  if (process.platform !== 'linux') return 'HAProxy/nginx tests need Linux';
  const result = spawnSync('bash', [path.join(root, 'scripts', 'install-proxies.sh')], { encoding: 'utf8', timeout: 300_000 });
  if (result.status === 0) return undefined;
  return `scripts/install-proxies.sh could not install haproxy and nginx (exit ${result.status}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** A temporary directory removed when the test ends. */
export function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-proxy-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Child {
  child: ChildProcess;
  output: () => string;
}

/**
 * Runs a foreground child, stopped when the test ends; its output is kept for
 * failure messages. SIGTERM first: nginx's master then takes its workers down
 * with it, while a SIGKILLed master left them running as orphans. SIGKILL if
 * it is still there after 3 s.
 */
export function run(command: string, args: string[]): Child {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  child.on('error', (error) => (output += String(error)));
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  });
  return { child, output: () => output };
}

/** Resolves once something accepts TCP connections on the port (the child's listener is up). */
export async function waitListening(port: number, what: Child, name: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline || what.child.exitCode !== null) throw new Error(`${name} did not listen on ${port}: ${what.output()}`);
    await sleep(100);
  }
}

/** The README block marked `<!-- config: NAME -->` (the configuration as tested). */
export function readmeConfig(name: string): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const match = new RegExp(`<!-- config: ${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match) throw new Error(`README has no config block "${name}"`);
  return match[1]!;
}

/** `text` with each `from` replaced by `to`; throws when one is missing (the README changed shape). */
export function substitute(text: string, replacements: Array<[string, string]>): string {
  let out = text;
  for (const [from, to] of replacements) {
    if (!out.includes(from)) throw new Error(`config block has no ${JSON.stringify(from)}:\n${text}`);
    out = out.split(from).join(to);
  }
  return out;
}
