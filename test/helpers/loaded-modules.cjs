// Preloaded (node --require) into a CLI child process by test/no-compiler.test.ts: at exit, writes
// the files of every CommonJS module the process loaded (ts-morph and typescript are CommonJS) —
// each thread its own list (a preload runs in every worker thread too): the main thread's in
// UNFOLD_LOADED_MODULES, a worker's beside it with `.thread-<id>` appended.
const { writeFileSync } = require('node:fs');
const { isMainThread, threadId } = require('node:worker_threads');
const out = process.env.UNFOLD_LOADED_MODULES;
const file = out && (isMainThread ? out : `${out}.thread-${threadId}`);
if (file) process.on('exit', () => writeFileSync(file, JSON.stringify(Object.keys(require.cache))));
