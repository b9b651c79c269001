// Renders bench/chart.svg from one matrix run with Vega-Lite (compiled to a
// Vega spec, rendered headless by vega's View.toSVG): throughput ratio to the
// plain node:net reference server per scenario and engine, and KiB per idle
// connection (S5).
// Owns: the chart spec only; the numbers come from report.mjs's summarize().
import * as vega from 'vega';
import * as vegaLite from 'vega-lite';
import { REFERENCE, summarize } from './report.mjs';

export async function renderChart(run) {
  const rows = summarize(run).filter((r) => !r.diagnostic && r.value != null);
  const ratios = rows
    .filter((r) => r.scenario.id !== 'S5' && r.ratio != null)
    .map((r) => ({ scenario: `${r.scenario.id} ${r.scenario.metric}`, engine: r.engine, ratio: Number(r.ratio.toFixed(3)) }));
  const memory = rows.filter((r) => r.scenario.id === 'S5').map((r) => ({ engine: r.engine, kib: Number(r.value.toFixed(2)) }));
  const domain = [...new Set(rows.map((r) => r.engine))];
  const engineColor = { field: 'engine', type: 'nominal', scale: { domain }, title: 'server' };
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: `edgepoll vs a plain node:net server (same run, median of ${run.settings.rounds} rounds)`, subtitle: `${run.machine.cpus} cores, ${run.date.slice(0, 10)}` },
    hconcat: [
      {
        title: 'throughput ÷ plain node:net (higher is better)',
        width: 420,
        height: 260,
        data: { values: ratios },
        layer: [
          {
            mark: 'bar',
            encoding: {
              x: { field: 'scenario', type: 'nominal', title: null, axis: { labelAngle: 0 } },
              xOffset: { field: 'engine', type: 'nominal', scale: { domain } },
              y: { field: 'ratio', type: 'quantitative', title: `ratio to ${REFERENCE}` },
              color: engineColor,
              tooltip: [{ field: 'engine' }, { field: 'ratio' }],
            },
          },
          { mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { y: { datum: 1 } } },
        ],
      },
      {
        title: 'S5: KiB per idle connection (lower is better)',
        width: 180,
        height: 260,
        data: { values: memory },
        mark: 'bar',
        encoding: {
          x: { field: 'engine', type: 'nominal', title: null, sort: domain },
          y: { field: 'kib', type: 'quantitative', title: 'KiB / connection' },
          color: { ...engineColor, legend: null },
        },
      },
    ],
    config: { font: 'sans-serif', view: { stroke: null } },
  };
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  return `${svg}\n`;
}
