#!/usr/bin/env node
/**
 * `edgepoll serve` and `edgepoll bench` (docs/PROTOCOL.md section 5). Standard
 * output carries exactly one line, `listening on HOST:PORT`; everything else
 * goes to standard error.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { installDemo } from './demo';
import { busFromUrl } from '../bus/url';
import { EdgepollError } from '../errors';
import { framings, type Framing } from '../protocol/constants';
import { createServer } from '../server/server';
import type { ServerOptions } from '../server/options';
import { logLevels, stderrLogger, type Logger, type LogLevel } from '../server/logger';
import { integerFlag } from '../validate';

const usage = `usage:
  edgepoll serve [--host 127.0.0.1] [--port 7000] [--engine native|net|cluster|auto]
                 [--threads N (0: the loop on the JS thread)] [--workers N]
                 [--framing frame|length|line|raw]
                 [--max-frame BYTES] [--heartbeat-interval MS] [--heartbeat-timeout MS]
                 [--idle-timeout MS] [--frame-timeout MS] [--shutdown-timeout MS]
                 [--goaway-spread MS] [--request-timeout MS]
                 [--max-connections N] [--accept-mode reuseport|exclusive]
                 [--proxy-protocol [--proxy-trusted CIDR,...] [--proxy-timeout MS]]
                 [--metrics-port N (Prometheus /metrics on --host; needs prom-client)]
                 [--log-level debug|info|warn|error|silent]
                 [--bus redis://HOST:PORT|nats://HOST:PORT] [--node-id NAME]
  edgepoll bench --target HOST:PORT [options]   (edgepoll bench --help)
  edgepoll request [--host 127.0.0.1] [--port 7000] [--type 1] [--timeout MS]
                   [--tls] [--ca FILE] [--cert FILE --key FILE] [--servername NAME] PAYLOAD...
`;

/** The CLI's logger: one line on stderr per message (`--log-level` filters it). */
let logger: Logger = stderrLogger();

function log(message: string): void {
  logger.info(message);
}

async function serve(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '7000' },
      engine: { type: 'string' },
      threads: { type: 'string' },
      workers: { type: 'string' },
      framing: { type: 'string', default: 'frame' },
      'max-frame': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
      'heartbeat-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'frame-timeout': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'shutdown-timeout': { type: 'string' },
      'goaway-spread': { type: 'string' },
      'request-timeout': { type: 'string' },
      'max-connections': { type: 'string' },
      'accept-mode': { type: 'string' },
      'native-echo': { type: 'boolean' },
      trigger: { type: 'string' },
      'proxy-protocol': { type: 'boolean' },
      'proxy-trusted': { type: 'string' },
      'proxy-timeout': { type: 'string' },
      'metrics-port': { type: 'string' },
      'log-level': { type: 'string' },
      bus: { type: 'string' },
      'node-id': { type: 'string' },
      hint: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stderr.write(usage);
    return 0;
  }
  if (values['log-level'] !== undefined) {
    if (!logLevels.includes(values['log-level'] as LogLevel)) {
      throw new EdgepollError('EINVALID_OPTION', `--log-level must be one of ${logLevels.join(', ')}, got ${JSON.stringify(values['log-level'])}`);
    }
    logger = stderrLogger(values['log-level'] as LogLevel);
  }
  const metricsPort = integerFlag('metrics-port', values['metrics-port']);
  if (!framings.includes(values.framing as Framing)) {
    throw new EdgepollError('EINVALID_OPTION', `--framing must be one of ${framings.join(', ')}, got ${JSON.stringify(values.framing)}`);
  }
  const interval = integerFlag('heartbeat-interval', values['heartbeat-interval']);
  const timeout = integerFlag('heartbeat-timeout', values['heartbeat-timeout']);
  const options: ServerOptions = {
    engine: values.engine as ServerOptions['engine'],
    threads: integerFlag('threads', values.threads),
    workers: integerFlag('workers', values.workers),
    framing: values.framing as Framing,
    maxFrame: integerFlag('max-frame', values['max-frame']),
    idleTimeout: integerFlag('idle-timeout', values['idle-timeout']),
    frameTimeout: integerFlag('frame-timeout', values['frame-timeout']),
    // --drain-timeout is the old name of --shutdown-timeout (docs/PROTOCOL.md section 5 still lists it).
    shutdownTimeout: integerFlag('shutdown-timeout', values['shutdown-timeout']) ?? integerFlag('drain-timeout', values['drain-timeout']),
    goawaySpread: integerFlag('goaway-spread', values['goaway-spread']),
    requestTimeout: integerFlag('request-timeout', values['request-timeout']),
    maxConnections: integerFlag('max-connections', values['max-connections']),
    acceptMode: values['accept-mode'] as ServerOptions['acceptMode'],
    nativeEcho: values['native-echo'],
    triggerMode: values.trigger as ServerOptions['triggerMode'],
    logger,
  };
  // PROXY protocol (behind HAProxy/nginx): trusts the local host unless told otherwise.
  if (values['proxy-protocol']) {
    const trusted = values['proxy-trusted']?.split(',').map((entry) => entry.trim()) ?? ['127.0.0.1/8', '::1'];
    options.proxyProtocol = { trusted, timeout: integerFlag('proxy-timeout', values['proxy-timeout']) };
    if (options.proxyProtocol.timeout === undefined) delete options.proxyProtocol.timeout;
  } else if (values['proxy-trusted'] !== undefined || values['proxy-timeout'] !== undefined) {
    throw new EdgepollError('EINVALID_OPTION', '--proxy-trusted and --proxy-timeout need --proxy-protocol');
  }
  if (interval === 0) options.heartbeat = false;
  else if (interval !== undefined || timeout !== undefined) {
    options.heartbeat = { interval: interval ?? 30_000, timeout: timeout ?? 10_000 };
  }
  if (values.bus !== undefined) options.bus = busFromUrl(values.bus);
  if (values['node-id'] !== undefined) options.nodeId = values['node-id'];
  for (const key of Object.keys(options) as Array<keyof ServerOptions>) {
    if (options[key] === undefined) delete options[key];
  }

  const server = createServer(options);
  installDemo(server);
  server.on('error', (error) => logger.error(error.message));
  server.on('busgap', (gap) =>
    logger.warn(`bus back after ${gap.to - gap.from} ms (${gap.error.message}); ${gap.sendDropped} message(s) could not be sent meanwhile`),
  );
  const worker = cluster.isWorker;
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    if (!worker) log(`${signal}: draining (up to ${server.options.shutdownTimeout} ms)`);
    server.close().then(
      () => process.exit(0),
      (error: Error) => {
        log(`shutdown failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  // A native --workers server reloads on SIGHUP (PROTOCOL.md section 6); the workers ignore it (the primary drives).
  if (server.options.nativeWorkers > 0 && server.engine === 'native') {
    process.on('SIGHUP', () => {
      if (worker || stopping) return;
      log('SIGHUP: reloading the workers');
      server.reload().then(
        () => log('reload done'),
        (error: EdgepollError) => log(`reload failed: ${error.code}: ${error.message}`),
      );
    });
  }

  const port = integerFlag('port', values.port) ?? 7000;
  // The primary serves /metrics (on the cluster engine its stats() sums the workers).
  const metrics = metricsPort !== undefined && !worker ? await serveMetrics(server, values.host!, metricsPort) : undefined;
  const address = await server.listen({ host: values.host, port });
  if (!worker) {
    process.stdout.write(`listening on ${address.host}:${address.port}\n`);
    if (metrics) log(`metrics on http://${metrics}/metrics`);
    const workers = server.engine === 'native' && server.options.nativeWorkers > 0 ? `, ${server.options.nativeWorkers} worker(s)` : '';
    log(`engine ${server.engine}, framing ${server.options.framing}${server.engine === 'native' ? `, ${server.options.threads === 0 ? 'loop on the JS thread' : `${server.options.threads} thread(s)`}${workers}` : ''}`);
    if (values.hint) {
      log(`try it: npx edgepoll request --port ${address.port} --type 1 hello   (ECHO; Ctrl-C stops the server)`);
    }
  }
  return -1; // keep serving
}

/** Serves `GET /metrics` (Prometheus text format) over node:http; resolves with "host:port". */
async function serveMetrics(server: ReturnType<typeof createServer>, host: string, port: number): Promise<string> {
  let prometheus: typeof import('../prometheus');
  let client: typeof import('prom-client');
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    client = require('prom-client') as typeof import('prom-client');
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    prometheus = require('../prometheus') as typeof import('../prometheus');
  } catch (error) {
    throw new EdgepollError('EINVALID_OPTION', '--metrics-port needs the prom-client package (npm install prom-client)', { cause: error });
  }
  const registry = new client.Registry();
  prometheus.registerMetrics(server, { registry });
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = require('node:http') as typeof import('node:http');
  const httpServer = http.createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (error: Error) => {
        logger.error(`metrics: ${error.message}`);
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', (error: NodeJS.ErrnoException) => {
      reject(new EdgepollError(error.code ?? 'EIO', `--metrics-port ${port}: ${error.message}`, { cause: error }));
    });
    httpServer.listen(port, host, () => resolve());
  });
  httpServer.unref(); // the edgepoll server keeps the process alive; /metrics follows it
  server.once('close', () => httpServer.close());
  const bound = httpServer.address();
  return `${host}:${typeof bound === 'object' && bound ? bound.port : port}`;
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  let code: number;
  try {
    switch (command) {
      case 'serve':
        code = await serve(rest);
        break;
      case 'bench': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { runBenchCommand } = require('./bench') as { runBenchCommand(argv: string[]): Promise<number> };
        code = await runBenchCommand(rest);
        break;
      }
      case 'request': {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { runRequestCommand } = require('./request') as { runRequestCommand(argv: string[]): Promise<number> };
        code = await runRequestCommand(rest);
        break;
      }
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stderr.write(usage);
        code = command === undefined ? 2 : 0;
        break;
      default:
        process.stderr.write(`edgepoll: unknown command ${JSON.stringify(command)}\n${usage}`);
        code = 2;
    }
  } catch (error) {
    const err = error as EdgepollError;
    log(`${err.code ? `${err.code}: ` : ''}${err.message}`);
    if (err.code === 'ENATIVE_UNAVAILABLE') log('hint: use --engine net (pure JavaScript) or --engine auto');
    code = 1;
  }
  if (code >= 0) process.exitCode = code;
}

void main();
