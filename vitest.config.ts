// Test settings: CI runs the whole suite on 2 cores, where a test that spawns the CLI or compiles
// a trainer can take several seconds; timeouts are generous, never a measure of speed.
//
// Worker threads, and test files sharing a worker's module graph (isolate: false): each file no
// longer re-imports and re-transforms the compiler's ~100 modules. On test/core this halves the
// CPU time (11.3 s → 6.8 s). It is safe because no test changes process-wide state it does not
// restore (the DSL traces into withContext, CLI output spies are restored, no chdir, no module
// mocks) and every file writes into its own temporary directory.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  // A model file's `import … from 'unfold-rnn'` reaches src/ (as bin/model-hooks.mjs makes it for the
  // CLI from a checkout): one copy of the DSL, and no build before testing.
  resolve: { alias: [{ find: /^unfold-rnn$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) }] },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'threads',
    isolate: false,
    // A worker per core (vitest leaves one core free by default: on CI's 2 cores the files ran one
    // at a time, 171 s against 130 s with both).
    maxWorkers: availableParallelism(),
  },
});
