#!/usr/bin/env node
// The topic scenarios of issue 14 (`npm run bench:topics`; `npm run bench`
// runs them too, last): publishes through a bus between two
// `edgepoll serve --bus` processes, native vs net engine, Redis vs NATS, side
// by side in one run (servers and broker started fresh for each run).
//   T1 one topic, 5 000 subscribers spread over the two servers
//   T2 1 000 topics × 5 subscribers, publishes spread over the topics
// The publisher is one connection on server A (pushes, seq 0, paced); the
// subscribers run in two child processes (bench/topic-subscribers.cjs).
// Reported: deliveries/s received and p50/p99 publish→receive (ms, 1 in 16
// sampled), and where the CPU went over the publishing window plus the tail,
// from /proc: the broker (redis-server / nats-server), each server split into
// its JS thread and its other threads (the native loops; GC and libuv helpers
// on both engines), the subscriber processes — as a share of one core — and
// the machine's load average, since the box is shared. Writes the "Topics"
// section of bench/RESULTS.md (between topics:start/end markers).
// Environment: TOPICS_SECONDS (publishing seconds per run, default 3),
// TOPICS_ROUNDS (default 1), TOPICS_RATE_T1 (publishes/s, default 100),
// TOPICS_RATE_T2 (default 2000), TOPICS_BUSES (redis,nats), TOPICS_ENGINES
// (native,net), TOPICS_NO_WRITE=1 (print only). Needs redis-server and
// nats-server (scripts/install-brokers.sh); a missing one is skipped, saying so.
import { execFileSync, fork, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const env = (name, fallback) => process.env[name] ?? fallback;
const seconds = Number(env('TOPICS_SECONDS', 3));
const rounds = Number(env('TOPICS_ROUNDS', 1));
const rates = { T1: Number(env('TOPICS_RATE_T1', 100)), T2: Number(env('TOPICS_RATE_T2', 2000)) };
const buses = env('TOPICS_BUSES', 'redis,nats').split(',');
const engines = env('TOPICS_ENGINES', 'native,net').split(',');
const TAIL_MS = 1500;
const SUBSCRIBERS = 5000;
const clockTicks = 100; // USER_HZ
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message) => process.stderr.write(`topics: ${message}\n`);

export const TOPIC_SCENARIOS = [
  { id: 'T1', title: `one topic, ${SUBSCRIBERS} subscribers over two servers` },
  { id: 'T2', title: '1 000 topics × 5 subscribers, publishes spread over them' },
];

function binary(name) {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds of one process: its main (JS) thread and all its other threads. */
function threadCpu(pid) {
  const out = { main: 0, others: 0 };
  let tasks = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11]) + Number(fields[12])) / clockTicks;
      if (Number(tid) === pid) out.main += cpu;
      else out.others += cpu;
    } catch {
      // the thread ended
    }
  }
  return out;
}

async function startBroker(kind) {
  const port = await freePort();
  const args = kind === 'redis' ? ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'] : ['-a', '127.0.0.1', '-p', String(port)];
  const child = spawn(kind === 'redis' ? 'redis-server' : 'nats-server', args, { stdio: 'ignore' });
  for (let i = 0; i < 200; i++) {
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

/** Busy and total jiffies of the whole machine (/proc/stat), all our processes and everyone else's. */
function machine() {
  const fields = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = fields[3] + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

function snapshot(broker, servers, children) {
  return {
    at: performance.now(),
    machine: machine(),
    broker: threadCpu(broker.child.pid),
    servers: servers.map((s) => threadCpu(s.child.pid)),
    subscribers: children.map((c) => threadCpu(c.pid)),
  };
}

/** Shares of one core between two snapshots. */
function cpuShares(a, b) {
  const span = (b.at - a.at) / 1000;
  const share = (x, y) => ({ main: (y.main - x.main) / span, others: (y.others - x.others) / span });
  const total = (t) => t.main + t.others;
  return {
    span,
    machineBusy: (b.machine.busy - a.machine.busy) / Math.max(1, b.machine.total - a.machine.total),
    broker: total(share(a.broker, b.broker)),
    servers: a.servers.map((s, i) => share(s, b.servers[i])),
    subscribers: a.subscribers.map((s, i) => total(share(s, b.subscribers[i]))),
  };
}

async function runOne(scenario, engine, bus) {
  const broker = await startBroker(bus);
  const servers = [];
  const children = [];
  try {
    servers.push(await serve(engine, broker.url, 'bench-a'), await serve(engine, broker.url, 'bench-b'));
    const ports = servers.map((s) => s.port);
    const processes = 2;
    for (let p = 0; p < processes; p++) {
      const spec = { ports, first: p * (SUBSCRIBERS / processes), count: SUBSCRIBERS / processes, topicOf: scenario === 'T1' ? 'one' : 'spread', topics: 1000 };
      children.push(fork(path.join(here, 'topic-subscribers.cjs'), [JSON.stringify(spec)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    }
    await Promise.all(children.map((c) => new Promise((resolve, reject) => (c.once('message', resolve), c.once('exit', (code) => reject(new Error(`subscribers exited ${code}`)))))));
    const publisher = net.connect({ port: ports[0], host: '127.0.0.1', noDelay: true });
    await new Promise((resolve) => publisher.once('connect', resolve));
    publisher.on('data', () => undefined);
    await sleep(500);
    const rate = rates[scenario];
    const before = snapshot(broker, servers, children);
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
    await sleep(TAIL_MS); // let the tail arrive
    const after = snapshot(broker, servers, children);
    const reports = await Promise.all(children.map((c) => new Promise((resolve) => (c.once('message', resolve), c.send('report')))));
    const received = reports.reduce((sum, r) => sum + r.received, 0);
    const samples = reports.flatMap((r) => r.samples).sort((a, b) => a - b);
    publisher.destroy();
    const cpu = cpuShares(before, after);
    const serverSeconds = cpu.servers.reduce((sum, x) => sum + x.main + x.others, 0) * cpu.span;
    return {
      // CPU per unit of work: steadier than the shares on a machine where every process waits for a core.
      serverMicrosPerDelivery: received > 0 ? (serverSeconds * 1e6) / received : null,
      brokerMicrosPerPublish: sent > 0 ? (cpu.broker * cpu.span * 1e6) / sent : null,
      scenario, engine, bus, publishes: sent, expected: sent * (scenario === 'T1' ? SUBSCRIBERS : 5), received,
      // Over the publishing window: what was offered is rate × subscribers per publish.
      deliveriesPerSecond: Math.round(received / seconds),
      p50: percentile(samples, 50), p99: percentile(samples, 99),
      cpu,
    };
  } finally {
    for (const c of children) c.kill('SIGKILL');
    for (const s of servers) s.child.kill('SIGKILL');
    broker.child.kill('SIGKILL');
    await sleep(300);
  }
}

const pct = (share) => `${Math.round(share * 100)} %`;
const ms = (v) => (Number.isFinite(v) ? (v < 10 ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')) : '–');
const fix2 = (v) => (v == null ? '–' : v.toFixed(2));
const int = (v) => Math.round(v).toLocaleString('en-US');

/** The component closest to a full core (a single-threaded process cannot pass 100 %). */
function busiest(row) {
  const parts = [
    [`${row.bus}-server`, row.cpu.broker],
    ...row.cpu.servers.flatMap((s, i) => [[`server ${'AB'[i]} JS thread`, s.main], [`server ${'AB'[i]} other threads`, s.others]]),
    ...row.cpu.subscribers.map((s, i) => [`subscribers ${i + 1}`, s]),
  ];
  parts.sort((a, b) => b[1] - a[1]);
  return `${parts[0][0]} (${pct(parts[0][1])})`;
}

export function renderTopics(rows, notes) {
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' / ');
  return [
    '<!-- topics:start (written by `npm run bench:topics`; `npm run bench` runs it too) -->',
    '## Topics over a bus: two servers, one broker',
    '',
    `Measured ${new Date().toISOString()} (${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown'}; load average ${load} at the end: ` +
      'the machine is shared with other engineers\' builds and tests, so these are short single runs, not settled figures). ' +
      `Per run: a fresh ${buses.join(' / ')} broker and two \`edgepoll serve --engine E --bus URL\` processes (A, B); ${SUBSCRIBERS} subscriber connections ` +
      'in two child processes spread over A and B; one publisher connection on A sends paced PUBLISH pushes carrying a timestamp ' +
      `for ${seconds} s (T1 ${rates.T1}/s, T2 ${rates.T2}/s), then ${TAIL_MS / 1000} s for the tail. Deliveries/s = received ÷ publishing seconds; ` +
      'latency publish→receive, 1 in 16 deliveries sampled. CPU is from /proc over publishing window + tail, as a share of one core: ' +
      'the broker, each server\'s JS thread and its other threads (native: the loops doing the fan-out; both engines: GC and libuv helpers), and each subscriber process; ' +
      '"machine busy" is the whole box (both cores, everyone\'s processes) from /proc/stat. Where every process waits for a core the shares are what the scheduler gave, ' +
      'not what the work needs; CPU per delivery (both servers together) and per publish (broker) are the steadier figures. ' +
      `${rounds} round(s).`,
    '',
    ...TOPIC_SCENARIOS.map((s) => `- **${s.id}** ${s.title}`),
    ...notes.map((n) => `- ${n}`),
    '',
    '| scenario | bus | engine | round | publishes | deliveries expected | received | deliveries/s | p50 ms | p99 ms | broker CPU | A: JS / other threads | B: JS / other threads | subscriber processes | busiest | servers µs CPU / delivery | broker µs CPU / publish | machine busy |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|',
    ...rows.map((r) =>
      r.failed
        ? `| ${r.scenario} | ${r.bus} | ${r.engine} | ${r.round} | failed: ${r.failed} | | | | | | | | | | | | | |`
        : `| ${r.scenario} | ${r.bus} | ${r.engine} | ${r.round} | ${int(r.publishes)} | ${int(r.expected)} | ${int(r.received)} | ${int(r.deliveriesPerSecond)} | ${ms(r.p50)} | ${ms(r.p99)} | ` +
          `${pct(r.cpu.broker)} | ${r.cpu.servers.map((s) => `${pct(s.main)} / ${pct(s.others)}`).join(' | ')} | ${r.cpu.subscribers.map(pct).join(' + ')} | ${busiest(r)} | ${fix2(r.serverMicrosPerDelivery)} | ${fix2(r.brokerMicrosPerPublish)} | ${pct(r.cpu.machineBusy)} |`,
    ),
    '',
    'Rerun: `TOPICS_SECONDS=3 TOPICS_ROUNDS=1 npm run bench:topics` (or `BENCH_SCENARIOS=T1,T2 npm run bench`).',
    '',
    '<!-- topics:end -->',
  ].join('\n');
}

/** Runs the chosen scenarios (default both) over every engine and bus; resolves with the RESULTS.md section. */
export async function runTopics(ids = TOPIC_SCENARIOS.map((s) => s.id)) {
  const notes = [];
  const usable = buses.filter((bus) => {
    const ok = binary(bus === 'redis' ? 'redis-server' : 'nats-server');
    if (!ok) notes.push(`${bus}: skipped, ${bus === 'redis' ? 'redis-server' : 'nats-server'} not installed (scripts/install-brokers.sh)`);
    return ok;
  });
  const rows = [];
  for (let round = 1; round <= rounds; round++) {
    for (const scenario of ids) {
      for (const bus of usable) {
        for (const engine of engines) {
          const row = await runOne(scenario, engine, bus).catch((error) => ({ scenario, engine, bus, failed: String(error.message ?? error).split('\n')[0] }));
          row.round = round;
          rows.push(row);
          log(row.failed ? `${scenario} ${bus} ${engine}: FAILED ${row.failed}` : `${scenario} ${bus} ${engine}: ${int(row.received)}/${int(row.expected)} delivered, ${int(row.deliveriesPerSecond)}/s, p99 ${ms(row.p99)} ms, busiest ${busiest(row)}`);
        }
      }
    }
  }
  return renderTopics(rows, notes);
}

const MARKED = /<!-- topics:start[\s\S]*?<!-- topics:end -->/;

/** `markdown` plus the topics section of `previous`, when this run did not make one. */
export function keepTopicsSection(previous, markdown) {
  if (MARKED.test(markdown)) return markdown;
  const section = MARKED.exec(previous)?.[0];
  return section ? `${markdown.trimEnd()}\n\n${section}\n` : markdown;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const section = await runTopics();
  process.stdout.write(`${section}\n`);
  if (process.env.TOPICS_NO_WRITE !== '1') {
    const file = path.join(here, 'RESULTS.md');
    const current = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# edgepoll benchmark results\n';
    fs.writeFileSync(file, MARKED.test(current) ? current.replace(MARKED, section) : `${current.trimEnd()}\n\n${section}\n`);
  }
}
