import { describe, expect, it } from 'vitest';
import { DEFAULT_BACKOFF, backoffDelay, baseDelay, resolveBackoff } from '../../src/client/backoff';
import { FakeClock } from '../helpers/fake-clock';

describe('backoff', () => {
  it('grows by factor from initialDelay and stops at maxDelay', () => {
    const backoff = resolveBackoff({ initialDelay: 100, maxDelay: 1000, factor: 2, jitter: 0 })!;
    const delays = [1, 2, 3, 4, 5, 6, 50, 5000].map((attempt) => backoffDelay(attempt, backoff));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000, 1000]);
  });

  it('has socket.io/ioredis-like defaults: 1 s start, cap 5 s, factor 2, full jitter, unlimited attempts', () => {
    expect(resolveBackoff(undefined)).toEqual(DEFAULT_BACKOFF);
    expect(DEFAULT_BACKOFF).toEqual({ initialDelay: 1000, maxDelay: 5000, factor: 2, jitter: 1, maxAttempts: Infinity });
    expect(resolveBackoff(false)).toBeUndefined();
  });

  it('keeps jittered delays within [base * (1 - jitter), base], never above maxDelay', () => {
    const backoff = resolveBackoff({ initialDelay: 1000, maxDelay: 8000, jitter: 0.5 })!;
    for (let attempt = 1; attempt <= 8; attempt++) {
      const base = baseDelay(attempt, backoff);
      expect(backoffDelay(attempt, backoff, () => 0)).toBe(base);
      expect(backoffDelay(attempt, backoff, () => 0.999999)).toBe(Math.round(base * 0.5));
      for (let i = 0; i < 200; i++) {
        const delay = backoffDelay(attempt, backoff);
        expect(delay).toBeGreaterThanOrEqual(Math.floor(base * 0.5));
        expect(delay).toBeLessThanOrEqual(Math.min(base, 8000));
      }
    }
  });

  it('spreads first attempts over the jitter window (a fleet does not stampede)', () => {
    const backoff = resolveBackoff({ initialDelay: 1000, jitter: 0.5 })!;
    const delays = Array.from({ length: 1000 }, () => backoffDelay(1, backoff));
    const spread = Math.max(...delays) - Math.min(...delays);
    expect(spread).toBeGreaterThan(400); // ~500 expected; a spike would be ~0
    const buckets = new Array(5).fill(0);
    for (const delay of delays) buckets[Math.min(4, Math.floor((delay - 500) / 100))]++;
    for (const count of buckets) expect(count).toBeGreaterThan(100); // roughly uniform (200 each)
  });

  it('by default spreads the first retries of 10,000 clients over the whole initialDelay (full jitter)', () => {
    const backoff = resolveBackoff(undefined)!;
    const delays = Array.from({ length: 10_000 }, () => backoffDelay(1, backoff));
    // Subtracted jitter 0.5 put them all in [500, 1000] ms: a 500 ms window.
    expect(Math.max(...delays) - Math.min(...delays)).toBeGreaterThan(950);
    const buckets = new Array(10).fill(0);
    for (const delay of delays) buckets[Math.min(9, Math.floor(delay / 100))]++;
    for (const count of buckets) expect(count).toBeGreaterThan(700); // ~1000 each: uniform over [0, 1000]
    for (let attempt = 1; attempt <= 6; attempt++) {
      for (let i = 0; i < 200; i++) expect(backoffDelay(attempt, backoff)).toBeLessThanOrEqual(baseDelay(attempt, backoff));
    }
  });

  it('rejects unknown keys inside reconnect', () => {
    expect(() => resolveBackoff({ initialDelay: 10, maxDelays: 100 } as never)).toThrow(
      /option `reconnect\.maxDelays` must be one of the known options/,
    );
  });

  it('does not overflow for huge attempt numbers', () => {
    const backoff = resolveBackoff({ initialDelay: 10, maxDelay: 30000, factor: 100, jitter: 0 })!;
    expect(backoffDelay(10_000, backoff)).toBe(30000);
  });

  it('rejects invalid options with the one wording', () => {
    expect(() => resolveBackoff({ initialDelay: 0 })).toThrow('option `reconnect.initialDelay` must be a number from 1 to 3600000, got 0');
    expect(() => resolveBackoff({ initialDelay: 2000, maxDelay: 1000 })).toThrow(/reconnect\.maxDelay/);
    expect(() => resolveBackoff({ jitter: 1.5 })).toThrow(/reconnect\.jitter/);
    expect(() => resolveBackoff({ factor: 0.5 })).toThrow(/reconnect\.factor/);
    expect(() => resolveBackoff({ maxAttempts: 0 })).toThrow(/reconnect\.maxAttempts/);
    expect(() => resolveBackoff({ maxAttempts: 1.5 })).toThrow(/reconnect\.maxAttempts/);
    expect(() => resolveBackoff('yes' as never)).toThrow(/`reconnect` must be an object or false/);
    try {
      resolveBackoff({ jitter: -1 });
    } catch (error) {
      expect((error as { code: string }).code).toBe('EINVALID_OPTION');
    }
    expect.assertions(8);
  });

  it('a larger initialDelay raises the default cap with it', () => {
    expect(resolveBackoff({ initialDelay: 10_000 })!.maxDelay).toBe(10_000);
  });
});

describe('FakeClock', () => {
  it('fires timers in due order, including ones set by callbacks within the advanced span', () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => {
      fired.push(`a@${clock.now()}`);
      clock.setTimeout(() => fired.push(`c@${clock.now()}`), 5);
    }, 10);
    const cancelled = clock.setTimeout(() => fired.push('never'), 15);
    clock.clearTimeout(cancelled);
    clock.advance(14);
    expect(fired).toEqual(['a@10']);
    clock.advance(100);
    expect(fired).toEqual(['a@10', 'c@15', 'b@20']);
    expect(clock.now()).toBe(114);
    expect(clock.pending).toBe(0);
  });
});
