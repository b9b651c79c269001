/**
 * Server options: their types, defaults and validation (one wording helper,
 * {@link invalidOption}). Engines receive the resolved {@link EngineOptions}.
 */
import os from 'node:os';
import { invalidOption } from './errors';
import { PROXY_TRUST_UNIX, parseProxyNetwork } from './proxy';
import type { EngineOptions } from './engines/engine';
import type { Logger } from './logger';
import { DEFAULT_DRAIN_TIMEOUT, DEFAULT_FRAME_TIMEOUT, DEFAULT_MAX_FRAME, framings, type Framing } from './protocol';

/** Which engine runs the sockets. */
export type EngineName = 'auto' | 'native' | 'net' | 'cluster';

/** Options of {@link createServer}. Every one has a default. */
export interface ServerOptions {
  /**
   * `native` (the addon), `net` (node:net, one process), `cluster` (node:cluster
   * workers), or `auto`: native when the addon loads, else net with one warning.
   * The environment variable `EDGEPOLL_ENGINE` overrides it.
   * @default 'auto'
   */
  engine?: EngineName;
  /** Native engine: epoll loop threads. @default 1 (see README: measured on 2 cores) */
  threads?: number;
  /** Cluster engine: worker processes. @default os.availableParallelism() */
  workers?: number;
  /** How bytes are split into messages (PROTOCOL.md section 1). @default 'frame' */
  framing?: Framing;
  /** Largest payload (frame, length) or line (line), in bytes. @default 1048576 */
  maxFrame?: number;
  /** Outbound bytes queued for one connection above which `send()`/`write()` return false. @default 65536 */
  highWaterMark?: number;
  /** Outbound bytes queued for one connection above which it is closed as a slow consumer. @default 8388608 */
  maxBufferedAmount?: number;
  /**
   * frame framing: PING a connection silent for `interval` ms; close it with
   * CLOSE `heartbeat timeout` if it stays silent `timeout` ms more. `false` turns it off.
   * @default { interval: 30000, timeout: 10000 }
   */
  heartbeat?: { interval: number; timeout: number } | false;
  /** Close a connection silent this long (ms); 0 = never. For raw, line and length framings. @default 0 */
  idleTimeout?: number;
  /** Time (ms) a started message has to arrive completely. @default 30000 */
  frameTimeout?: number;
  /** Graceful close: time (ms) connections get to finish after GOAWAY. @default 5000 */
  drainTimeout?: number;
  /** Open connections allowed; over it a connection gets CLOSE `server full`. 0 = no limit. @default 0 */
  maxConnections?: number;
  /**
   * Native engine: bytes one loop may hold, over all its connections, for
   * messages that have not fully arrived. A connection whose message would
   * pass it is closed with code ENOMEM (the others are served). Memory follows
   * the bytes that arrived, not the lengths headers announce.
   * @default an eighth of the machine's memory shared by the loops, at most 1 GiB per loop, at least 2 × (maxFrame + 12)
   */
  maxPartialBytes?: number;
  /** Keep writing after the peer half-closed, until `end()`. @default false */
  allowHalfOpen?: boolean;
  /** Native engine: `reuseport` (a listener per loop) or `exclusive` (one listener, EPOLLEXCLUSIVE). @default 'reuseport' */
  acceptMode?: 'reuseport' | 'exclusive';
  /** Benchmark diagnostic, native only: echo in the loop without calling JS. @default false */
  nativeEcho?: boolean;
  /** Benchmark diagnostic, native only: level-triggered epoll. @default 'edge' */
  triggerMode?: 'edge' | 'level';
  /**
   * Receive the PROXY protocol (v1 text or v2 binary) from a load balancer
   * (HAProxy `send-proxy`/`send-proxy-v2`, nginx `proxy_protocol on`). Every
   * connection must then begin with a complete, valid header from one of the
   * `trusted` sources (IP addresses or CIDRs, e.g. `'10.0.0.0/8'`, `'::1'`;
   * `'unix'` for the peers of a Unix socket listener, which have no address)
   * within `timeout` ms (default 3000, the spec's minimum); otherwise it is
   * aborted (codes EPROXY_HEADER, EPROXY_UNTRUSTED, EPROXY_TIMEOUT; counted in
   * `protocolErrors` and per loop in `proxyErrors`) before any handler sees it.
   * `connection.remoteAddress`/`remotePort` come from the header (the real peer
   * for v2 LOCAL health checks and v1 UNKNOWN). Never enable it on a port
   * clients reach directly.
   * @default false
   */
  proxyProtocol?: { trusted: string[]; timeout?: number } | false;
  /**
   * Receives every message edgepoll writes (README "Logs"): any object with
   * `debug`, `info`, `warn` and `error` (pino, console, …). Server errors with
   * no `'error'` listener go to `logger.error`.
   * @default one line `edgepoll: …` on stderr per message at info and above
   */
  logger?: Logger;
}

/** Resolved server options. */
export interface ResolvedOptions extends EngineOptions {
  engine: EngineName;
  drainTimeout: number;
}

export const DEFAULT_THREADS = 1;

const known = new Set<string>([
  'engine', 'threads', 'workers', 'framing', 'maxFrame', 'highWaterMark', 'maxBufferedAmount', 'maxPartialBytes', 'heartbeat',
  'idleTimeout', 'frameTimeout', 'drainTimeout', 'maxConnections', 'allowHalfOpen', 'acceptMode', 'nativeEcho',
  'triggerMode', 'proxyProtocol', 'logger',
]);

function integer(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidOption(name, `an integer from ${min} to ${max}`, value);
  }
  return value;
}

function oneOf<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidOption(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

const DAY = 86_400_000;

/** The PROXY header timeout when none is given: the spec asks for at least 3 s. */
export const DEFAULT_PROXY_TIMEOUT = 3000;

function proxyProtocol(value: unknown): { trusted: string[]; timeout: number } | false {
  if (value === undefined || value === false) return false;
  const expected = 'false or { trusted: [IP or CIDR, …], timeout?: ms }';
  if (value === null || typeof value !== 'object') throw invalidOption('proxyProtocol', expected, value);
  const { trusted, timeout } = value as { trusted?: unknown; timeout?: unknown };
  const valid =
    Array.isArray(trusted) &&
    trusted.length > 0 &&
    trusted.every((entry) => typeof entry === 'string' && (entry === PROXY_TRUST_UNIX || parseProxyNetwork(entry) !== undefined));
  if (!valid) {
    throw invalidOption('proxyProtocol.trusted', 'a non-empty array of IP addresses or CIDRs (e.g. "127.0.0.1/8", "::1") or "unix"', Array.isArray(trusted) ? trusted.join(',') : trusted);
  }
  return { trusted: [...(trusted as string[])], timeout: integer('proxyProtocol.timeout', timeout, DEFAULT_PROXY_TIMEOUT, 1, DAY) };
}

/** Validates options and fills in defaults; throws EdgepollError EINVALID_OPTION. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw invalidOption(key, `one of the known options (${[...known].join(', ')})`, 'an unknown option');
  }
  const fromEnv = process.env.EDGEPOLL_ENGINE;
  const engine = oneOf('engine', fromEnv || options.engine, 'auto', ['auto', 'native', 'net', 'cluster'] as const);
  const framing = oneOf('framing', options.framing, 'frame', framings);
  const maxFrame = integer('maxFrame', options.maxFrame, DEFAULT_MAX_FRAME, 1, 0x7fffffff);
  const highWaterMark = integer('highWaterMark', options.highWaterMark, 64 * 1024, 1, 0x7fffffff);
  const maxBufferedAmount = integer(
    'maxBufferedAmount',
    options.maxBufferedAmount,
    Math.max(8 * 1024 * 1024, 2 * (maxFrame + 12)),
    highWaterMark,
    0x7fffffff,
  );
  let heartbeatInterval = 0;
  let heartbeatTimeout = 0;
  const heartbeat = options.heartbeat === undefined ? { interval: 30_000, timeout: 10_000 } : options.heartbeat;
  if (heartbeat !== false) {
    if (heartbeat === null || typeof heartbeat !== 'object') {
      throw invalidOption('heartbeat', 'false or { interval, timeout } in ms', heartbeat);
    }
    heartbeatInterval = integer('heartbeat.interval', heartbeat.interval, 30_000, 1, DAY);
    heartbeatTimeout = integer('heartbeat.timeout', heartbeat.timeout, 10_000, 1, DAY);
  }
  if (framing !== 'frame') {
    heartbeatInterval = 0;
    heartbeatTimeout = 0;
  }
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const threads = integer('threads', options.threads, DEFAULT_THREADS, 1, 64);
  const partialDefault = Math.max(2 * (maxFrame + 12), Math.min(2 ** 30, Math.floor(os.totalmem() / 8 / threads)));
  return {
    engine,
    framing,
    maxFrame,
    threads,
    maxPartialBytes: integer('maxPartialBytes', options.maxPartialBytes, partialDefault, 1, Number.MAX_SAFE_INTEGER),
    workers: integer('workers', options.workers, Math.max(1, cores), 1, 256),
    highWaterMark,
    maxBufferedAmount,
    heartbeatInterval,
    heartbeatTimeout,
    idleTimeout: integer('idleTimeout', options.idleTimeout, 0, 0, DAY),
    frameTimeout: integer('frameTimeout', options.frameTimeout, DEFAULT_FRAME_TIMEOUT, 1, DAY),
    drainTimeout: integer('drainTimeout', options.drainTimeout, DEFAULT_DRAIN_TIMEOUT, 0, DAY),
    maxConnections: integer('maxConnections', options.maxConnections, 0, 0, 0x7fffffff),
    allowHalfOpen: flag('allowHalfOpen', options.allowHalfOpen, false),
    acceptMode: oneOf('acceptMode', options.acceptMode, 'reuseport', ['reuseport', 'exclusive'] as const),
    nativeEcho: flag('nativeEcho', options.nativeEcho, false),
    triggerMode: oneOf('triggerMode', options.triggerMode, 'edge', ['edge', 'level'] as const),
    proxyProtocol: proxyProtocol(options.proxyProtocol),
  };
}
