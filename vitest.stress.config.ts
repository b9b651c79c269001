import { defineConfig } from 'vitest/config';

// `npm run test:stress`: the heavy RELIABILITY.md entries (T21-T24 at full
// size). One file at a time: they measure CPU, fds and latency of a server on
// a 2-core machine, so two of them side by side would disturb each other.
export default defineConfig({
  test: {
    include: ['test/stress/**/*.test.ts'],
    pool: 'forks',
    poolOptions: { forks: { maxForks: 1, minForks: 1 } },
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
  },
});
