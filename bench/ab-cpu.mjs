// Server CPU per message, side by side, for builds of edgepoll in different
// directories (A/B of a change) and the plain node:net reference. On a loaded
// shared machine wall-clock throughput is noise; CPU seconds per message of
// the server, split per thread (the JS thread is the process's main thread,
// the loop threads are the others that burn CPU), are steadier.
//
//   node bench/ab-cpu.mjs DIR_A DIR_B …   (each DIR holds dist/ and build/)
// env: AB_ROUNDS (3), AB_SECONDS (4), AB_DEPTH (32), AB_CONNECTIONS (100),
//      AB_PAYLOAD (64), AB_ARGS (extra `serve` flags), AB_NET (1: include node:net)
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runLoad } from '../dist/cli/bench.js';
import { nodeNetBaseline, sleep, startServer, stopServer } from './server.mjs';

const here = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const rounds = Number(process.env.AB_ROUNDS ?? 3);
const seconds = Number(process.env.AB_SECONDS ?? 4);
const load = {
  mode: 'rr',
  connections: Number(process.env.AB_CONNECTIONS ?? 100),
  depth: Number(process.env.AB_DEPTH ?? 32),
  payload: Number(process.env.AB_PAYLOAD ?? 64),
};
const extra = (process.env.AB_ARGS ?? '').split(' ').filter(Boolean);
const dirs = process.argv.slice(2).length ? process.argv.slice(2) : [here];

/** CPU seconds per thread of one process: main (the JS thread) and the rest summed. */
function threads(pid) {
  let main = 0;
  let other = 0;
  for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cpu = (Number(fields[11]) + Number(fields[12])) / 100;
      if (Number(task) === pid) main += cpu;
      else other += cpu;
    } catch {
      // thread gone
    }
  }
  return { main, other };
}

const engines = dirs.map((dir) => ({
  name: path.basename(dir),
  command: [process.execPath, path.join(dir, 'dist', 'cli', 'main.js'), 'serve', '--engine', 'native', '--threads', '1', ...extra],
}));
if (process.env.AB_NET !== '0') engines.push(nodeNetBaseline);

const results = new Map(engines.map((e) => [e.name, []]));
for (let round = 1; round <= rounds; round++) {
  for (const engine of engines) {
    const server = await startServer(engine);
    try {
      await sleep(300);
      const samples = [];
      const report = await runLoad(
        { host: '127.0.0.1', port: server.port, ...load, duration: seconds, warmup: 1, threads: 1, rampTimeout: 60, progressInterval: 500 },
        (progress) => {
          if (progress.phase === 'record') samples.push({ at: performance.now(), ...threads(server.child.pid) });
        },
      );
      const first = samples[0];
      const last = samples[samples.length - 1];
      const window = (last.at - first.at) / 1000;
      const handled = report.messagesPerSecond * window;
      const row = {
        msgs: report.messagesPerSecond,
        js: ((last.main - first.main) * 1e6) / handled,
        loop: ((last.other - first.other) * 1e6) / handled,
        errors: report.errors + report.connectErrors + report.mismatches,
      };
      row.total = row.js + row.loop;
      results.get(engine.name).push(row);
      process.stderr.write(
        `round ${round} ${engine.name.padEnd(14)} ${Math.round(row.msgs)} msgs/s  cpu/msg ${row.total.toFixed(3)} µs (main ${row.js.toFixed(3)}, other threads ${row.loop.toFixed(3)})${row.errors ? ` ERRORS ${row.errors}` : ''}\n`,
      );
    } finally {
      await stopServer(server);
    }
  }
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
console.log(`| server | msgs/s | CPU µs/msg | main (JS) thread | other threads |`);
console.log(`|---|---|---|---|---|`);
for (const [name, rows] of results) {
  const m = (key) => median(rows.map((r) => r[key]));
  console.log(`| ${name} | ${Math.round(m('msgs'))} | ${m('total').toFixed(3)} | ${m('js').toFixed(3)} | ${m('loop').toFixed(3)} |`);
}
