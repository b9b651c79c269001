/**
 * `edgepoll bench`: one load from the native load generator against any
 * loopback server, and {@link runLoad}, the typed, validated way to start
 * one from JS (bench/matrix.mjs and the tests use it). The load runs on the
 * addon's own threads; this module only parses, validates and prints.
 * Report on standard output (a table, or JSON with `--json`), progress on
 * standard error.
 */
import { parseArgs } from 'node:util';
import { tryLoadLoadgen } from '../engines/native/binding';
import { EdgepollError, invalidOption } from '../errors';
import { decimalFlag, integer as integerOption, integerFlag, limits, number as numberOption } from '../validate';

/** What the load does. */
export type LoadMode = 'rr' | 'churn' | 'idle' | 'broadcast';

/** Options of {@link runLoad}. Every one but `port` has a default. */
export interface LoadOptions {
  /** IPv4 loopback address of the server. @default '127.0.0.1' */
  host?: string;
  /** Server port (1-65535). */
  port: number;
  /**
   * `rr`: C connections with D requests (ECHO) in flight each; `churn`: C workers
   * that connect, send one request, read the reply and close; `idle`: C
   * connections, each sent a PING every `interval` ms; `broadcast`: C connections
   * receive the BROADCASTs that `senders` of them send.
   * @default 'rr'
   */
  mode?: LoadMode;
  /** `frame` (replies checked by seq and payload) or `raw` (byte echo; rr only). @default 'frame' */
  framing?: 'frame' | 'raw';
  /** Connections (churn: concurrent workers). @default 100 */
  connections?: number;
  /** Requests in flight per connection; 1 is strict ping-pong (1-4096). @default 1 */
  depth?: number;
  /** Payload bytes per request (idle: PING payload, capped at 64). @default 64 */
  payload?: number;
  /** Measured seconds. @default 5 */
  duration?: number;
  /** Seconds of load before measuring starts (after every connection is open). @default 0 */
  warmup?: number;
  /** Seconds to wait for every connection to open before measuring anyway. @default 30 */
  rampTimeout?: number;
  /** idle: ms between two PINGs on one connection. @default 5000 */
  interval?: number;
  /** Load-generator threads (each with its own epoll). @default 1 */
  threads?: number;
  /** Spread connections over 127.0.0.2..(1+N); default 8 for churn, 4 from 5000 connections, else 0. */
  sourceAddresses?: number;
  /** ms between two progress reports; 0 = none. @default 1000 */
  progressInterval?: number;
  /** broadcast: connections that send BROADCASTs. @default 1 */
  senders?: number;
  /** broadcast: BROADCASTs per second, 0 = as fast as the receivers read them. @default 0 */
  rate?: number;
  /** Request type for rr and churn. @default 1 (ECHO) */
  type?: number;
}

/** Latency percentiles in microseconds (HDR-style histogram, ~2 significant digits). */
export interface LoadLatency {
  count: number;
  minUs: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
}

/**
 * The result of one load. Counts cover the measured window only, except
 * `connects`, `connectErrors`, `errors` and `mismatches`, which count everything.
 */
export interface LoadReport {
  mode: LoadMode;
  framing: 'frame' | 'raw';
  target: string;
  connections: number;
  depth: number;
  payload: number;
  threads: number;
  sourceAddresses: number;
  durationSeconds: number;
  rampSeconds: number;
  /** Whole run: ramp, warm-up and the measured window. */
  totalSeconds: number;
  /** Connections open when measuring started. */
  opened: number;
  /** rr: validated replies; churn: completed cycles; idle: PONGs; broadcast: deliveries. */
  messages: number;
  messagesPerSecond: number;
  sent: number;
  bytesReceived: number;
  /** Lost connections, ERROR replies, CLOSE from the server. */
  errors: number;
  /** Replies with a wrong seq, type, length, flags or payload. */
  mismatches: number;
  connects: number;
  connectErrors: number;
  serverCloses: number;
  pings: number;
  missedPongs: number;
  /** broadcast: BROADCAST requests answered. */
  broadcasts: number;
  latency: LoadLatency;
  /** CPU seconds (user + system) the load generator's threads used. */
  loadgenCpuSeconds: number;
  fdLimit: number;
  /** Text of the first error seen, or null. */
  firstError: string | null;
}

/** A progress snapshot, about once per `progressInterval`. */
export interface LoadProgress {
  elapsedSeconds: number;
  phase: 'ramp' | 'warmup' | 'record';
  open: number;
  messages: number;
  errors: number;
  mismatches: number;
  ratePerSecond: number;
}

const modes: readonly LoadMode[] = ['rr', 'churn', 'idle', 'broadcast'];

function checkInteger(name: string, value: number | undefined, min: number, max: number): void {
  integerOption(name, value, undefined, { min, max });
}

function checkNumber(name: string, value: number | undefined, min: number, max: number): void {
  numberOption(name, value, undefined, { min, max });
}

/**
 * Runs one load on the addon's threads. Rejects with an EdgepollError:
 * EINVALID_OPTION for bad options, ENATIVE_UNAVAILABLE when the addon is
 * missing, and the load generator's own failure (nothing could connect, …)
 * with its code when it has one, the original as `cause`. `onProgress` runs on the JS thread (snapshots are dropped, not
 * queued, while the JS thread is busy).
 */
export function runLoad(options: LoadOptions, onProgress?: (progress: LoadProgress) => void): Promise<LoadReport> {
  try {
    if (options.mode !== undefined && !modes.includes(options.mode)) throw invalidOption('mode', modes.join(', '), options.mode);
    if (options.framing !== undefined && options.framing !== 'frame' && options.framing !== 'raw') {
      throw invalidOption('framing', 'frame or raw', options.framing);
    }
    if (options.framing === 'raw' && (options.mode ?? 'rr') !== 'rr') throw invalidOption('framing', 'frame outside rr mode', 'raw');
    if (options.port === undefined) throw invalidOption('port', `an integer from ${limits.port.min} to ${limits.port.max}`, undefined);
    integerOption('port', options.port, undefined, limits.port);
    checkInteger('connections', options.connections, 1, 1_000_000);
    checkInteger('depth', options.depth, 1, 4096);
    checkInteger('payload', options.payload, options.framing === 'raw' ? 1 : 0, 16 * 1024 * 1024);
    checkNumber('duration', options.duration, 0, 86_400);
    checkNumber('warmup', options.warmup, 0, 3600);
    checkNumber('rampTimeout', options.rampTimeout, 0, 3600);
    checkInteger('interval', options.interval, 1, 3_600_000);
    checkInteger('threads', options.threads, 1, 64);
    checkInteger('sourceAddresses', options.sourceAddresses, 0, 250);
    checkInteger('progressInterval', options.progressInterval, 0, 3_600_000);
    checkInteger('senders', options.senders, 1, 1_000_000);
    checkInteger('rate', options.rate, 0, 10_000_000);
    integerOption('type', options.type, undefined, limits.type);
  } catch (error) {
    return Promise.reject(error);
  }
  const { addon, error } = tryLoadLoadgen();
  if (!addon) {
    return Promise.reject(
      new EdgepollError('ENATIVE_UNAVAILABLE', `the load generator cannot load: ${error?.message ?? 'unknown reason'}`, { cause: error }),
    );
  }
  const run = addon.runLoad as unknown as (
    options: LoadOptions,
    onProgress?: (progress: LoadProgress) => void,
  ) => Promise<LoadReport>;
  try {
    return run({ ...options }, onProgress).catch((error: unknown) => {
      throw loadError(error);
    });
  } catch (error) {
    return Promise.reject(loadError(error));
  }
}

/** The load generator's plain Error as an EdgepollError: the errno it names (`could not connect: ECONNREFUSED`) as code. */
function loadError(error: unknown): EdgepollError {
  const message = error instanceof Error ? error.message : String(error);
  const code = /loopback/.test(message) ? 'EINVALID_OPTION' : (/\b(E[A-Z][A-Z0-9_]{2,})\b/.exec(message)?.[1] ?? 'EIO');
  return new EdgepollError(code, message, { cause: error });
}

const help = `usage: edgepoll bench --target HOST:PORT [options]
  --mode rr|churn|idle|broadcast   what the load does (default rr)
  --connections C                  connections, or churn workers (default 100, churn 50)
  --depth D                        requests in flight per connection (default 1 = ping-pong)
  --payload P                      payload bytes (default 64)
  --duration T                     measured seconds (default 10)
  --warmup W                       seconds of load before measuring (default 1)
  --framing frame|raw              frame: replies checked by seq and bytes (default frame)
  --interval I                     idle: ms between PINGs per connection (default 5000)
  --threads N                      load-generator threads (default 1)
  --senders S, --rate R            broadcast: sending connections, BROADCASTs/s (0 = paced)
  --source-addresses N             spread over 127.0.0.2..(1+N)
  --json                           print the report as JSON
  --quiet                          no progress on standard error
Only loopback targets. Exit code 0 when every reply was right and nothing failed.`;

function thousands(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

function microseconds(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} ms` : `${value.toFixed(0)} µs`;
}

/** The human table of one report. */
export function formatReport(report: LoadReport): string {
  const unit: Record<LoadMode, string> = { rr: 'replies', churn: 'connect-request-close cycles', idle: 'PONGs', broadcast: 'deliveries' };
  const l = report.latency;
  const lines = [
    `edgepoll bench ${report.mode} → ${report.target}: ${report.connections} connections × depth ${report.depth}, ` +
      `${report.payload} B, ${report.framing}, ${report.durationSeconds.toFixed(1)} s, ${report.threads} thread(s)`,
    `  ${unit[report.mode].padEnd(28)} ${thousands(report.messages)} (${thousands(report.messagesPerSecond)}/s)`,
    `  latency                      p50 ${microseconds(l.p50Us)}  p90 ${microseconds(l.p90Us)}  p99 ${microseconds(l.p99Us)}  ` +
      `p99.9 ${microseconds(l.p999Us)}  max ${microseconds(l.maxUs)}`,
    `  connections                  opened ${report.opened}, connects ${thousands(report.connects)} (ramp ${report.rampSeconds.toFixed(2)} s)`,
    `  errors                       ${report.errors}, mismatches ${report.mismatches}, connect errors ${report.connectErrors}, ` +
      `server closes ${report.serverCloses}`,
  ];
  if (report.mode === 'idle') lines.push(`  pings                        ${thousands(report.pings)} sent, ${report.missedPongs} unanswered in time`);
  if (report.mode === 'broadcast') lines.push(`  broadcasts                   ${thousands(report.broadcasts)} answered`);
  const share = report.totalSeconds > 0 ? (100 * report.loadgenCpuSeconds) / report.totalSeconds : 0;
  lines.push(`  load generator CPU           ${report.loadgenCpuSeconds.toFixed(2)} s (${share.toFixed(0)} % of one core)`);
  if (report.firstError) lines.push(`  first error                  ${report.firstError}`);
  return lines.join('\n');
}

/** True when the load saw no error, no mismatch, and at least one answer. */
export function loadSucceeded(report: LoadReport): boolean {
  return report.errors === 0 && report.mismatches === 0 && report.connectErrors === 0 && report.messages > 0;
}

/** `edgepoll bench …`: returns the process exit code (0 ok, 1 load failed, 2 usage). */
export async function runBenchCommand(argv: string[]): Promise<number> {
  let options: LoadOptions;
  let json = false;
  let quiet = false;
  try {
    const { values } = parseArgs({
      args: argv,
      options: {
        target: { type: 'string' },
        mode: { type: 'string', default: 'rr' },
        connections: { type: 'string' },
        depth: { type: 'string' },
        payload: { type: 'string' },
        duration: { type: 'string', default: '10' },
        warmup: { type: 'string', default: '1' },
        framing: { type: 'string', default: 'frame' },
        interval: { type: 'string' },
        threads: { type: 'string' },
        senders: { type: 'string' },
        rate: { type: 'string' },
        'source-addresses': { type: 'string' },
        json: { type: 'boolean', default: false },
        quiet: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(`${help}\n`);
      return 0;
    }
    const target = /^(.+):(\d+)$/.exec(values.target ?? '');
    if (!target) throw new EdgepollError('EINVALID_OPTION', `--target must be HOST:PORT, got ${JSON.stringify(values.target ?? '')}`);
    const mode = values.mode as LoadMode;
    json = values.json ?? false;
    quiet = values.quiet ?? false;
    options = {
      host: target[1],
      port: Number(target[2]),
      mode,
      framing: values.framing as 'frame' | 'raw',
      connections: integerFlag('connections', values.connections) ?? (mode === 'churn' ? 50 : 100),
      depth: integerFlag('depth', values.depth),
      payload: integerFlag('payload', values.payload),
      duration: decimalFlag('duration', values.duration),
      warmup: decimalFlag('warmup', values.warmup),
      interval: integerFlag('interval', values.interval),
      threads: integerFlag('threads', values.threads),
      senders: integerFlag('senders', values.senders),
      rate: integerFlag('rate', values.rate),
      sourceAddresses: integerFlag('source-addresses', values['source-addresses']),
      progressInterval: quiet ? 0 : 1000,
    };
  } catch (error) {
    process.stderr.write(`edgepoll bench: ${(error as Error).message}\n${help}\n`);
    return 2;
  }
  try {
    const report = await runLoad(options, (progress) => {
      process.stderr.write(
        `edgepoll bench: ${progress.elapsedSeconds.toFixed(1)} s ${progress.phase}: ${progress.open} open, ` +
          `${thousands(progress.ratePerSecond)}/s, ${progress.errors} errors, ${progress.mismatches} mismatches\n`,
      );
    });
    process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return loadSucceeded(report) ? 0 : 1;
  } catch (error) {
    const code = (error as EdgepollError).code;
    process.stderr.write(`edgepoll bench: ${(error as Error).message}\n`);
    return code === 'EINVALID_OPTION' ? 2 : 1;
  }
}
