import { defineConfig } from 'vitest/config';

// Integration and browser tests drive a real Docker engine and Chromium on a
// 2-core machine: two test files at a time, generous per-test limits (these
// are ceilings for hung tests, not timing assertions).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default'],
  },
});
