// The CLI entry: dispatches to the commands, prints errors as one clear line (no stack trace).
import { UnfoldError } from '../ir/errors.ts';
import { UsageError, type Command } from './command.ts';
import { compile } from './compile.ts';
import { show } from './show.ts';
import { dot } from './dot.ts';
import { grad } from './grad.ts';
import { gradcheck } from './gradcheck.ts';
import { train } from './train.ts';
import { start } from './start.ts';
import { run } from './run.ts';
import { generate } from './generate.ts';
import { exportCommand } from './export.ts';
import { importCommand } from './import.ts';
import { evaluate } from './evaluate.ts';

/** Every command, in the order `--help` lists them. */
export const COMMANDS: readonly Command[] = [show, dot, compile, grad, gradcheck, train, run, evaluate, generate, exportCommand, importCommand, start];

function help(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    'unfold — a symbolic graph compiler for recurrent networks',
    '',
    'usage: unfold <command> [options]     (unfold <command> --help for its options)',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
  ].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(help());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version') {
    process.stdout.write('unfold 0.1.0\n');
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`unfold: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`usage: ${command.usage}\n\n${command.summary}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`unfold ${e.message}\n(usage: ${command.usage})\n`);
      return 2;
    }
    if (e instanceof UnfoldError) {
      process.stderr.write(`unfold ${name}: ${e.message}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`unfold ${name}: internal error: ${err?.message ?? String(e)}\n`);
    if (process.env['UNFOLD_DEBUG']) process.stderr.write(`${err?.stack}\n`);
    else process.stderr.write('(this is a bug in unfold; run with UNFOLD_DEBUG=1 for the stack trace)\n');
    return 70;
  }
}
