// Bad input found on the way (issue 15): a build without a recurrence, negative flag values, an arena no typed array can hold, and `dot --full` over many steps — each one clear line with its exit code, never a stack trace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';
import { numberFlag, parse } from '../src/cli/command.ts';
import { formatBytes, MAX_ARENA_ELEMENTS } from '../src/emit/arena-limit.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Inside the repository, so a graph file's `import … from 'unfold-rnn'` resolves (test/.tmp-*/ is ignored by git).
const DIR = path.join(ROOT, 'test', `.tmp-bad-input-${process.pid}`);

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const unfold = (args: readonly string[]): Promise<Run> => unfoldRun(args);

/** A failed run: the exit code, and one line on stderr (plus main's usage line for a usage error) without a stack trace. */
function expectOneLine(r: Run, status: number, pattern: RegExp): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr.split('\n')[0]).toMatch(pattern);
  expect(r.status).toBe(status);
}

const CELL = ['--cell', 'elman', '--input', '1', '--hidden', '4', '--output', '1'];

beforeAll(() => {
  fs.mkdirSync(DIR, { recursive: true });
  fs.writeFileSync(path.join(DIR, 'forgot.ts'), "import { defineModel, elman } from 'unfold-rnn';\n// build forgot its return\nexport default defineModel({ name: 'forgot', build: (batch) => { elman({ batch, input: 1, hidden: 4, output: 1 }); } } as never);\n");
  fs.writeFileSync(path.join(DIR, 'other.ts'), "import { defineModel } from 'unfold-rnn';\nexport default defineModel({ name: 'other', build: () => ({ h: 1, W: 2 }) } as never);\n");
});

afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

describe('a build that returns no recurrence', () => {
  it('is the user\'s error in every command that builds: exit 1, the model, the batch and what came back', async () => {
    const forgot = path.relative(ROOT, path.join(DIR, 'forgot.ts'));
    const other = path.relative(ROOT, path.join(DIR, 'other.ts'));
    const runs = await Promise.all([
      unfold(['show', forgot]),
      unfold(['compile', forgot, '-o', path.join(DIR, 'out')]),
      unfold(['dot', forgot, '--view', 'folded', '-o', '-']),
      unfold(['gradcheck', other]),
    ]);
    const [show, compile, dot, gradcheck] = runs;
    expectOneLine(show!, 1, /^unfold show: model forgot: build\(1\) returned undefined, not a recurrence; return recurrence\(/);
    expectOneLine(compile!, 1, /^unfold compile: model forgot: build\(1\) returned undefined, not a recurrence/);
    expectOneLine(dot!, 1, /^unfold dot: model forgot: build\(1\) returned undefined, not a recurrence/);
    expectOneLine(gradcheck!, 1, /^unfold gradcheck: model other: build\(\d+\) returned an object with keys h, W, not a recurrence/);
    expect(fs.existsSync(path.join(DIR, 'out'))).toBe(false);
  });
});

describe('negative numbers as flag values', () => {
  it('parse as values (not as unknown options), short flags and --flag=value alike', () => {
    const opts = { shift: { type: 'string' }, out: { type: 'string', short: 'o' }, full: { type: 'boolean' } } as const;
    const { values, positionals } = parse('t', ['--shift', '-1.5', '-o', '-2', 'file', '--full'], opts);
    expect(values.shift).toBe('-1.5');
    expect(values.out).toBe('-2');
    expect(values.full).toBe(true);
    expect(positionals).toEqual(['file']);
    expect(parse('t', ['--shift=-3'], opts).values.shift).toBe('-3');
    expect(parse('t', ['--shift', '-.5'], opts).values.shift).toBe('-.5');
    // Where a negative value is allowed, it is the number.
    expect(numberFlag('t', 'shift', parse('t', ['--shift', '-1e-3'], opts).values.shift)).toBe(-1e-3);
    // After `--` everything is positional, as before; an option-like word is still not a value.
    expect(parse('t', ['--', '--shift', '-1'], opts).positionals).toEqual(['--shift', '-1']);
    expect(() => parse('t', ['--shift', '-x'], opts)).toThrow(/argument is ambiguous|-x/);
  });

  it('are rejected with the flag\'s own rule where a negative value is invalid (exit 2)', async () => {
    const [lr, steps, tau, momentum] = await Promise.all([
      unfold(['train', 'graphs/sincos.ts', '--lr', '-1', '--no-plots']),
      unfold(['train', 'graphs/sincos.ts', '--steps', '-3', '--no-plots']),
      unfold(['compile', ...CELL, '--tau', '-5', '-o', path.join(DIR, 'neg')]),
      unfold(['compile', ...CELL, '--optimizer', 'sgd', '--momentum', '-0.5', '-o', path.join(DIR, 'neg')]),
    ]);
    expectOneLine(lr!, 2, /^unfold train: --lr must be a positive number, got "-1"$/);
    expectOneLine(steps!, 2, /^unfold train: --steps must be an integer ≥ 1, got "-3"$/);
    expectOneLine(tau!, 2, /^unfold compile: --tau must be an integer ≥ 1, got "-5"$/);
    expectOneLine(momentum!, 2, /^unfold compile: --momentum must be in \[0, 1\), got "-0.5"$/);
    expect(fs.existsSync(path.join(DIR, 'neg'))).toBe(false);
  });
});

describe('compile: an arena no typed array can hold', () => {
  it('is refused before anything is written, with its size and the flags that made it (exit 1)', async () => {
    const out = path.join(DIR, 'huge');
    const r = await unfold(['compile', 'graphs/sincos.ts', '--batch', '100000', '--tau', '100000', '-o', out]);
    expectOneLine(r, 1, /^unfold compile: the trainer's arena would hold (\d+) f32 elements \([\d.]+ TB\), more than one typed array can \(4294967296 elements in Node and Chromium\); lower --batch \(100000\) or --tau \(100000\), or give --memory-budget \(BPTT in segments\); nothing was written$/);
    expect(Number(/hold (\d+) f32/.exec(r.stderr)![1])).toBeGreaterThan(MAX_ARENA_ELEMENTS);
    expect(r.stdout).toBe('');
    expect(fs.existsSync(out)).toBe(false);
  });

  it('formats sizes in decimal units', () => {
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(23908)).toBe('23.9 kB');
    expect(formatBytes(1440090818712)).toBe('1.44 TB');
  });
});

describe('dot --full over many steps', () => {
  it('warns on stderr how big the drawing will be, and the drawing is that big', async () => {
    const file = path.join(DIR, 'long.dot');
    const r = await unfold(['dot', 'graphs/sincos.ts', '--view', 'gradient', '--tau', '1000', '--full', '-o', file]);
    expect(r.status).toBe(0);
    const m = /^unfold dot: warning: --full draws all 1000 steps: about ([\d.]+) MB of DOT, (\d+) nodes and (\d+) edges\. Without --full the middle steps are elided\.\n$/.exec(r.stderr);
    expect(m, r.stderr).not.toBeNull();
    const dot = fs.readFileSync(file, 'utf8');
    // Every step adds the same nodes and edges; only the growing step numbers make the bytes drift.
    expect(Number(m![2])).toBe(dot.match(/^\s*"[^"]*" \[/gm)!.length);
    expect(Number(m![3])).toBe(dot.match(/^\s*"[^"]*" -> /gm)!.length);
    expect(Math.abs(Number(m![1]) * 1e6 - dot.length) / dot.length).toBeLessThan(0.1);
  });

  it('says nothing for a small drawing, and refuses one no string can hold (exit 1)', async () => {
    const [small, huge] = await Promise.all([
      unfold(['dot', 'graphs/sincos.ts', '--view', 'unfolded', '--tau', '12', '--full', '-o', '-']),
      unfold(['dot', 'graphs/sincos.ts', '--view', 'gradient', '--tau', '1000000', '--full', '-o', path.join(DIR, 'huge.svg')]),
    ]);
    expect(small.status).toBe(0);
    expect(small.stderr).toBe('');
    expect(small.stdout).toContain('t = 7'); // all 12 steps drawn
    expectOneLine(huge, 1, /^unfold dot: --full draws all 1000000 steps: about [\d.]+ GB of DOT, \d+ nodes and \d+ edges, more than one string can hold \(537 MB\); lower --tau, or leave out --full to elide the middle steps$/);
    expect(fs.existsSync(path.join(DIR, 'huge.svg'))).toBe(false);
  });
});
