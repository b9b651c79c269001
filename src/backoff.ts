/**
 * Reconnect delays: exponential backoff with a cap and jitter, plus the
 * validation of the client's `reconnect` option. Owns no timers (the client
 * schedules them with its clock). Pure functions; JS thread.
 */
import { invalidOption } from './errors';

/**
 * How the client waits between connection attempts. Attempt `n` (from 1) waits
 * `min(maxDelay, initialDelay * factor^(n-1))`, reduced by a random part of at most
 * `jitter` of it, so the wait lies in `[base * (1 - jitter), base]`.
 *
 * Why subtract rather than add jitter: the delay never exceeds `maxDelay`, so
 * the cap is a real promise, and a fleet of clients cut off at the same moment
 * still spreads its first attempts over `initialDelay * jitter` ms instead of
 * all arriving at the restarted server in the same millisecond.
 */
export interface ReconnectOptions {
  /** Wait before the first attempt, ms. @default 1000 (valid: 1 to 3600000) */
  initialDelay?: number;
  /** Longest wait, ms. @default 5000 (valid: initialDelay to 3600000) */
  maxDelay?: number;
  /** Growth per attempt. @default 2 (valid: 1 to 100) */
  factor?: number;
  /** Fraction of each wait that is random. @default 0.5 (valid: 0 to 1) */
  jitter?: number;
  /**
   * Attempts in a row (since the last successful connection) before the client
   * gives up and closes. @default Infinity (valid: integer >= 1, or Infinity)
   */
  maxAttempts?: number;
}

/** {@link ReconnectOptions} with every default applied. */
export type Backoff = Required<ReconnectOptions>;

export const DEFAULT_BACKOFF: Readonly<Backoff> = {
  initialDelay: 1000,
  maxDelay: 5000,
  factor: 2,
  jitter: 0.5,
  maxAttempts: Infinity,
};

const MAX_DELAY = 3_600_000;

function inRange(name: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || Number.isNaN(value) || value < min || value > max) {
    throw invalidOption(name, `a number from ${min} to ${max}`, value);
  }
  return value;
}

/** Validates `reconnect` (an object, `false`, or undefined) and applies defaults; `false` gives undefined. */
export function resolveBackoff(options: ReconnectOptions | false | undefined): Backoff | undefined {
  if (options === false) return undefined;
  if (options === undefined) return { ...DEFAULT_BACKOFF };
  if (typeof options !== 'object' || options === null) {
    throw invalidOption('reconnect', 'an object or false', options);
  }
  const initialDelay = inRange('reconnect.initialDelay', options.initialDelay, DEFAULT_BACKOFF.initialDelay, 1, MAX_DELAY);
  const maxDelay = inRange(
    'reconnect.maxDelay',
    options.maxDelay,
    Math.max(initialDelay, DEFAULT_BACKOFF.maxDelay),
    initialDelay,
    MAX_DELAY,
  );
  const factor = inRange('reconnect.factor', options.factor, DEFAULT_BACKOFF.factor, 1, 100);
  const jitter = inRange('reconnect.jitter', options.jitter, DEFAULT_BACKOFF.jitter, 0, 1);
  const maxAttempts = options.maxAttempts ?? Infinity;
  if (maxAttempts !== Infinity && (!Number.isInteger(maxAttempts) || maxAttempts < 1)) {
    throw invalidOption('reconnect.maxAttempts', 'an integer >= 1 or Infinity', maxAttempts);
  }
  return { initialDelay, maxDelay, factor, jitter, maxAttempts };
}

/** The un-jittered wait before attempt `attempt` (1-based). */
export function baseDelay(attempt: number, backoff: Backoff): number {
  // factor^(attempt-1) overflows to Infinity for large attempts; min() then caps it.
  return Math.min(backoff.maxDelay, backoff.initialDelay * Math.pow(backoff.factor, Math.max(0, attempt - 1)));
}

/**
 * The wait before attempt `attempt` (1-based), in whole ms.
 * `random` returns a number in [0, 1) (injectable for tests).
 */
export function backoffDelay(attempt: number, backoff: Backoff, random: () => number = Math.random): number {
  const base = baseDelay(attempt, backoff);
  return Math.round(base * (1 - backoff.jitter * random()));
}
