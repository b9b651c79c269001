/**
 * The one coarse timer of a process: a single unref'd `setInterval` that
 * calls every registered {@link Sweeper} with the current time. The pure-JS
 * engines register one sweeper each and check all of their connections'
 * deadlines (heartbeat, idle, frame timeout, forced close) in that sweep, so a
 * connection costs no timer of its own and a read only stores a timestamp.
 *
 * Owns: the interval handle and the list of sweepers. Does not own: what a
 * sweeper does with the time. Runs on the JS thread.
 *
 * Tests can swap the process-wide instance with {@link setSharedTimer}, for
 * example with a manual timer (`automatic: false`) advanced by {@link SweepTimer.tick}.
 */

/** Something that checks its deadlines when the timer fires. */
export interface Sweeper {
  sweep(now: number): void;
}

export interface SweepTimerOptions {
  /** The clock. @default Date.now */
  now?: () => number;
  /** false: no interval is armed; the owner calls {@link SweepTimer.tick}. @default true */
  automatic?: boolean;
}

/** The finest and the coarsest period the timer runs at (ms). */
export const MIN_RESOLUTION = 10;
export const MAX_RESOLUTION = 1000;

/**
 * The sweep period that suits a set of timeouts: a quarter of the shortest
 * (so a deadline fires at most 25% late), between 10 ms and 1 s.
 * Zero timeouts (disabled) are ignored.
 */
export function resolutionFor(timeouts: readonly number[]): number {
  let shortest = Infinity;
  for (const t of timeouts) if (t > 0 && t < shortest) shortest = t;
  if (shortest === Infinity) return MAX_RESOLUTION;
  return Math.min(MAX_RESOLUTION, Math.max(MIN_RESOLUTION, Math.floor(shortest / 4)));
}

/** One interval for many sweepers; runs at the finest resolution any of them asked for. */
export class SweepTimer {
  private readonly sweepers = new Map<Sweeper, number>();
  private readonly clock: () => number;
  private readonly automatic: boolean;
  private handle: NodeJS.Timeout | undefined;
  private period = 0;

  constructor(options: SweepTimerOptions = {}) {
    this.clock = options.now ?? Date.now;
    this.automatic = options.automatic ?? true;
  }

  /** The current time of this timer's clock (ms). */
  now(): number {
    return this.clock();
  }

  /** Registers (or re-registers with a new resolution) a sweeper. */
  add(sweeper: Sweeper, resolution: number): void {
    this.sweepers.set(sweeper, Math.max(MIN_RESOLUTION, resolution));
    this.arm();
  }

  delete(sweeper: Sweeper): void {
    if (this.sweepers.delete(sweeper)) this.arm();
  }

  /** Sweepers registered now. */
  get size(): number {
    return this.sweepers.size;
  }

  /** Runs every sweeper once with the clock's time (what the interval does). */
  tick(): void {
    const now = this.clock();
    for (const sweeper of this.sweepers.keys()) {
      try {
        sweeper.sweep(now);
      } catch (error) {
        // A sweeper's bug must not stop the others' deadlines; surface it later.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  /** (Re)arms the interval at the finest resolution asked for, or stops it when nobody is left. */
  private arm(): void {
    let period = Infinity;
    for (const resolution of this.sweepers.values()) if (resolution < period) period = resolution;
    if (period === Infinity) period = 0;
    if (period === this.period) return;
    if (this.handle) clearInterval(this.handle);
    this.handle = undefined;
    this.period = period;
    if (period > 0 && this.automatic) {
      this.handle = setInterval(() => this.tick(), period);
      // The timer alone never keeps a process alive: sockets and servers do.
      this.handle.unref();
    }
  }
}

let shared: SweepTimer | undefined;

/** The process-wide timer every engine of this process uses. */
export function sharedTimer(): SweepTimer {
  shared ??= new SweepTimer();
  return shared;
}

/**
 * Replaces the process-wide timer (tests). Engines created afterwards use the
 * new one; `undefined` restores a fresh default on next use.
 */
export function setSharedTimer(timer: SweepTimer | undefined): void {
  shared = timer;
}
