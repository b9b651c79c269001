/** Shared scaffolding of the client suites: clients cleaned up per test, events and outcomes as values. */
import { onTestFinished } from 'vitest';
import { connect, connectWithHooks, type Client, type ClientHooks } from '../../../src/client';
import type { ClientOptions } from '../../../src/client-options';

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
