#!/usr/bin/env node
// `npm run bench:resources`: the resource truths of the reliability issue,
// native against net in the same run, written into the "Resources" section of
// bench/RESULTS.md (which `npm run bench` keeps when it rewrites the file):
//   - memory per idle connection and server CPU while holding 15,000 idle
//     connections with server heartbeats (interval 5 s, timeout 5 s);
//   - fds and RSS before and after 100,000 connect/ECHO/close cycles;
//   - the fd limit: the server started under `prlimit --nofile=256`, 400
//     connections pushed at it: CPU, survival, and service once fds free up.
// Environment: RESOURCES_NO_WRITE=1 (print only).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { processTree, sleep, startServer, stopServer, usage } from './server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const require = createRequire(import.meta.url);
const { runLoad } = require(path.join(root, 'dist', 'cli', 'bench.js'));

const engines = [
  { name: 'native-1', args: ['--engine', 'native', '--threads', '1'] },
  { name: 'net', args: ['--engine', 'net'] },
];

function fds(pid) {
  return processTree(pid).reduce((total, p) => {
    try {
      return total + fs.readdirSync(`/proc/${p}/fd`).length;
    } catch {
      return total;
    }
  }, 0);
}

function log(message) {
  process.stderr.write(`resources: ${message}\n`);
}

/** 15,000 idle connections; the server PINGs each every 5 s and the load generator answers. */
async function idle(engine) {
  const server = await startServer({ ...engine, args: [...engine.args, '--heartbeat-interval', '5000', '--heartbeat-timeout', '5000'] });
  try {
    await sleep(500);
    const before = usage(server.child.pid);
    const samples = [];
    const report = await runLoad(
      // The client's own PINGs are rarer than the server's: the heartbeats measured are the server's.
      { host: '127.0.0.1', port: server.port, mode: 'idle', connections: 15000, interval: 60000, payload: 8, duration: 12, warmup: 0, rampTimeout: 60, progressInterval: 500 },
      (progress) => {
        if (progress.phase === 'record') samples.push({ at: performance.now(), ...usage(server.child.pid) });
      },
    );
    const first = samples[Math.min(2, samples.length - 1)];
    const last = samples[samples.length - 1];
    const seconds = (last.at - first.at) / 1000;
    return {
      engine: engine.name,
      opened: report.opened,
      kibPerConnection: (Math.max(...samples.map((s) => s.rssKiB)) - before.rssKiB) / report.opened,
      cpuShare: seconds > 0 ? (last.cpu - first.cpu) / seconds : null,
      serverCloses: report.serverCloses ?? 0,
      errors: report.errors + report.connectErrors,
    };
  } finally {
    await stopServer(server);
  }
}

/** 100,000 connect/ECHO/close cycles; fds and RSS before (after a warm-up) and after. */
async function churn(engine) {
  const server = await startServer(engine);
  try {
    const load = { host: '127.0.0.1', port: server.port, mode: 'churn', connections: 50, payload: 64, warmup: 0, rampTimeout: 30 };
    await runLoad({ ...load, duration: 1 }); // warm-up: the heap and the loops reach their working size
    await sleep(500);
    const before = { fds: fds(server.child.pid), ...usage(server.child.pid) };
    let cycles = 0;
    let errors = 0;
    while (cycles < 100_000) {
      const report = await runLoad({ ...load, duration: 5 });
      cycles += report.messages;
      errors += report.errors + report.connectErrors;
      log(`${engine.name} churn: ${cycles} cycles`);
    }
    await sleep(1000);
    const after = { fds: fds(server.child.pid), ...usage(server.child.pid) };
    return { engine: engine.name, cycles, errors, fdsBefore: before.fds, fdsAfter: after.fds, rssBeforeKiB: before.rssKiB, rssAfterKiB: after.rssKiB };
  } finally {
    await stopServer(server);
  }
}

/** The server under a 256-fd limit while 400 connections try to stay open. */
async function fdLimit(engine) {
  const server = await startServer(engine, ['prlimit', '--nofile=256:256']);
  try {
    await sleep(500);
    const start = usage(server.child.pid);
    const started = performance.now();
    const flood = await runLoad({ host: '127.0.0.1', port: server.port, mode: 'idle', connections: 400, interval: 1000, payload: 8, duration: 4, warmup: 0, rampTimeout: 5 });
    const seconds = (performance.now() - started) / 1000;
    const end = usage(server.child.pid);
    await sleep(500);
    const after = await runLoad({ host: '127.0.0.1', port: server.port, mode: 'rr', connections: 10, depth: 1, payload: 64, duration: 1, warmup: 0 });
    return {
      engine: engine.name,
      openedUnderLimit: flood.opened,
      cpuShare: (end.cpu - start.cpu) / seconds,
      alive: server.child.exitCode === null,
      repliesAfter: after.messages,
      errorsAfter: after.errors + after.mismatches,
      emfileLogged: /EMFILE/.test(server.stderr()),
    };
  } finally {
    await stopServer(server);
  }
}

const fixed = (n, digits = 2) => (n == null ? '–' : n.toFixed(digits));

function render(idles, churns, limits) {
  const ratio = (rows, key) => {
    const native = rows.find((r) => r.engine === 'native-1')?.[key];
    const net = rows.find((r) => r.engine === 'net')?.[key];
    return native != null && net ? `${fixed(native / net)}×` : '–';
  };
  return [
    '<!-- resources:start (written by `npm run bench:resources`; `npm run bench` keeps this section) -->',
    '## Resources',
    '',
    `Measured ${new Date().toISOString()} with \`npm run bench:resources\`, native and net in the same run, the native load generator in the bench process.`,
    '',
    '**15,000 idle connections, server heartbeat every 5 s** (the load generator answers PINGs):',
    '',
    '| engine | connections held | RSS per connection | server CPU while holding | server closes / errors |',
    '|---|---:|---:|---:|---:|',
    ...idles.map((r) => `| ${r.engine} | ${r.opened} | ${fixed(r.kibPerConnection)} KiB | ${fixed(r.cpuShare * 100, 1)} % of a core | ${r.serverCloses} / ${r.errors} |`),
    '',
    `native / net: memory per idle connection ${ratio(idles, 'kibPerConnection')}, CPU while holding ${ratio(idles, 'cpuShare')}.`,
    '',
    '**100,000 connect / ECHO / close cycles** (50 concurrent; before = after a 1 s warm-up):',
    '',
    '| engine | cycles | errors | fds before → after | RSS before → after |',
    '|---|---:|---:|---:|---:|',
    ...churns.map((r) => `| ${r.engine} | ${r.cycles} | ${r.errors} | ${r.fdsBefore} → ${r.fdsAfter} | ${fixed(r.rssBeforeKiB / 1024, 1)} → ${fixed(r.rssAfterKiB / 1024, 1)} MiB |`),
    '',
    '**At the fd limit** (`prlimit --nofile=256:256`, 400 connections for 4 s, then 10 fresh ECHO clients for 1 s). ' +
      '"Seen open" counts connections the kernel completed, including those waiting in the listen backlog: the native engine accepts ' +
      'and closes the excess with its reserve fd (and reports EMFILE, rate-limited), node:net leaves them queued; both keep serving:',
    '',
    '| engine | connections the clients saw open | server CPU meanwhile | alive | replies afterwards | errors afterwards | EMFILE reported |',
    '|---|---:|---:|---|---:|---:|---|',
    ...limits.map((r) => `| ${r.engine} | ${r.openedUnderLimit} | ${fixed(r.cpuShare * 100, 1)} % of a core | ${r.alive ? 'yes' : 'NO'} | ${r.repliesAfter} | ${r.errorsAfter} | ${r.emfileLogged ? 'yes' : 'no'} |`),
    '',
    '<!-- resources:end -->',
  ].join('\n');
}

async function main() {
  const idles = [];
  const churns = [];
  const limits = [];
  for (const engine of engines) {
    log(`${engine.name}: idle`);
    idles.push(await idle(engine));
  }
  for (const engine of engines) {
    log(`${engine.name}: churn`);
    churns.push(await churn(engine));
  }
  for (const engine of engines) {
    log(`${engine.name}: fd limit`);
    limits.push(await fdLimit(engine));
  }
  const section = render(idles, churns, limits);
  process.stdout.write(`${section}\n`);
  if (process.env.RESOURCES_NO_WRITE === '1') return;
  const file = path.join(here, 'RESULTS.md');
  const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# edgepoll benchmark results\n';
  const marked = /<!-- resources:start[\s\S]*?<!-- resources:end -->/;
  fs.writeFileSync(file, marked.test(current) ? current.replace(marked, section) : `${current.trimEnd()}\n\n${section}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error.stack ?? error}\n`);
  process.exit(1);
});
