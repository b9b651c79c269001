// Servers under test for the benchmark scripts: start `edgepoll serve` fresh,
// read its CPU and RSS (and its children's: cluster workers) from /proc, stop it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const clockTicks = 100; // USER_HZ on Linux
const pageKiB = 4;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of fs.readdirSync(`/proc/${pids[i]}/task`)) {
        const children = fs.readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'utf8').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // the process is gone
    }
  }
  return pids;
}

/** CPU seconds and resident KiB of a server and all its children (cluster workers). */
export function usage(pid) {
  let cpu = 0;
  let rssKiB = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = fs.readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(fields[11]) + Number(fields[12])) / clockTicks; // utime, stime
      rssKiB += Number(fs.readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]) * pageKiB;
    } catch {
      // exited between the listing and the read
    }
  }
  return { cpu, rssKiB };
}


/** The reference servers, no edgepoll code in them: plain node:net, and Bun.listen given a Bun executable (bench/bun.mjs). */
export const nodeNetBaseline = { name: 'node:net', reference: true, command: [process.execPath, path.join(root, 'bench', 'baseline-net.mjs')] };
export const bunBaseline = (bun) => ({ name: 'bun', reference: true, command: [bun, path.join(root, 'bench', 'baseline-bun.mjs')] });

/**
 * `engine`: { name, args } (flags after `serve --port 0`), or { name, command } for
 * a reference server taking `--host`/`--port`; `prefix`: a command to run it under (e.g. prlimit).
 */
export function startServer(engine, prefix = []) {
  return new Promise((resolve, reject) => {
    const command = engine.command
      ? [...prefix, ...engine.command, '--host', '127.0.0.1', '--port', '0']
      : [...prefix, process.execPath, path.join(root, 'dist', 'cli', 'main.js'), 'serve', '--host', '127.0.0.1', '--port', '0', ...engine.args];
    const child = spawn(command[0], command.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${engine.name}: no "listening on" within 15 s\n${err}`)), 15_000);
    child.stderr.on('data', (d) => (err = (err + d).slice(-4000)));
    child.stdout.on('data', (d) => {
      out += d;
      const match = /listening on (.+):(\d+)\n/.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[2]), stderr: () => err });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${engine.name} exited with ${code} before listening\n${err}`));
    });
  });
}

export async function stopServer(server) {
  if (server.child.exitCode !== null) return;
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  const done = await Promise.race([exited.then(() => true), sleep(8000).then(() => false)]);
  if (!done) {
    for (const p of processTree(server.child.pid).reverse()) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await exited;
  }
}

