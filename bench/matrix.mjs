#!/usr/bin/env node
// `npm run bench`: every scenario against every engine and the reference
// servers (a plain node:net server, and Bun.listen when Bun can be had: the
// ratios are taken against them), servers started fresh for each run, taking
// turns (A B C D A B C D …) over several rounds, the load from the native load
// generator (src/bench.ts → native/loadgen) in this process, server CPU and RSS
// read from /proc. Writes bench/results/latest.json, bench/RESULTS.md,
// bench/chart.svg and, after a full matrix, the README's benchmark table.
// Environment: BENCH_SECONDS (measured seconds per run, default 5),
// BENCH_ROUNDS (default 3), BENCH_WARMUP (default 1), BENCH_SCENARIOS
// (e.g. "S1,S3"), BENCH_ENGINES (e.g. "native-1,net"), BENCH_LOADGEN_THREADS
// (default 1), BENCH_NO_WRITE=1 (print only), BENCH_BASE (another built
// checkout to compare with, side by side), BENCH_BUN (a Bun executable, or 0
// to skip Bun; see bench/bun.mjs). The heartbeat scenario H1
// (bench/heartbeats.mjs: 19,000 idle connections, a latency probe) and then
// the topic scenarios T1 and T2 (bench/topics.mjs: two servers on a Redis and
// a NATS bus, native and net engine; TOPICS_* variables there) run last,
// each unless BENCH_SCENARIOS leaves it out; a section left out keeps its
// last figures in RESULTS.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { renderChart } from './chart.mjs';
import { findBun } from './bun.mjs';
import { bunLine, renderHeadline, renderResults } from './report.mjs';
import { bunBaseline, nodeNetBaseline, sleep, startServer, stopServer, usage } from './server.mjs';
import { keepSection, runHeartbeats } from './heartbeats.mjs';
import { TOPIC_SCENARIOS, keepTopicsSection, runTopics } from './topics.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const require = createRequire(import.meta.url);
const { runLoad } = require(path.join(root, 'dist', 'cli', 'bench.js'));

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const warmup = Number(process.env.BENCH_WARMUP ?? 1);
const loadgenThreads = Number(process.env.BENCH_LOADGEN_THREADS ?? 1);
const pick = (variable) => (process.env[variable] ? new Set(process.env[variable].split(',')) : undefined);

/** Servers under test: the flags after `serve --port 0`. */
const engines = [
  { name: 'native-1', args: ['--engine', 'native', '--threads', '1'] },
  // threads: 0, the loop on the JS thread (native/driver.h).
  { name: 'native-0', args: ['--engine', 'native', '--threads', '0'] },
  { name: 'native-2', args: ['--engine', 'native', '--threads', '2'] },
  { name: 'net', args: ['--engine', 'net'] },
  { name: 'cluster', args: ['--engine', 'cluster'] },
  // The native engine in 2 worker processes (one loop each) on one shared socket: the same 2 cores as cluster.
  { name: 'native-w2', args: ['--engine', 'native', '--threads', '1', '--workers', '2'] },
  // The same 2 workers, each with its loop on its JS thread: one thread per process.
  { name: 'native-w2-0', args: ['--engine', 'native', '--threads', '0', '--workers', '2'] },
];
// BENCH_BASE=<another built checkout>: its native-1 and net run beside ours in
// the same rounds, so a change is judged before/after side by side.
if (process.env.BENCH_BASE) {
  const base = process.env.BENCH_BASE;
  const cli = ['dist/cli/main.js', 'dist/cli.js'].map((p) => path.join(base, p)).find((p) => fs.existsSync(p));
  if (!cli) throw new Error(`BENCH_BASE=${base}: no dist/cli/main.js or dist/cli.js there (build it first)`);
  for (const engine of engines.filter((e) => e.name === 'native-1' || e.name === 'net')) {
    engines.push({ name: `base ${engine.name}`, command: [process.execPath, cli, 'serve', ...engine.args] });
  }
}
/** Diagnostics: the same load with one server option changed, compared with `baseline` in the same round. */
const diagnostics = [
  { name: 'native-1 nativeEcho', baseline: 'native-1', scenarios: ['S1', 'S3'], args: ['--engine', 'native', '--threads', '1', '--native-echo'], diagnostic: true },
  { name: 'native-1 level', baseline: 'native-1', scenarios: ['S1', 'S3'], args: ['--engine', 'native', '--threads', '1', '--trigger', 'level'], diagnostic: true },
  { name: 'native-2 exclusive', baseline: 'native-2', scenarios: ['S4'], args: ['--engine', 'native', '--threads', '2', '--accept-mode', 'exclusive'], diagnostic: true },
];

const scenarios = [
  { id: 'S1', title: 'ping-pong, 100 connections, 64 B', metric: 'msgs/s', load: { mode: 'rr', connections: 100, depth: 1, payload: 64 }, diagnostics: true },
  { id: 'S2', title: 'ping-pong, 1000 connections, 64 B', metric: 'msgs/s', load: { mode: 'rr', connections: 1000, depth: 1, payload: 64 } },
  { id: 'S3', title: 'pipelined, 100 connections × 32 in flight, 64 B', metric: 'msgs/s', load: { mode: 'rr', connections: 100, depth: 32, payload: 64 }, diagnostics: true },
  { id: 'S4', title: 'churn: connect, one ECHO, close; 50 concurrent', metric: 'cycles/s', load: { mode: 'churn', connections: 50, payload: 64 } },
  { id: 'S5', title: '10 000 idle connections, PING every 5 s', metric: 'KiB/conn', load: { mode: 'idle', connections: 10000, interval: 5000, payload: 8 }, hold: true },
  { id: 'S6', title: 'BROADCAST 64 B to 5 000 connections', metric: 'deliveries/s', load: { mode: 'broadcast', connections: 5000, payload: 64 } },
];


async function runOne(scenario, engine) {
  const server = await startServer(engine);
  try {
    await sleep(300);
    const before = usage(server.child.pid);
    // Samples taken while measuring: CPU per message and RSS come from the
    // first and last of them, so ramp, warm-up and teardown do not count.
    const samples = [];
    const duration = scenario.hold ? Math.max(seconds, 6) : seconds;
    const report = await runLoad(
      {
        host: '127.0.0.1',
        port: server.port,
        ...scenario.load,
        duration,
        warmup: scenario.hold ? 0 : warmup,
        threads: loadgenThreads,
        rampTimeout: 60,
        progressInterval: 500,
      },
      (progress) => {
        if (progress.phase === 'record') samples.push({ at: performance.now(), ...usage(server.child.pid) });
      },
    );
    const after = usage(server.child.pid);
    const first = samples[0];
    const last = samples[samples.length - 1];
    const window = first && last !== first ? (last.at - first.at) / 1000 : 0;
    const result = {
      scenario: scenario.id,
      engine: engine.name,
      diagnostic: Boolean(engine.diagnostic),
      reference: Boolean(engine.reference),
      baseline: engine.baseline,
      messagesPerSecond: report.messagesPerSecond,
      messages: report.messages,
      latency: report.latency,
      errors: report.errors + report.connectErrors,
      mismatches: report.mismatches,
      opened: report.opened,
      serverCpuSeconds: after.cpu - before.cpu,
      windowCpuSeconds: window > 0 ? last.cpu - first.cpu : null,
      windowSeconds: window,
      loadgenCpuShare: report.totalSeconds > 0 ? report.loadgenCpuSeconds / report.totalSeconds : null,
      rssBeforeKiB: before.rssKiB,
      rssHoldKiB: samples.length ? Math.max(...samples.map((s) => s.rssKiB)) : null,
      firstError: report.firstError,
    };
    const handled = report.messagesPerSecond * window;
    result.serverCpuMicrosPerMessage = handled > 0 ? (result.windowCpuSeconds * 1e6) / handled : null;
    if (scenario.hold) {
      result.rssPerConnectionKiB = report.opened > 0 && result.rssHoldKiB ? (result.rssHoldKiB - before.rssKiB) / report.opened : null;
      // Server CPU while holding the idle connections, as a share of one core.
      result.holdCpuShare = window > 0 ? result.windowCpuSeconds / window : null;
    }
    return result;
  } finally {
    await stopServer(server);
  }
}

async function main() {
  const onlyScenarios = pick('BENCH_SCENARIOS');
  const onlyEngines = pick('BENCH_ENGINES');
  const started = Date.now();
  const results = [];
  // The reference servers run first in every round; Bun only when it can be had.
  const bun = !onlyEngines || onlyEngines.has('bun') ? findBun() : { skipped: 'not in BENCH_ENGINES' };
  process.stderr.write(bun.version ? `bench: Bun ${bun.version} (${bun.path})\n` : `bench: Bun baseline skipped: ${bun.skipped}\n`);
  const references = [nodeNetBaseline, ...(bun.path ? [bunBaseline(bun.path)] : [])];
  for (const scenario of scenarios) {
    if (onlyScenarios && !onlyScenarios.has(scenario.id)) continue;
    const lineup = [...references, ...engines, ...diagnostics.filter((d) => d.scenarios.includes(scenario.id))].filter((e) => !onlyEngines || onlyEngines.has(e.name));
    for (let round = 1; round <= rounds; round++) {
      for (const engine of lineup) {
        const result = await runOne(scenario, engine).catch((error) => ({ scenario: scenario.id, engine: engine.name, failed: String(error.message ?? error) }));
        result.round = round;
        results.push(result);
        const shown = result.failed
          ? `FAILED ${result.failed.split('\n')[0]}`
          : `${Math.round(result.messagesPerSecond)}/s p99 ${result.latency.p99Us.toFixed(0)} µs, server ${result.serverCpuSeconds.toFixed(2)} s CPU` +
            (result.rssPerConnectionKiB != null ? `, ${result.rssPerConnectionKiB.toFixed(2)} KiB/conn` : '') +
            (result.errors || result.mismatches ? `, ${result.errors} errors, ${result.mismatches} mismatches (${result.firstError})` : '');
        process.stderr.write(`bench: ${scenario.id} round ${round}/${rounds} ${engine.name.padEnd(20)} ${shown}\n`);
      }
    }
  }
  const run = {
    date: new Date().toISOString(),
    elapsedSeconds: (Date.now() - started) / 1000,
    settings: { seconds, rounds, warmup, loadgenThreads },
    bun: bun.version ? { version: bun.version } : { skipped: bun.skipped },
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', kernel: os.release(), node: process.version },
    scenarios: scenarios.map(({ id, title, metric, load }) => ({ id, title, metric, load })),
    results,
  };
  // Only H1 and/or T1, T2 chosen: no matrix ran, and its last tables stay as they are.
  const matrixRan = scenarios.some((sc) => !onlyScenarios || onlyScenarios.has(sc.id));
  let markdown = matrixRan ? renderResults(run) : '';
  const sections = [];
  if (!onlyScenarios || onlyScenarios.has('H1')) {
    process.stderr.write('bench: H1 heartbeats, 19,000 idle connections\n');
    sections.push(await runHeartbeats());
  }
  const topicIds = TOPIC_SCENARIOS.map((s) => s.id).filter((id) => !onlyScenarios || onlyScenarios.has(id));
  if (topicIds.length) {
    process.stderr.write(`bench: ${topicIds.join(', ')} topics over a bus (Redis, NATS; native, net)\n`);
    sections.push(await runTopics(topicIds));
  }
  for (const section of sections) markdown = `${markdown.trimEnd()}\n\n${section}\n`;
  process.stdout.write(`${markdown}\n`);
  if (process.env.BENCH_NO_WRITE !== '1' && !matrixRan) {
    const resultsFile = path.join(here, 'RESULTS.md');
    let text = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8') : '# edgepoll benchmark results\n';
    for (const section of sections) {
      const name = /<!-- (\w+):start/.exec(section)[1];
      const marked = new RegExp(`<!-- ${name}:start[\\s\\S]*?<!-- ${name}:end -->`);
      text = marked.test(text) ? text.replace(marked, () => section) : `${text.trimEnd()}\n\n${section}\n`;
    }
    fs.writeFileSync(resultsFile, text);
    process.stderr.write('bench: wrote the chosen sections of bench/RESULTS.md (the matrix tables are left as they were)\n');
  } else if (process.env.BENCH_NO_WRITE !== '1') {
    fs.mkdirSync(path.join(here, 'results'), { recursive: true });
    fs.writeFileSync(path.join(here, 'results', 'latest.json'), `${JSON.stringify(run, null, 2)}\n`);
    // The resources section comes from `npm run bench:resources`: keep it.
    const resultsFile = path.join(here, 'RESULTS.md');
    const previous = fs.existsSync(resultsFile) ? fs.readFileSync(resultsFile, 'utf8') : '';
    const resources = /<!-- resources:start[\s\S]*?<!-- resources:end -->/.exec(previous)?.[0];
    // H1 left out of this run: keep its last section too.
    let body = markdown.includes('<!-- heartbeats:start') ? markdown : keepSection(previous, markdown);
    // T1/T2 left out: keep their last section too.
    body = keepTopicsSection(previous, body);
    fs.writeFileSync(resultsFile, resources ? `${body.trimEnd()}\n\n${resources}\n` : body);
    fs.writeFileSync(path.join(here, 'chart.svg'), await renderChart(run));
    process.stderr.write('bench: wrote bench/RESULTS.md, bench/chart.svg, bench/results/latest.json\n');
    if (!onlyScenarios && !onlyEngines) writeReadmeTable(run);
  }
}

/** A full matrix refreshes the README's table (between its bench:start/end markers) from the same run. */
function writeReadmeTable(run) {
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const block = /(<!-- bench:start[^>]*-->\n)[\s\S]*?(<!-- bench:end -->)/;
  if (!block.test(text)) return;
  const s = run.settings;
  const body =
    `Latest run ${run.date.slice(0, 10)}: medians of ${s.rounds} rounds × ${s.seconds} s, side by side; ${bunLine(run)}\n\n` + `${renderHeadline(run)}\n\n`;
  fs.writeFileSync(readme, text.replace(block, (_, start, end) => `${start}${body}${end}`));
  process.stderr.write('bench: wrote the README benchmark table\n');
}

main().catch((error) => {
  process.stderr.write(`bench: ${error.stack ?? error}\n`);
  process.exitCode = 1;
});
