// The CLI entry: dispatches to the commands, prints errors as one clear line (no stack trace).
import { UnfoldError } from '../ir/errors.ts';
import { UsageError, type Command } from './command.ts';
import { COMMAND_SUMMARIES, type CommandName } from './command-summaries.ts';
import { startDeclarations } from '../emit/declarations.ts';

/**
 * Every command's module, imported when its command runs: a command loads its own modules only, not
 * every other command's (time to the first step); `--help` loads none (command-summaries.ts).
 */
const COMMAND_MODULES: Readonly<Record<CommandName, () => Promise<Command>>> = {
  show: async () => (await import('./show.ts')).show,
  dot: async () => (await import('./dot.ts')).dot,
  compile: async () => (await import('./compile.ts')).compile,
  grad: async () => (await import('./grad.ts')).grad,
  gradcheck: async () => (await import('./gradcheck.ts')).gradcheck,
  train: async () => (await import('./train.ts')).train,
  run: async () => (await import('./run.ts')).run,
  evaluate: async () => (await import('./evaluate.ts')).evaluate,
  generate: async () => (await import('./generate.ts')).generate,
  export: async () => (await import('./export.ts')).exportCommand,
  import: async () => (await import('./import.ts')).importCommand,
  start: async () => (await import('./start.ts')).start,
};

/** Every command, loaded, in the order `--help` lists them. */
export async function commands(): Promise<Command[]> {
  return Promise.all(Object.values(COMMAND_MODULES).map((load) => load()));
}

function help(): string {
  const names = Object.keys(COMMAND_SUMMARIES) as CommandName[];
  const width = Math.max(...names.map((n) => n.length));
  return [
    'unfold — a symbolic graph compiler for recurrent networks',
    '',
    'usage: unfold <command> [options]     (unfold <command> --help for its options)',
    '',
    'commands:',
    ...names.map((n) => `  ${n.padEnd(width)}  ${COMMAND_SUMMARIES[n]}`),
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
  const load = Object.hasOwn(COMMAND_MODULES, name) ? COMMAND_MODULES[name as CommandName] : undefined;
  if (!load) {
    process.stderr.write(`unfold: unknown command "${name}"\n\n${help()}`);
    return 2;
  }
  const wantsHelp = rest.includes('--help') || rest.includes('-h');
  // compile's TypeScript worker (trainer.d.ts) starts now, before compile's modules load: loading
  // the compiler on its own thread then overlaps all of compile's work, not only the emitter's.
  if (name === 'compile' && !wantsHelp) startDeclarations();
  const command = await load();
  if (wantsHelp) {
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
