/** The README's examples, executed: the ten-line server and client must work as printed. */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { expect, it, onTestFinished } from 'vitest';
import { connect } from '../src/index';
import { root } from './helpers/fixture';
import { freePort, have, startBroker } from './helpers/brokers';
import { installProxies, readmeConfig, run, substitute, tempDir, waitListening } from './helpers/proxies';

function example(name: string): string {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
  const match = new RegExp(`<!-- example: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!match) throw new Error(`README has no example "${name}"`);
  return match[1]!;
}

function writeExample(name: string): string {
  // Inside the package, so require('edgepoll') resolves to this package by its name.
  const dir = path.join(root, 'test', '.readme');
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}.js`);
  fs.writeFileSync(file, example(name));
  return file;
}

/** Runs a server example with PORT=0 and resolves with the port it prints; killed when the test ends. */
async function serveExample(name: string): Promise<{ server: ChildProcess; port: number }> {
  const server = spawn(process.execPath, [writeExample(name)], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  onTestFinished(() => {
    server.kill('SIGKILL');
  });
  const port = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: server.stdout! }).on('line', (line) => {
      const match = /^listening on (\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    server.on('exit', (code) => reject(new Error(`${name} example exited with ${code}`)));
  });
  return { server, port };
}

it('the README server and client examples run as printed', async () => {
  const { server, port } = await serveExample('server');
  const client = spawn(process.execPath, [writeExample('client')], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  client.stdout!.on('data', (chunk) => (output += chunk));
  const clientExit = await new Promise<number | null>((resolve) => client.on('exit', resolve));
  expect(clientExit).toBe(0);
  expect(output.split('\n').filter(Boolean).sort()).toEqual(['echo: hello', 'push: thanks', 'reply: got 10 bytes']);
  const serverExit = new Promise<number | null>((resolve) => server.on('exit', resolve));
  server.kill('SIGTERM');
  expect(await serverExit).toBe(0);
});

it('the README cluster example serves from its workers and drains on SIGTERM', async () => {
  const { server, port } = await serveExample('cluster');
  const client = connect({ port, reconnect: false });
  onTestFinished(() => client.destroy());
  expect((await client.request(1, 'hi')).toString()).toMatch(/^hi from worker \d+$/);
  await client.close();
  const serverExit = new Promise<number | null>((resolve) => server.on('exit', resolve));
  server.kill('SIGTERM');
  expect(await serverExit).toBe(0);
});

it('the README workers example serves from 2 native workers, reloads on SIGHUP (new pids, same port) and drains on SIGTERM', async () => {
  const { server, port } = await serveExample('workers');
  const client = connect({ port });
  onTestFinished(() => client.destroy());
  const pid = (await client.request(1, 'hi')).toString().match(/^hi from pid (\d+)$/)![1];
  server.kill('SIGHUP');
  await expect.poll(async () => (await client.request(1, 'hi')).toString(), { timeout: 20_000, interval: 200 }).not.toBe(`hi from pid ${pid}`);
  await client.close();
  const serverExit = new Promise<number | null>((resolve) => server.on('exit', resolve));
  server.kill('SIGTERM');
  expect(await serverExit).toBe(0);
});

async function runBusExample(env: Record<string, string>): Promise<string> {
  const child = spawn(process.execPath, [writeExample('bus')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => void child.kill('SIGKILL'));
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  expect(code).toBe(0);
  return output;
}

it('the README bus example: a publish on one instance reaches a subscriber on the other (memoryBus)', async () => {
  expect(await runBusExample({})).toBe('bob heard: hello from a\n');
});

it.skipIf(!have('redis-server') && !process.env.CI)('the README bus example on a real Redis (REDIS_URL)', async () => {
  const broker = await startBroker('redis');
  onTestFinished(() => broker.kill());
  expect(await runBusExample({ REDIS_URL: broker.url })).toBe('bob heard: hello from a\n');
});

const noHaproxy = have('redis-server') || process.env.CI ? installProxies() : 'redis-server is not installed';
it.skipIf(Boolean(noHaproxy))('the README load-balancer example: HAProxy in front of two `edgepoll serve --bus redis://`', async () => {
  const broker = await startBroker('redis');
  onTestFinished(() => broker.kill());
  const [front, gw1, gw2] = [await freePort(), await freePort(), await freePort()];
  const cli = path.join(root, 'dist', 'cli', 'main.js');
  for (const [nodeId, port] of [['gw1', gw1], ['gw2', gw2]] as const) {
    // As the README's commands, on free ports (`npx edgepoll` is dist/cli/main.js).
    const serve = run(process.execPath, [cli, 'serve', '--port', String(port), '--bus', broker.url, '--node-id', nodeId]);
    await waitListening(port, serve, `edgepoll serve --node-id ${nodeId}`);
  }
  const dir = tempDir();
  const config = substitute(readmeConfig('haproxy-bus'), [
    ['127.0.0.1:7000', `127.0.0.1:${front}`],
    ['127.0.0.1:7001', `127.0.0.1:${gw1}`],
    ['127.0.0.1:7002', `127.0.0.1:${gw2}`],
  ]);
  fs.writeFileSync(path.join(dir, 'haproxy.cfg'), config);
  const haproxy = run('haproxy', ['-db', '-f', path.join(dir, 'haproxy.cfg')]);
  await waitListening(front, haproxy, 'haproxy');
  const client = spawn(process.execPath, [writeExample('bus-lb')], { env: { ...process.env, PORT: String(front) }, stdio: ['ignore', 'pipe', 'inherit'] });
  onTestFinished(() => void client.kill('SIGKILL'));
  let output = '';
  client.stdout!.on('data', (chunk) => (output += chunk));
  expect(await new Promise<number | null>((resolve) => client.on('exit', resolve))).toBe(0);
  expect(output).toBe('instances: gw1, gw2\nbob heard: hello from alice\n');
}, 60_000);
