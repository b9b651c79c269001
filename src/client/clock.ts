/**
 * An injectable clock: the time source and timers of the client (reconnect
 * delays, heartbeats, request timeouts). Owns no sockets. Production code uses
 * {@link realClock}; tests inject a fake one (test/helpers/fake-clock.ts, through
 * an internal hook of src/client/client.ts) and move time by hand, so timing logic is
 * tested without sleeping and without timing flakiness. Not part of the package API.
 * Runs on the JS thread only.
 */

/** An opaque timer handle, only meaningful to the clock that made it. */
export type TimerHandle = unknown;

/** What the client needs from time. */
export interface Clock {
  /** Milliseconds, monotonic (never goes backwards when the wall clock is set). */
  now(): number;
  /** Runs `callback` once after `delay` ms. */
  setTimeout(callback: () => void, delay: number): TimerHandle;
  /** Cancels a timer; a handle already fired or cleared is ignored. */
  clearTimeout(handle: TimerHandle): void;
}

/** The process clock: `performance.now()` and the global timers. */
export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (callback, delay) => setTimeout(callback, delay),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};
