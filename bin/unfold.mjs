#!/usr/bin/env node
// The `unfold` command: registers the TypeScript loader (so graphs/*.ts load as they are), then runs the CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
