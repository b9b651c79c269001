// Turns one matrix run (bench/matrix.mjs) into bench/RESULTS.md and the README's
// benchmark table: medians over rounds, each engine's ratios to the plain
// node:net reference server, to Bun.listen and to edgepoll's net engine from the
// same run (the median of the per-round ratios), server CPU per message, the
// diagnostics, the commands.
// Owns: text only; it computes nothing it was not handed.

const median = (values) => {
  const sorted = values.filter((v) => typeof v === 'number' && Number.isFinite(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return null;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

const fixed = (value, digits = 0) => (value == null ? '–' : Number(value).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }));

/** The headline number of a result: KiB per connection for S5, else per second. */
export function headline(scenario, result) {
  return scenario.id === 'S5' ? result.rssPerConnectionKiB : result.messagesPerSecond;
}

/** The reference every ratio is led by, and the other two columns of ratios. */
export const REFERENCE = 'node:net';
const COMPARED = [REFERENCE, 'bun', 'net'];

/** Per (scenario, engine): medians over rounds and the median ratios to node:net, bun and net in the same round. */
export function summarize(run) {
  const rows = [];
  for (const scenario of run.scenarios) {
    const mine = run.results.filter((r) => r.scenario === scenario.id && !r.failed);
    const engines = [...new Set(run.results.filter((r) => r.scenario === scenario.id).map((r) => r.engine))];
    for (const engine of engines) {
      const own = mine.filter((r) => r.engine === engine);
      const failed = run.results.filter((r) => r.scenario === scenario.id && r.engine === engine && r.failed);
      const ratiosTo = (name) =>
        median(
          own.map((r) => {
            const other = mine.find((n) => n.engine === name && n.round === r.round);
            const a = headline(scenario, r);
            const b = other ? headline(scenario, other) : null;
            return a != null && b ? a / b : null;
          }),
        );
      const ratios = Object.fromEntries(COMPARED.map((name) => [name, ratiosTo(name)]));
      rows.push({
        scenario,
        engine,
        diagnostic: own.some((r) => r.diagnostic) || failed.some((r) => r.diagnostic),
        runs: own.length,
        failed: failed.length,
        failure: failed[0]?.failed,
        value: median(own.map((r) => headline(scenario, r))),
        rate: median(own.map((r) => r.messagesPerSecond)),
        ratio: ratios[REFERENCE],
        ratios,
        p50: median(own.map((r) => r.latency.p50Us)),
        p99: median(own.map((r) => r.latency.p99Us)),
        p999: median(own.map((r) => r.latency.p999Us)),
        cpuPerMessage: median(own.map((r) => r.serverCpuMicrosPerMessage)),
        holdCpuShare: median(own.map((r) => r.holdCpuShare)),
        loadgenShare: median(own.map((r) => r.loadgenCpuShare)),
        errors: own.reduce((sum, r) => sum + r.errors, 0),
        mismatches: own.reduce((sum, r) => sum + r.mismatches, 0),
        firstError: own.find((r) => r.firstError)?.firstError,
      });
    }
  }
  return rows;
}

const ratioText = (ratio) => (ratio == null ? '–' : `${ratio.toFixed(2)}×`);

/** `ratioColumns`: [{ title, of(row) }], shown after the median. */
function table(rows, ratioColumns) {
  const lines = [
    `| scenario | engine | median | ${ratioColumns.map((c) => c.title).join(' | ')} | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | loadgen CPU | errors / mismatches |`,
    `|---|---|---:|${ratioColumns.map(() => '---:|').join('')}---:|---:|---:|---:|---:|---:|`,
  ];
  for (const row of rows) {
    const unit = row.scenario.metric;
    const value = row.value == null ? (row.failed ? 'failed' : '–') : `${fixed(row.value, row.scenario.id === 'S5' ? 2 : 0)} ${unit}`;
    const extra = row.scenario.id === 'S5' && row.holdCpuShare != null ? ` (server ${fixed(row.holdCpuShare * 100, 1)} % of a core while holding)` : '';
    lines.push(
      `| ${row.scenario.id} | ${row.engine} | ${value}${extra} | ${ratioColumns.map((c) => ratioText(c.of(row))).join(' | ')} | ${fixed(row.p50)} | ${fixed(row.p99)} | ${fixed(row.p999)} | ` +
        `${row.scenario.id === 'S5' ? '–' : fixed(row.cpuPerMessage, 2)} | ${row.loadgenShare == null ? '–' : `${fixed(row.loadgenShare * 100)} %`} | ${row.errors} / ${row.mismatches} |`,
    );
  }
  return lines.join('\n');
}

/** The main table's ratio columns: to node:net first, then Bun (when it ran), then edgepoll's net engine. */
function mainRatioColumns(run) {
  const columns = [{ title: 'vs node:net', of: (r) => r.ratios[REFERENCE] }];
  if (run.results.some((r) => r.engine === 'bun')) columns.push({ title: 'vs Bun', of: (r) => r.ratios.bun });
  columns.push({ title: 'vs net engine', of: (r) => r.ratios.net });
  return columns;
}

const scenarioLabel = (sc) => (sc.id === 'S5' ? `${sc.id} ${sc.title}: memory per connection (lower is better)` : `${sc.id} ${sc.title}`);

/** One line on the Bun baseline: its version, or why it did not run. */
export function bunLine(run) {
  if (run.bun?.version) return `Bun ${run.bun.version} (\`Bun.listen\`, bench/baseline-bun.mjs).`;
  return `Bun: skipped (${run.bun?.skipped ?? 'not run'}).`;
}

/**
 * The headline: per scenario, the plain node:net server's own median and every
 * other server's ratio to it (same rounds), then server CPU per message.
 * Used at the top of RESULTS.md and as the README's benchmark table.
 */
export function renderHeadline(run) {
  const rows = summarize(run).filter((r) => !r.diagnostic);
  const others = [...new Set(rows.map((r) => r.engine))].filter((e) => e !== REFERENCE);
  const cell = (scenario, engine, show) => {
    const row = rows.find((r) => r.scenario.id === scenario.id && r.engine === engine);
    return row ? show(row) : '–';
  };
  const valueOf = (r) => (r.value == null ? (r.failed ? 'failed' : '–') : `${fixed(r.value, r.scenario.id === 'S5' ? 2 : 0)} ${r.scenario.metric}`);
  const head = `| scenario | plain node:net | ${others.map((e) => `${e} ÷ node:net`).join(' | ')} |`;
  const rule = `|---|---:|${others.map(() => '---:|').join('')}`;
  const ratios = [head, rule];
  for (const sc of run.scenarios) {
    if (!rows.some((r) => r.scenario.id === sc.id)) continue;
    ratios.push(`| ${scenarioLabel(sc)} | ${cell(sc, REFERENCE, valueOf)} | ${others.map((e) => cell(sc, e, (r) => ratioText(r.ratios[REFERENCE]))).join(' | ')} |`);
  }
  const cpu = [`| server CPU µs per message | node:net | ${others.join(' | ')} |`, rule];
  for (const sc of run.scenarios) {
    if (sc.id === 'S5' || !rows.some((r) => r.scenario.id === sc.id)) continue;
    cpu.push(`| ${sc.id} | ${[REFERENCE, ...others].map((e) => cell(sc, e, (r) => fixed(r.cpuPerMessage, 2))).join(' | ')} |`);
  }
  return `${ratios.join('\n')}\n\n${cpu.join('\n')}`;
}

export function renderResults(run) {
  const rows = summarize(run);
  const main = rows.filter((r) => !r.diagnostic);
  // Each diagnostic is compared with its baseline engine in the same scenario and round.
  const diagnosticRows = [];
  for (const scenario of run.scenarios) {
    const diagnosticResults = run.results.filter((r) => r.scenario === scenario.id && r.diagnostic);
    const baselines = [...new Set(diagnosticResults.map((r) => r.baseline ?? 'native-1'))];
    for (const baseline of baselines) {
    const base = run.results.filter((r) => r.scenario === scenario.id && r.engine === baseline && !r.failed);
    const names = [...new Set(diagnosticResults.filter((r) => (r.baseline ?? 'native-1') === baseline).map((r) => r.engine))];
    for (const name of [baseline, ...names]) {
      const own = run.results.filter((r) => r.scenario === scenario.id && r.engine === name && !r.failed);
      const ratios = own.map((r) => {
        const b = base.find((x) => x.round === r.round);
        return b && b.messagesPerSecond ? r.messagesPerSecond / b.messagesPerSecond : null;
      });
      const summary = rows.find((r) => r.scenario.id === scenario.id && r.engine === name);
      if (summary) diagnosticRows.push({ ...summary, ratio: median(ratios) });
    }
    }
  }
  const failures = rows.filter((r) => r.failed).map((r) => `- ${r.scenario.id} ${r.engine}: ${r.failed} run(s) failed: ${String(r.failure).split('\n')[0]}`);
  const errors = rows.filter((r) => r.errors || r.mismatches).map((r) => `- ${r.scenario.id} ${r.engine}: first error: ${r.firstError}`);
  const s = run.settings;
  return [
    '# edgepoll benchmark results',
    '',
    `Latest run: ${run.date}, ${run.machine.cpus} × ${run.machine.model}, Linux ${run.machine.kernel}, Node ${run.machine.node}; ` +
      `${s.rounds} rounds × ${s.seconds} s measured (+${s.warmup} s warm-up) per run, load generator threads: ${s.loadgenThreads}; ` +
      `the whole matrix took ${fixed(run.elapsedSeconds / 60, 1)} min. The load generator runs on the same machine and shares its cores.`,
    '',
    '**The reference is a plain node:net server** (`bench/baseline-net.mjs`: no edgepoll code, frames parsed in `\'data\'`, all replies of one event in one `write`, PING answered, the same ECHO/BROADCAST/PING as the demo service), ' +
      'because that is what a user would write instead. `bun` is the same frame handling on Bun\'s `Bun.listen` (`bench/baseline-bun.mjs`), installed on demand outside the project. ' +
      `${bunLine(run)} \`net\` is edgepoll\'s own pure-JS engine, the fallback on other platforms.`,
    '',
    renderHeadline(run),
    '',
    '## Every run',
    '',
    'Every run starts a fresh server (`node dist/cli/main.js serve --port 0 …`, or a reference server); servers take turns within each round (A B C D A B C D …). ' +
      'Values are medians over rounds; a ratio is the median of the per-round ratios to that server measured in the same round (S5: KiB per idle connection, lower is better; everything else: higher is better). ' +
      'Server CPU is user + system time of the server process and its children (cluster workers) from /proc, over the measured window, divided by the messages in it. ' +
      '"loadgen CPU" is the load generator\'s own CPU time as a share of one core.',
    '',
    ...run.scenarios.map((sc) => `- **${sc.id}** ${sc.title}: \`${JSON.stringify(sc.load)}\``),
    '',
    '![ratio to plain node:net](chart.svg)',
    '',
    table(main, mainRatioColumns(run)),
    '',
    '## Diagnostics',
    '',
    '`native-1 nativeEcho`: the native engine answers ECHO in C++ without waking JS (server option `nativeEcho`, `serve --native-echo`): the difference to `native-1` is what the JS bridge and dispatch cost. ' +
      '`native-1 level`: the same server with level-triggered epoll (`triggerMode: \'level\'`, `serve --trigger level`). ' +
      '`native-2 exclusive`: two loops sharing one listener with `EPOLLEXCLUSIVE` instead of a `SO_REUSEPORT` listener per loop (the default), on connection churn. ' +
      'Ratios here are to the row above each group (its baseline) in the same round.',
    '',
    diagnosticRows.length ? table(diagnosticRows, [{ title: 'ratio to baseline', of: (r) => r.ratio }]) : '(not run)',
    '',
    ...(failures.length || errors.length ? ['## Failures and errors', '', ...failures, ...errors, ''] : []),
    '## Commands',
    '',
    'Exactly what produced this file:',
    '',
    '```sh',
    'npm install            # builds the addon and dist/',
    `BENCH_SECONDS=${s.seconds} BENCH_ROUNDS=${s.rounds} BENCH_WARMUP=${s.warmup} BENCH_LOADGEN_THREADS=${s.loadgenThreads} npm run bench`,
    '```',
    '',
    'One load by hand, against any engine (or any server speaking the edgepoll frame):',
    '',
    '```sh',
    'npx edgepoll serve --port 7000 --engine native --threads 1 &   # or: node bench/baseline-net.mjs --port 7000 &  (bun bench/baseline-bun.mjs --port 7000 &)',
    'npx edgepoll bench --target 127.0.0.1:7000 --connections 100 --depth 1 --payload 64 --duration 5   # S1',
    'npx edgepoll bench --target 127.0.0.1:7000 --connections 100 --depth 32 --duration 5                # S3',
    'npx edgepoll bench --target 127.0.0.1:7000 --mode churn --connections 50 --duration 5               # S4',
    'npx edgepoll bench --target 127.0.0.1:7000 --mode idle --connections 10000 --interval 5000 --payload 8 --duration 6  # S5',
    'npx edgepoll bench --target 127.0.0.1:7000 --mode broadcast --connections 5000 --duration 5         # S6',
    '```',
    '',
    'Raw data of this run: `bench/results/latest.json`.',
    '',
  ].join('\n');
}
