#!/usr/bin/env node
// `npm run bench:topics` (issue 14): publishes through a bus between two
// `edgepoll serve --bus` processes, native vs net engine, Redis vs NATS, side
// by side in one run.
//   T1 one topic, 5 000 subscribers spread over the two servers
//   T2 1 000 topics × 5 subscribers, publishes spread over the topics
// The publisher is one connection on server A (pushes, seq 0, paced); the
// subscribers run in child processes (bench/topic-subscribers.cjs). Reported:
// deliveries/s received and p99 publish→receive (ms, 1 in 16 sampled).
// Environment: BENCH_SECONDS (default 5), BENCH_RATE_T1 (publishes/s,
// default 100), BENCH_RATE_T2 (default 2000), BENCH_BUSES (redis,nats),
// BENCH_ENGINES (native,net). Needs redis-server and nats-server
// (scripts/install-brokers.sh).
import { fork, spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const cli = path.join(root, 'dist', 'cli.js');
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rates = { T1: Number(process.env.BENCH_RATE_T1 ?? 100), T2: Number(process.env.BENCH_RATE_T2 ?? 2000) };
const buses = (process.env.BENCH_BUSES ?? 'redis,nats').split(',');
const engines = (process.env.BENCH_ENGINES ?? 'native,net').split(',');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startBroker(kind) {
  const port = await freePort();
  const args = kind === 'redis' ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] : ['-a', '127.0.0.1', '-p', String(port)];
  const child = spawn(kind === 'redis' ? 'redis-server' : 'nats-server', args, { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => (s.destroy(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    await sleep(50);
  }
  return { child, url: `${kind}://127.0.0.1:${port}` };
}

async function serve(engine, url, nodeId) {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--engine', engine, '--bus', url, '--node-id', nodeId], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    readline.createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^listening on [^ ]+:(\d+)$/.exec(line);
      if (match) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
  });
  return { child, port };
}

function percentile(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN;
}

async function run(scenario, engine, bus) {
  const broker = await startBroker(bus);
  const servers = [await serve(engine, broker.url, 'bench-a'), await serve(engine, broker.url, 'bench-b')];
  const ports = servers.map((s) => s.port);
  const total = 5000;
  const processes = 2;
  const children = [];
  try {
    for (let p = 0; p < processes; p++) {
      const spec = { ports, first: p * (total / processes), count: total / processes, topicOf: scenario === 'T1' ? 'one' : 'spread', topics: 1000 };
      const child = fork(path.join(here, 'topic-subscribers.cjs'), [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
    }
    await Promise.all(children.map((c) => new Promise((resolve) => c.once('message', resolve))));
    const publisher = net.connect({ port: ports[0], host: '127.0.0.1', noDelay: true });
    await new Promise((resolve) => publisher.once('connect', resolve));
    publisher.on('data', () => undefined);
    await sleep(500);
    const rate = rates[scenario];
    const started = performance.now();
    let sent = 0;
    while (performance.now() - started < seconds * 1000) {
      const due = Math.floor(((performance.now() - started) / 1000) * rate);
      const parts = [];
      for (; sent < due; sent++) {
        const topic = scenario === 'T1' ? 'fan' : `t${sent % 1000}`;
        const head = Buffer.from(`${topic}\0`);
        const body = Buffer.alloc(head.length + 8 + 48);
        head.copy(body, 0);
        body.writeDoubleBE(performance.timeOrigin + performance.now(), head.length);
        const header = Buffer.alloc(12);
        header[0] = 0xeb;
        header.writeUInt16BE(6, 2);
        header.writeUInt32BE(body.length, 4);
        parts.push(header, body);
      }
      if (parts.length) publisher.write(Buffer.concat(parts));
      await sleep(5);
    }
    await sleep(1500); // let the tail arrive
    const reports = await Promise.all(
      children.map((c) => new Promise((resolve) => (c.once('message', resolve), c.send('report')))),
    );
    const received = reports.reduce((sum, r) => sum + r.received, 0);
    const samples = reports.flatMap((r) => r.samples).sort((a, b) => a - b);
    const expected = sent * (scenario === 'T1' ? total : 5);
    publisher.destroy();
    return { scenario, engine, bus, publishes: sent, expected, received, deliveriesPerSecond: Math.round(received / seconds), p50: percentile(samples, 50), p99: percentile(samples, 99) };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const s of servers) s.child.kill('SIGKILL');
    broker.child.kill('SIGKILL');
    await sleep(300);
  }
}

const rows = [];
for (const scenario of ['T1', 'T2']) {
  for (const bus of buses) {
    for (const engine of engines) {
      const row = await run(scenario, engine, bus);
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }
}
console.log('| scenario | bus | engine | publishes | deliveries expected | received | deliveries/s | p50 ms | p99 ms |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  console.log(`| ${r.scenario} | ${r.bus} | ${r.engine} | ${r.publishes} | ${r.expected} | ${r.received} | ${r.deliveriesPerSecond} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
}
