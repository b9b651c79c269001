/**
 * Reconnect delays: exponential backoff with a cap and jitter, plus the
 * validation of the client's `reconnect` option. Owns no timers (the client
 * schedules them with its clock). Pure functions; JS thread.
 */
import { integer, knownKeys, number } from '../validate';

/**
 * How the client waits between connection attempts. Attempt `n` (from 1) has the
 * base `min(maxDelay, initialDelay * factor^(n-1))` and waits a uniformly random
 * time in `[base * (1 - jitter), base]`. The default `jitter: 1` is "full
 * jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): the wait
 * lies anywhere in `[0, base]`.
 *
 * Why full jitter by default: 10,000 clients cut off at the same moment spread
 * their first attempts over the whole `initialDelay` (and later ones over the
 * whole growing base) instead of a narrow band, and the delay never exceeds
 * `maxDelay`, so the cap stays a real promise.
 */
export interface ReconnectOptions {
  /** Wait before the first attempt, ms. @default 1000 (valid: 1 to 3600000) */
  initialDelay?: number;
  /** Longest wait, ms. @default 5000 (valid: initialDelay to 3600000) */
  maxDelay?: number;
  /** Growth per attempt. @default 2 (valid: 1 to 100) */
  factor?: number;
  /** Fraction of each wait that is random: 1 = full jitter, 0 = none. @default 1 (valid: 0 to 1) */
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
  jitter: 1,
  maxAttempts: Infinity,
};

const MAX_DELAY = 3_600_000;

const delayRange = { min: 1, max: MAX_DELAY };

/** Validates `reconnect` (an object, `false`, or undefined) and applies defaults; `false` gives undefined. */
export function resolveBackoff(options: ReconnectOptions | false | undefined): Backoff | undefined {
  if (options === false) return undefined;
  if (options === undefined) return { ...DEFAULT_BACKOFF };
  knownKeys('reconnect', options, ['initialDelay', 'maxDelay', 'factor', 'jitter', 'maxAttempts'], 'an object or false');
  const initialDelay = number('reconnect.initialDelay', options.initialDelay, DEFAULT_BACKOFF.initialDelay, delayRange);
  const maxDelay = number('reconnect.maxDelay', options.maxDelay, Math.max(initialDelay, DEFAULT_BACKOFF.maxDelay), {
    min: initialDelay,
    max: MAX_DELAY,
  });
  const factor = number('reconnect.factor', options.factor, DEFAULT_BACKOFF.factor, { min: 1, max: 100 });
  const jitter = number('reconnect.jitter', options.jitter, DEFAULT_BACKOFF.jitter, { min: 0, max: 1 });
  const maxAttempts = options.maxAttempts ?? Infinity;
  if (maxAttempts !== Infinity) integer('reconnect.maxAttempts', maxAttempts, undefined, { min: 1, max: Number.MAX_SAFE_INTEGER });
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
