// Test settings: CI runs the whole suite on 2 cores, where a test that spawns the CLI or compiles
// a trainer can take several seconds; timeouts are generous, never a measure of speed.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
