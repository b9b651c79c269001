/**
 * edgepoll/prometheus and `edgepoll serve --metrics-port` (README "Metrics"):
 * the exposition passes `promtool check metrics` on every engine, and a real
 * Prometheus server (own config and temporary data dir, 127.0.0.1, a free
 * port) scrapes a running `edgepoll serve` and answers a query for the
 * connection gauge. scripts/install-prometheus.sh installs Debian's
 * `prometheus` (promtool included); without it the suite is skipped, saying why.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Registry } from 'prom-client';
import { describe, expect, it, onTestFinished } from 'vitest';
import { createServer, memoryBus } from '../../src/index';
import { registerMetrics } from '../../src/prometheus';
import { engineCases, root, startFixture, type Fixture } from '../helpers/fixture';
import { connectPeer, frame, type WirePeer } from '../helpers/wire';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const cli = path.join(root, 'dist', 'cli', 'main.js');

function installed(): string {
  const have = (bin: string): boolean => spawnSync(bin, ['--version'], { encoding: 'utf8' }).status === 0;
  if (have('promtool') && have('prometheus')) return '';
  const result = spawnSync('bash', [path.join(root, 'scripts', 'install-prometheus.sh')], { encoding: 'utf8', timeout: 300_000 });
  if (result.status === 0) return '';
  return `scripts/install-prometheus.sh could not install prometheus (exit ${result.status}): ${(result.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}`;
}
const missing = installed();
if (missing) console.warn(`skipping the promtool/Prometheus part of test/prometheus/prometheus.test.ts: ${missing}`);

function promtoolCheck(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

/** `edgepoll serve --metrics-port 0` and the metrics address it logs. */
async function serveWithMetrics(args: string[]): Promise<{ fixture: Fixture; metricsUrl: string }> {
  const fixture = await startFixture({}, cli, ['serve', '--port', '0', '--metrics-port', '0', ...args]);
  onTestFinished(() => void fixture.stop());
  for (let i = 0; i < 100 && !/metrics on (\S+)/.test(fixture.stderr()); i++) await sleep(50);
  const match = /metrics on (\S+)/.exec(fixture.stderr());
  if (!match) throw new Error(`no metrics line: ${fixture.stderr()}`);
  return { fixture, metricsUrl: match[1] };
}

async function peers(port: number, count: number): Promise<WirePeer[]> {
  const list: WirePeer[] = [];
  for (let i = 0; i < count; i++) {
    const peer = await connectPeer(port);
    onTestFinished(() => peer.destroy());
    peer.write(frame(0, 1, 1, 'hi'));
    await peer.readFrame();
    list.push(peer);
  }
  return list;
}

describe('registerMetrics on a prom-client Registry', () => {
  it('is the edgepoll/prometheus entry point, from require and import (one module instance)', () => {
    const script = [
      "const cjs = require('edgepoll/prometheus');",
      "import('edgepoll/prometheus').then((esm) => {",
      "  process.stdout.write(String(typeof cjs.registerMetrics === 'function' && esm.registerMetrics === cjs.registerMetrics && esm.default === cjs));",
      '});',
    ].join('\n');
    const result = spawnSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('true');
  });

  it('exposes counters, gauges, labelled close reasons, per-loop series and histograms; unregister removes them', async () => {
    const server = createServer({ engine: 'net' });
    server.handle(1, (payload) => payload);
    const { port } = await server.listen();
    onTestFinished(() => server.close());
    const registry = new Registry();
    const registration = registerMetrics(server, { registry, labels: { service: 'gw' } });
    await peers(port, 2);
    const text = await registry.metrics();
    expect(text).toContain('# TYPE edgepoll_connections gauge\nedgepoll_connections{service="gw"} 2\n');
    expect(text).toContain('# TYPE edgepoll_connections_accepted_total counter\nedgepoll_connections_accepted_total{service="gw"} 2\n');
    expect(text).toContain('edgepoll_connections_closed_total{reason="heartbeat_timeout",service="gw"} 0');
    expect(text).toContain('edgepoll_messages_received_total{service="gw"} 2\n');
    expect(text).toContain('edgepoll_loop_connections{loop="0",service="gw"} 2\n');
    expect(text).toContain('# TYPE edgepoll_handler_duration_seconds histogram');
    expect(text).toContain('edgepoll_handler_duration_seconds_bucket{le="+Inf",service="gw"} 2\n');
    expect(text).toContain('edgepoll_handler_duration_seconds_count{service="gw"} 2\n');
    expect(text).toMatch(/edgepoll_batch_wait_seconds_count\{service="gw"\} \d+/);
    expect(registration.names).toContain('edgepoll_bus_sent_total');
    expect(text).toContain('# TYPE edgepoll_bus_sent_total counter\n'); // no samples: no bus
    if (!missing) expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
    registration.unregister();
    expect(await registry.metrics()).toBe('\n');
  });
});

describe('bus metrics', () => {
  it('exports the bus link counters of a server on a bus', async () => {
    const bus = memoryBus();
    const server = createServer({ engine: 'net', bus, nodeId: 'metrics-a' });
    const other = createServer({ engine: 'net', bus, nodeId: 'metrics-b' });
    await server.listen();
    await other.listen();
    onTestFinished(async () => {
      await server.close();
      await other.close();
    });
    server.publish('room', 1, 'hello');
    server.publish('room', 1, 'again');
    const registry = new Registry();
    registerMetrics(server, { registry });
    const text = await registry.metrics();
    expect(text).toContain('\nedgepoll_bus_up 1\n');
    expect(text).toContain('\nedgepoll_bus_sent_total 2\n');
    if (!missing) expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
  });
});

describe.skipIf(Boolean(missing)).each(engineCases())('edgepoll serve --metrics-port on $name', ({ options }) => {
  const args = ['--engine', options.engine!];
  if (options.threads) args.push('--threads', String(options.threads));
  if (options.workers) args.push('--workers', String(options.workers));

  it('serves /metrics that promtool accepts, with the open connections', async () => {
    const { fixture, metricsUrl } = await serveWithMetrics(args);
    await peers(fixture.port, 3);
    let text = '';
    for (let i = 0; i < 50; i++) {
      text = await (await fetch(metricsUrl)).text();
      if (text.includes('\nedgepoll_connections 3\n')) break;
      await sleep(100);
    }
    expect(text).toContain('\nedgepoll_connections 3\n');
    expect(promtoolCheck(text)).toEqual({ status: 0, output: '' });
    expect((await fetch(metricsUrl.replace('/metrics', '/other'))).status).toBe(404);
  }, 30_000);
});

describe.skipIf(Boolean(missing))('a real Prometheus server', () => {
  it('scrapes edgepoll serve --metrics-port and answers a query for the connection gauge', async () => {
    const engine = engineCases()[0].options.engine!;
    const { fixture, metricsUrl } = await serveWithMetrics(['--engine', engine]);
    await peers(fixture.port, 4);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'edgepoll-prometheus-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    const target = new URL(metricsUrl).host;
    const config = path.join(dir, 'prometheus.yml');
    fs.writeFileSync(config, [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: edgepoll',
      `    static_configs: [{ targets: ['${target}'] }]`,
      '',
    ].join('\n'));
    const webPort = await freePort();
    const prometheus = spawn('prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${webPort}`,
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    prometheus.stderr!.on('data', (chunk) => (log += chunk));
    const exited = new Promise((resolve) => prometheus.on('exit', resolve));
    onTestFinished(async () => {
      prometheus.kill('SIGTERM');
      await exited;
    });
    const api = `http://127.0.0.1:${webPort}/api/v1/query?query=${encodeURIComponent('edgepoll_connections{job="edgepoll"}')}`;
    let answer: { status?: string; data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> } } = {};
    for (let i = 0; i < 200; i++) {
      try {
        answer = await (await fetch(api)).json();
        if (answer.data?.result?.[0]?.value[1] === '4') break;
      } catch {
        // not up yet
      }
      await sleep(200);
    }
    expect(answer.status, log.slice(-2000)).toBe('success');
    expect(answer.data!.result).toHaveLength(1);
    expect(answer.data!.result![0].metric).toMatchObject({ __name__: 'edgepoll_connections', instance: target, job: 'edgepoll' });
    expect(answer.data!.result![0].value[1]).toBe('4');
  }, 60_000);
});
