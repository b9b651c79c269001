/**
 * How long this test process itself went without running its event loop. On
 * a loaded machine a test's own thread can be starved for hundreds of ms:
 * a timing it measures then includes that starvation, which says nothing
 * about the server under test. Subtracting the starvation keeps the bound on
 * the server honest without widening it.
 */
import { onTestFinished } from 'vitest';

export interface LoopLag {
  /** The longest stretch (ms) this loop ran no 10 ms timer since the last take(), beyond the 10 ms. */
  take(): number;
  /** The longest since the watch began. */
  readonly longest: number;
}

export function watchLoopLag(every = 10): LoopLag {
  let last = performance.now();
  let window = 0;
  let longest = 0;
  // Timers run first in a loop iteration, so a stall is recorded before the I/O it delayed is handled.
  const timer = setInterval(() => {
    const now = performance.now();
    const lag = Math.max(0, now - last - every);
    window = Math.max(window, lag);
    longest = Math.max(longest, lag);
    last = now;
  }, every);
  onTestFinished(() => clearInterval(timer));
  return {
    take() {
      const taken = Math.max(window, performance.now() - last - every, 0);
      window = 0;
      return taken;
    },
    get longest() {
      return longest;
    },
  };
}
