/**
 * Server options: their types, defaults and validation (one wording helper,
 * {@link invalidOption}). Engines receive the resolved {@link EngineOptions}.
 */
import os from 'node:os';
import { invalidOption } from '../errors';
import { flag, heartbeat as heartbeatOption, integer, knownKeys, limits, oneOf, requestTimeout } from '../validate';
import { PROXY_TRUST_UNIX, parseProxyNetwork } from '../proxy/header';
import type { EngineOptions } from '../engines/engine';
import { resolveLogger, warn, type Logger } from './logger';
import type { Bus } from '../bus/bus';
import { generateNodeId, checkNodeId } from '../bus/address';
import { DEFAULT_DRAIN_TIMEOUT, DEFAULT_FRAME_TIMEOUT, DEFAULT_MAX_FRAME, framings, type Framing } from '../protocol/constants';

/** Which engine runs the sockets. */
export type EngineName = 'auto' | 'native' | 'net' | 'cluster';

/** Options of {@link createServer}. Every one has a default. */
export interface ServerOptions {
  /**
   * `native` (the addon), `net` (node:net, one process), `cluster` (node:cluster
   * workers), or `auto`: native when the addon loads, else net with one warning.
   * An explicit engine wins over the environment variable `EDGEPOLL_ENGINE`,
   * which only replaces `auto` (code that names an engine depends on it;
   * the variable picks the default for code that does not). When both are set
   * and differ, one warning says the variable was ignored.
   * @default 'auto'
   */
  engine?: EngineName;
  /**
   * Native engine: epoll loop threads. `0` runs the one loop on the JS thread
   * itself: no hand-off between threads, so less CPU per message, but while a
   * handler blocks nothing is read, no PING is answered and no timeout runs
   * (README "Threads, workers, or both"). @default 1 (see README: measured on 2 cores)
   */
  threads?: number;
  /**
   * `cluster` engine: worker processes. @default os.availableParallelism()
   * `native` engine: given, N worker processes each running the native engine
   * with `threads` loops on one shared listening socket (README "Threads,
   * workers, or both"); absent, the server runs in this process alone.
   */
  workers?: number;
  /** How bytes are split into messages (docs/PROTOCOL.md section 1). @default 'frame' */
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
   * Other framings have no PING: giving a heartbeat object there is an error
   * (use `idleTimeout`). Each value 1 to 86400000.
   * @default { interval: 30000, timeout: 10000 } (frame), false (other framings)
   */
  heartbeat?: { interval: number; timeout: number } | false;
  /** Close a connection silent this long (ms); 0 = never. For raw, line and length framings. @default 0 */
  idleTimeout?: number;
  /** Time (ms) a started message has to arrive completely. @default 30000 */
  frameTimeout?: number;
  /** Graceful close: time (ms) connections get to finish after GOAWAY. @default 5000 */
  shutdownTimeout?: number;
  /**
   * Graceful close (and a workers reload): the GOAWAYs go out spread evenly
   * over this many ms, so that a fleet of clients does not reconnect in one
   * instant; at most half of `shutdownTimeout` is used. frame framing. @default 0
   */
  goawaySpread?: number;
  /** @deprecated The old name of `shutdownTimeout` ("drain" now only means the backpressure event). */
  drainTimeout?: number;
  /** Default timeout (ms) of `connection.request()`; 0 = none. @default 30000 */
  requestTimeout?: number;
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
  /**
   * Topics one connection may subscribe to at once; one more throws
   * ETOO_MANY_TOPICS. @default 1024
   */
  maxTopicsPerConnection?: number;
  /**
   * A bus shared with other servers (`memoryBus()`, `redisBus(…)`,
   * `natsBus(…)`): publishes, broadcasts and `sendTo` then reach their
   * connections too (README "Topics and the bus"). @default none (cluster
   * workers: a bus between the workers through the primary)
   */
  bus?: Bus;
  /**
   * This server's name on the bus, the first part of every
   * `connection.address`: 1 to 64 of `A-Z a-z 0-9 . _ : -`. Cluster
   * workers append `.w<worker id>`. @default generated, unique
   */
  nodeId?: string;
}

/** Resolved server options. */
export interface ResolvedOptions extends EngineOptions {
  engine: EngineName;
  /** Why `engine` is what it is: the option, the `EDGEPOLL_ENGINE` variable, or the default. */
  engineSource: 'option' | 'environment' | 'default';
  shutdownTimeout: number;
  goawaySpread: number;
  /** Native engine: worker processes, 0 when `workers` was not given (one process). */
  nativeWorkers: number;
  /** @deprecated Same as `shutdownTimeout`. */
  drainTimeout: number;
  requestTimeout: number;
  maxTopicsPerConnection: number;
  bus: Bus | undefined;
  nodeId: string;
}

/** @default 1024 topics per connection (a chat user in many rooms; still bounds a hostile client). */
export const DEFAULT_MAX_TOPICS_PER_CONNECTION = 1024;

export const DEFAULT_THREADS = 1;

const known = [
  'engine', 'threads', 'workers', 'framing', 'maxFrame', 'highWaterMark', 'maxBufferedAmount', 'maxPartialBytes', 'heartbeat',
  'idleTimeout', 'frameTimeout', 'shutdownTimeout', 'goawaySpread', 'drainTimeout', 'requestTimeout', 'maxConnections',
  'allowHalfOpen', 'acceptMode', 'nativeEcho', 'triggerMode', 'proxyProtocol', 'maxTopicsPerConnection', 'bus', 'nodeId', 'logger',
];

const engineNames = ['auto', 'native', 'net', 'cluster'] as const;

function bus(value: unknown): Bus | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || typeof (value as { open?: unknown }).open !== 'function') {
    throw invalidOption('bus', 'a bus adapter (memoryBus(), redisBus(…), natsBus(…))', value);
  }
  return value as Bus;
}

/** The PROXY header timeout when none is given: the spec asks for at least 3 s. */
export const DEFAULT_PROXY_TIMEOUT = 3000;

export const DEFAULT_SERVER_HEARTBEAT = { interval: 30_000, timeout: 10_000 };
export const DEFAULT_SERVER_REQUEST_TIMEOUT = 30_000;

function proxyProtocol(value: unknown): { trusted: string[]; timeout: number } | false {
  if (value === undefined || value === false) return false;
  const { trusted, timeout } = knownKeys('proxyProtocol', value, ['trusted', 'timeout'], 'false or { trusted: [IP or CIDR, …], timeout?: ms }');
  const valid =
    Array.isArray(trusted) &&
    trusted.length > 0 &&
    trusted.every((entry) => typeof entry === 'string' && (entry === PROXY_TRUST_UNIX || parseProxyNetwork(entry) !== undefined));
  if (!valid) {
    throw invalidOption('proxyProtocol.trusted', 'a non-empty array of IP addresses or CIDRs (e.g. "127.0.0.1/8", "::1") or "unix"', Array.isArray(trusted) ? trusted.join(',') : trusted);
  }
  return { trusted: [...(trusted as string[])], timeout: integer('proxyProtocol.timeout', timeout, DEFAULT_PROXY_TIMEOUT, limits.ms) };
}

let warnedEngine = false;

/**
 * The engine option against `EDGEPOLL_ENGINE`: an explicit option wins; the
 * variable replaces `auto` or an absent option. A bad variable is reported as
 * the variable, not as the option.
 */
function chooseEngine(option: unknown, logger: Logger | undefined): { engine: EngineName; source: ResolvedOptions['engineSource'] } {
  const explicit = oneOf('engine', option, 'auto', engineNames);
  const fromEnv = process.env.EDGEPOLL_ENGINE;
  let env: EngineName | undefined;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!(engineNames as readonly string[]).includes(fromEnv)) {
      throw invalidOption('EDGEPOLL_ENGINE (environment variable)', `one of ${engineNames.map((a) => `'${a}'`).join(', ')}`, fromEnv);
    }
    env = fromEnv as EngineName;
  }
  if (explicit !== 'auto') {
    if (env !== undefined && env !== 'auto' && env !== explicit && !warnedEngine) {
      warnedEngine = true;
      warn(logger, `EDGEPOLL_ENGINE=${env} is ignored: the engine option asks for '${explicit}' explicitly`, 'EDGEPOLL_ENGINE_IGNORED');
    }
    return { engine: explicit, source: 'option' };
  }
  if (env !== undefined && env !== 'auto') return { engine: env, source: 'environment' };
  return { engine: 'auto', source: option === undefined ? 'default' : 'option' };
}

/** Validates options and fills in defaults; throws EdgepollError EINVALID_OPTION. */
export function resolveOptions(options: ServerOptions = {}): ResolvedOptions {
  knownKeys('options', options, known);
  const logger = options.logger === undefined ? undefined : resolveLogger(options.logger);
  const { engine, source: engineSource } = chooseEngine(options.engine, logger);
  const framing = oneOf('framing', options.framing, 'frame', framings);
  const maxFrame = integer('maxFrame', options.maxFrame, DEFAULT_MAX_FRAME, limits.maxFrame);
  const highWaterMark = integer('highWaterMark', options.highWaterMark, 64 * 1024, limits.bytes);
  const maxBufferedAmount = integer(
    'maxBufferedAmount',
    options.maxBufferedAmount,
    Math.max(8 * 1024 * 1024, 2 * (maxFrame + 12)),
    { min: highWaterMark, max: limits.bytes.max },
  );
  if (framing !== 'frame' && options.heartbeat !== undefined && options.heartbeat !== false) {
    throw invalidOption('heartbeat', `false for the '${framing}' framing (it has no PING; use idleTimeout)`, JSON.stringify(options.heartbeat));
  }
  const heartbeat = framing === 'frame' ? heartbeatOption(options.heartbeat, DEFAULT_SERVER_HEARTBEAT) : false;
  if (options.shutdownTimeout !== undefined && options.drainTimeout !== undefined) {
    throw invalidOption('drainTimeout', 'absent when shutdownTimeout is given (it is its old name)', options.drainTimeout);
  }
  const shutdownTimeout =
    options.shutdownTimeout !== undefined
      ? integer('shutdownTimeout', options.shutdownTimeout, DEFAULT_DRAIN_TIMEOUT, limits.msOrZero)
      : integer('drainTimeout', options.drainTimeout, DEFAULT_DRAIN_TIMEOUT, limits.msOrZero);
  const cores = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const threads = integer('threads', options.threads, DEFAULT_THREADS, { min: 0, max: 64 });
  const partialDefault = Math.max(2 * (maxFrame + 12), Math.min(2 ** 30, Math.floor(os.totalmem() / 8 / Math.max(1, threads))));
  return {
    engine,
    engineSource,
    framing,
    maxFrame,
    threads,
    maxPartialBytes: integer('maxPartialBytes', options.maxPartialBytes, partialDefault, { min: 1, max: Number.MAX_SAFE_INTEGER }),
    workers: integer('workers', options.workers, Math.max(1, cores), { min: 1, max: 256 }),
    nativeWorkers: options.workers === undefined ? 0 : integer('workers', options.workers, 1, { min: 1, max: 256 }),
    highWaterMark,
    maxBufferedAmount,
    heartbeatInterval: heartbeat ? heartbeat.interval : 0,
    heartbeatTimeout: heartbeat ? heartbeat.timeout : 0,
    idleTimeout: integer('idleTimeout', options.idleTimeout, 0, limits.msOrZero),
    frameTimeout: integer('frameTimeout', options.frameTimeout, DEFAULT_FRAME_TIMEOUT, limits.ms),
    shutdownTimeout,
    goawaySpread: integer('goawaySpread', options.goawaySpread, 0, limits.msOrZero),
    drainTimeout: shutdownTimeout,
    requestTimeout: requestTimeout('requestTimeout', options.requestTimeout, DEFAULT_SERVER_REQUEST_TIMEOUT),
    maxConnections: integer('maxConnections', options.maxConnections, 0, { min: 0, max: 0x7fffffff }),
    allowHalfOpen: flag('allowHalfOpen', options.allowHalfOpen, false),
    acceptMode: oneOf('acceptMode', options.acceptMode, 'reuseport', ['reuseport', 'exclusive'] as const),
    nativeEcho: flag('nativeEcho', options.nativeEcho, false),
    triggerMode: oneOf('triggerMode', options.triggerMode, 'edge', ['edge', 'level'] as const),
    proxyProtocol: proxyProtocol(options.proxyProtocol),
    maxTopicsPerConnection: integer(
      'maxTopicsPerConnection',
      options.maxTopicsPerConnection,
      DEFAULT_MAX_TOPICS_PER_CONNECTION,
      { min: 1, max: 0x7fffffff },
    ),
    bus: bus(options.bus),
    nodeId: options.nodeId === undefined ? generateNodeId() : checkNodeId(options.nodeId),
  };
}
