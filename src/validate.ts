/**
 * The one validation module: the range helpers and the shared ranges used by
 * the server options (src/server/options.ts), the client options
 * (src/client/options.ts, src/client/backoff.ts), the CLI (src/cli/main.ts) and the load
 * generator (src/cli/bench.ts). One copy, so a limit cannot drift between the
 * sides of a connection. Every failure is an EdgepollError `EINVALID_OPTION`
 * worded by {@link invalidOption}. Pure; JS thread.
 */
import { EdgepollError, invalidOption } from './errors';

export { invalidOption };

const DAY = 86_400_000;

/**
 * Limits shared by server and client. `maxFrame` is bounded by what both
 * engines can buffer (a signed 32-bit length); timeouts by one day.
 */
export const limits = {
  maxFrame: { min: 1, max: 0x7fffffff },
  bytes: { min: 1, max: 0x7fffffff },
  /** heartbeat.interval, heartbeat.timeout, and every other "ms, never 0" timer. */
  ms: { min: 1, max: DAY },
  /** Timers where 0 means "none" (idleTimeout, requestTimeout, drain/shutdown timeout). */
  msOrZero: { min: 0, max: DAY },
  port: { min: 1, max: 65535 },
  type: { min: 1, max: 0xfeff },
} as const;

export interface Range {
  readonly min: number;
  readonly max: number;
}

/** An integer in `range`, `fallback` when undefined. Rejects NaN, fractions and non-numbers. */
export function integer(name: string, value: unknown, fallback: number, range: Range): number;
export function integer(name: string, value: unknown, fallback: undefined, range: Range): number | undefined;
export function integer(name: string, value: unknown, fallback: number | undefined, range: Range): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < range.min || value > range.max) {
    throw invalidOption(name, `an integer from ${range.min} to ${range.max}`, value);
  }
  return value;
}

/** A finite number in `range`, `fallback` when undefined. */
export function number(name: string, value: unknown, fallback: number, range: Range): number;
export function number(name: string, value: unknown, fallback: undefined, range: Range): number | undefined;
export function number(name: string, value: unknown, fallback: number | undefined, range: Range): number | undefined {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < range.min || value > range.max) {
    throw invalidOption(name, `a number from ${range.min} to ${range.max}`, value);
  }
  return value;
}

/** One of `allowed`, `fallback` when undefined. */
export function oneOf<T extends string>(name: string, value: unknown, fallback: T, allowed: readonly T[]): T {
  if (value === undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw invalidOption(name, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`, value);
  }
  return value as T;
}

export function flag(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw invalidOption(name, 'a boolean', value);
  return value;
}

/**
 * `value` must be a plain object whose keys are all in `known`; `name` is the
 * option's path (`'options'`, `'heartbeat'`, `'reconnect'`), so an unknown
 * nested key is reported as `heartbeat.intervall`.
 */
export function knownKeys(name: string, value: unknown, known: readonly string[], expected = 'an object'): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalidOption(name, expected, value);
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      const path = name === 'options' ? key : `${name}.${key}`;
      throw invalidOption(path, `one of the known options (${known.join(', ')})`, 'an unknown option');
    }
  }
  return value as Record<string, unknown>;
}

/** Heartbeat `{ interval, timeout }` (both required when the object is given) or false. */
export function heartbeat(value: unknown, fallback: { interval: number; timeout: number }): { interval: number; timeout: number } | false {
  if (value === false) return false;
  if (value === undefined) return { ...fallback };
  const given = knownKeys('heartbeat', value, ['interval', 'timeout'], 'false or { interval, timeout } in ms');
  return {
    interval: integer('heartbeat.interval', given.interval, fallback.interval, limits.ms),
    timeout: integer('heartbeat.timeout', given.timeout, fallback.timeout, limits.ms),
  };
}

/** A per-request timeout: an integer of ms, 0 = none. Rejects -1, NaN, Infinity and fractions. */
export function requestTimeout(name: string, value: unknown, fallback: number): number {
  return integer(name, value, fallback, limits.msOrZero);
}

/** A command-line integer flag (`--max-frame 1024`): digits only, then the same range check as the option. */
export function integerFlag(flagName: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) {
    throw new EdgepollError('EINVALID_OPTION', `--${flagName} must be a non-negative integer, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/** A command-line decimal flag (`--duration 2.5`). */
export function decimalFlag(flagName: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+(\.\d+)?$/.test(value)) {
    throw new EdgepollError('EINVALID_OPTION', `--${flagName} must be a non-negative number, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
