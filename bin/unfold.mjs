#!/usr/bin/env node
// The `unfold` command: registers the TypeScript loader (so model files load as they are, as ES
// modules in any project), then runs the CLI — from src/ in a source checkout, from dist/ installed.
import { existsSync } from 'node:fs';
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

// A checkout has src/; the published package ships dist/ only (see "files" in package.json).
const source = existsSync(new URL('../src/cli/main.ts', import.meta.url));
registerTsx();
register('./model-hooks.mjs', import.meta.url, { data: { source } });
// A reader that stops early (`unfold show … | head`) is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const { main } = source ? await import('../src/cli/main.ts') : await import('../dist/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
