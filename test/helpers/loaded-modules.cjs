// Preloaded (node --require) into a CLI child process by test/no-compiler.test.ts: at exit, writes
// the files of every CommonJS module the process loaded (ts-morph and typescript are CommonJS).
const { writeFileSync } = require('node:fs');
const out = process.env.UNFOLD_LOADED_MODULES;
if (out) process.on('exit', () => writeFileSync(out, JSON.stringify(Object.keys(require.cache))));
