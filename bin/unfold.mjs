#!/usr/bin/env node
// The `unfold` command: runs the CLI — from src/ in a source checkout, installed from dist/bundle/ (scripts/bundle.mjs) — with
// the TypeScript loader (tsx) and the package's module hooks registered, so model files load as they
// are, as ES modules in any project. A checkout needs tsx for the CLI itself; installed, the CLI is
// plain JavaScript. The rest (tsx installed, our hooks, source maps) is set up only when a model
// file is to be imported: a command on --cell or a checkpoint of one starts without it (time to the
// first step).
import { existsSync } from 'node:fs';
import { register } from 'node:module';

// A checkout has src/; the published package ships dist/ only (see "files" in package.json).
const source = existsSync(new URL('../src/cli/main.ts', import.meta.url));

/** tsx's hooks, registered as `node --import tsx` does, without loading tsx's API into this thread. */
function registerTypeScript() {
  register('tsx/esm', import.meta.url, { data: {} });
}

/** What a model file needs besides: our hooks (after tsx's), and source maps, so its frames name its own lines (a model error's line, each node's origin). */
function prepareModelImport() {
  register('./model-hooks.mjs', import.meta.url, { data: { source } });
  process.setSourceMapsEnabled(true);
}

// Called once by loadModelFile (src/cli/model-args.ts) before it imports a model file. Source maps
// cost every module loaded under them; before that, only a stack trace shown (UNFOLD_DEBUG) wants them.
const PREPARE = Symbol.for('unfold-rnn.prepareModelImport');
if (source) {
  registerTypeScript();
  if (process.env['UNFOLD_DEBUG']) process.setSourceMapsEnabled(true);
  globalThis[PREPARE] = prepareModelImport;
} else {
  globalThis[PREPARE] = () => {
    registerTypeScript();
    prepareModelImport();
  };
}
// A reader that stops early (`unfold show … | head`) is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const { main } = source ? await import('../src/cli/main.ts') : await import('../dist/bundle/cli.js');
process.exitCode = await main(process.argv.slice(2));
