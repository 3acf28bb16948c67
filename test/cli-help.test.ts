// `unfold --help` lists every command with its summary from command-summaries.ts, loading no
// command's module; each command's own summary (`unfold <command> --help`) is that same line.
import { expect, it } from 'vitest';
import { COMMAND_SUMMARIES, type CommandName } from '../src/cli/command-summaries.ts';
import { commands } from '../src/cli/main.ts';
import { unfold } from './helpers/cli.ts';

it('lists every command, in order, with the summary the command itself gives', async () => {
  const all = await commands();
  expect(all.map((c) => c.name)).toEqual(Object.keys(COMMAND_SUMMARIES));
  for (const c of all) expect(c.summary).toBe(COMMAND_SUMMARIES[c.name as CommandName]);
  const r = await unfold('--help');
  expect(r.code).toBe(0);
  const listed = r.stdout.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.trim().split(/\s{2,}/));
  expect(listed).toEqual(all.map((c) => [c.name, c.summary]));
  const compile = await unfold('compile', '--help');
  expect(compile.stdout).toContain(`\n\n${COMMAND_SUMMARIES.compile}\n`);
  const unknown = await unfold('nope');
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('unfold: unknown command "nope"');
});
