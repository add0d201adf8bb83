import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Removes each test file's temporary folders when it ends; no ONNX Runtime telemetry log files.
    setupFiles: ['test/helpers/cleanup.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Two cores: keep heavy ONNX Runtime tests from fighting each other.
    maxWorkers: 2,
  },
});
