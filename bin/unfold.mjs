#!/usr/bin/env node
// The `unfold` command: registers the TypeScript loader (so graphs/*.ts load as they are), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
// A reader that stops early (`unfold show … | head`) is not an error.
process.stdout.on('error', (e) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
