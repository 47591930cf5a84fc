import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores: crash and integration tests spawn real processes, so keep parallel files modest.
    maxWorkers: 2,
    reporters: ['default', './test/support/summary-reporter.ts'],
    // The script host's worker from its TypeScript source (see the file).
    setupFiles: ['./test/support/vitest-setup.ts'],
  },
});
