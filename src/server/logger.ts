/**
 * The `logger` option: any object with pino's / console's `debug`, `info`,
 * `warn` and `error` methods receives every message edgepoll writes. The
 * default writes one line per message on standard error (`edgepoll: …`), at
 * level `info` and above (README "Logs").
 * Owns: the logger shape, its validation and the default. Runs on: any JS thread.
 */
import { invalidOption } from '../errors';

/** The pino/console shape. Each method gets one message string (and, for errors, the Error as a second argument to console, or as `err` to pino). */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export const logLevels: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent'];
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

/** The default logger: one line `edgepoll: message` on stderr for each message at `level` or above. */
export function stderrLogger(level: LogLevel = 'info'): Logger {
  const at = (own: LogLevel) => (message: unknown): void => {
    if (rank[own] >= rank[level]) process.stderr.write(`edgepoll: ${String(message)}\n`);
  };
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  ownLoggers.add(logger);
  return logger;
}

/** Loggers made by {@link stderrLogger}: they print the message only (one line). */
const ownLoggers = new WeakSet<Logger>();

const defaultLogger = stderrLogger();

/** Validates the `logger` option (EINVALID_OPTION when a method is missing). */
export function resolveLogger(logger: unknown): Logger {
  if (logger === undefined) return defaultLogger;
  const methods = ['debug', 'info', 'warn', 'error'] as const;
  if (logger === null || typeof logger !== 'object' || methods.some((m) => typeof (logger as Record<string, unknown>)[m] !== 'function')) {
    throw invalidOption('logger', 'an object with debug, info, warn and error methods (pino, console)', logger === null ? 'null' : typeof logger);
  }
  return logger as Logger;
}

/**
 * A warning: to `logger.warn` when the application gave a logger, else a
 * process warning with `code` (Node prints it once on stderr; tools listen
 * for 'warning').
 */
export function warn(logger: Logger | undefined, message: string, code: string): void {
  if (logger) logger.warn(message);
  else process.emitWarning(message, { code });
}

/**
 * Logs an error the pino way when the logger looks like pino (an object first:
 * `{ err }`, then the message), else console's way (message, then the error).
 */
export function logError(logger: Logger, level: 'warn' | 'error', message: string, error?: unknown): void {
  if (error === undefined) logger[level](message);
  else if (isPinoLike(logger)) logger[level]({ err: error }, message);
  else if (ownLoggers.has(logger)) logger[level](message);
  else logger[level](message, error);
}

function isPinoLike(logger: Logger): boolean {
  return typeof (logger as { child?: unknown }).child === 'function' && typeof (logger as { level?: unknown }).level === 'string';
}
