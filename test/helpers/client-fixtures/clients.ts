/** Shared scaffolding of the client suites: clients cleaned up per test, events and outcomes as values. */
import { expect, onTestFinished } from 'vitest';
import { connect, connectWithHooks, type Client, type ClientHooks } from '../../../src/client/client';
import type { ClientOptions } from '../../../src/client/options';

/**
 * A client destroyed when the current test ends. `hooks` (a FakeClock, a fixed
 * random) are injected through the internal connectWithHooks, never as options.
 */
export function client(options: ClientOptions, hooks?: ClientHooks): Client {
  const created = hooks ? connectWithHooks(options, hooks) : connect(options);
  onTestFinished(() => void created.destroy());
  return created;
}

/** Like events.once, but an 'error' event (reported while reconnecting) does not reject it. */
export function nextEvent<T extends unknown[]>(emitter: Client, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event as 'open', ((...args: T) => resolve(args)) as () => void));
}

/** 'resolved', or the error code a promise rejected with. */
export const codeOf = (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(
    () => 'resolved',
    (error: { code?: string }) => error.code,
  );

/** When the client makes its first reconnect attempt (performance.now()). */
export function firstReconnectAttempt(c: Client): Promise<number> {
  return new Promise<number>((resolve) => {
    const onConnecting = ({ attempt }: { attempt: number }): void => {
      if (attempt !== 1) return;
      c.off('connecting', onConnecting);
      resolve(performance.now());
    };
    c.on('connecting', onConnecting);
  });
}

/**
 * A client's first reconnect after an outage: the delay it chose (its
 * 'reconnecting' event) and when it really tried again (performance.now()).
 * Register before the outage starts.
 */
export function firstReconnect(c: Client): Promise<{ delay: number; attemptAt: number }> {
  const delay = new Promise<number>((resolve) => c.once('reconnecting', ({ delay }: { delay: number }) => resolve(delay)));
  return Promise.all([delay, firstReconnectAttempt(c)]).then(([chosen, attemptAt]) => ({ delay: chosen, attemptAt }));
}

/**
 * What a fleet of clients chose after an outage that began at `outageAt`
 * (performance.now() just before the kill), measured from the values the
 * clients chose, not from when this one process got round to running their
 * timers: 500 closes handled in one burst, or a loaded machine, delay the
 * timers together, which separate client processes would not. Checks that
 * no client tried again before the outage began plus its own chosen delay
 * (a timer's clock is read after epoll reports the close, which is after
 * `outageAt`; 2 ms for the millisecond rounding of the two clocks), and
 * returns the chosen delays counted per `width` ms bucket.
 */
export function chosenDelayBuckets(
  firsts: Array<{ delay: number; attemptAt: number }>,
  outageAt: number,
  width: number,
): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const { delay, attemptAt } of firsts) {
    expect(attemptAt).toBeGreaterThanOrEqual(outageAt + delay - 2);
    const bucket = Math.floor(delay / width);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
  }
  return buckets;
}
