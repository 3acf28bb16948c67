// `unfold dot` as a user runs it: DOT to stdout, SVG and DOT files written, and every bad input
// (τ < 1, an unknown view, a graph file that does not load, an unwritable path) one clear line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';

vi.setConfig({ testTimeout: 120_000 });

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin/unfold.mjs');

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `unfold dot` in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const cli = (args: readonly string[]): Promise<Run> => unfoldRun(['dot', ...args]);

/** A failed run: non-zero exit, the message on stderr, no stack trace. */
function expectError(r: Run, message: RegExp): void {
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout).toBe('');
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-dot-'));
  fs.writeFileSync(path.join(dir, 'broken.ts'), "import { defineModel } from 'unfold-rnn';\nexport default defineModel({ name: 'broken', build: (B) => {\n");
  fs.writeFileSync(path.join(dir, 'throws.ts'), "throw new Error('no model here');\n");
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// Each test spawns its own process and uses its own files: they run side by side.
describe.concurrent('unfold dot', () => {
  it('writes DOT to stdout with -o -', async () => {
    const r = await cli(['graphs/dynamical-system.ts', '--view', 'unfolded', '--tau', '2', '-o', '-']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^digraph "dynamical-system unfolded" \{/);
    expect((r.stdout.match(/subgraph "cluster_t\d+"/g) ?? []).length).toBe(2);
  });

  it('writes SVG (rendered) and DOT files; a built-in cell works too', async () => {
    const svg = path.join(dir, 'sincos.svg'), dotFile = path.join(dir, 'lstm.dot');
    const a = await cli(['graphs/sincos.ts', '--view', 'gradient', '--tau', '3', '--level', 'cell', '-o', svg]);
    expect(a.status, a.stderr).toBe(0);
    const text = fs.readFileSync(svg, 'utf8');
    expect(text).toMatch(/^<\?xml/);
    expect(text).toContain('</svg>');
    const b = await cli(['--cell', 'lstm', '--input', '2', '--hidden', '3', '--output', '1', '--view', 'folded', '-o', dotFile]);
    expect(b.status, b.stderr).toBe(0);
    expect(fs.readFileSync(dotFile, 'utf8')).toMatch(/^digraph "lstm folded"/);
    // Nothing else is left in the directory (no temp files).
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('shows its usage with the defaults', async () => {
    const child = spawn(process.execPath, [BIN, 'dot', '--help'], { cwd: ROOT });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await new Promise((resolve) => child.on('close', resolve));
    expect(out).toContain('--view folded|unfolded|gradient [--tau N] [--level cell|ops] [--full] -o FILE.dot|FILE.svg');
    expect(out).toMatch(/default/);
  });

  it('draws a program (--layers, --bidirectional; a stack written in the DSL) as its graph of scans, every view and flag', async () => {
    const lstm = ['--cell', 'lstm', '--input', '8', '--hidden', '16', '--output', '4', '--layers', '2', '--bidirectional'];
    const rowsOf = (dot: string) => (dot.match(/subgraph "cluster_row\d+" \{/g) ?? []).length;
    const stepsOf = (dot: string) => (dot.match(/subgraph "cluster_row\d+_t\d+" \{/g) ?? []).length;
    const folded = await cli([...lstm, '--view', 'folded', '-o', '-']);
    expect(folded.stderr).toBe('');
    expect(folded.stdout).toMatch(/^digraph "lstm folded" \{/);
    expect((folded.stdout.match(/subgraph "cluster_scan\d+" \{/g) ?? []).length).toBe(4);
    const unfolded = await cli([...lstm, '--view', 'unfolded', '--tau', '4', '-o', '-']);
    expect([rowsOf(unfolded.stdout), stepsOf(unfolded.stdout)]).toEqual([4, 16]);
    // Each scan's backward chain: one ∂L/∂h, ∂L/∂c node per scan and step.
    const gradient = await cli([...lstm, '--view', 'gradient', '--tau', '4', '-o', '-']);
    expect((gradient.stdout.match(/^\s*"B\d+_t\d+" \[/gm) ?? []).length).toBe(16);
    // τ > 8: each row elided to its first and last 3 steps, unless --full.
    const long = await cli([...lstm, '--view', 'unfolded', '--tau', '12', '-o', '-']);
    expect([rowsOf(long.stdout), stepsOf(long.stdout)]).toEqual([4, 24]);
    const full = await cli([...lstm, '--view', 'unfolded', '--tau', '12', '--full', '-o', '-']);
    expect(stepsOf(full.stdout)).toBe(48);
    const ops = await cli([...lstm, '--view', 'unfolded', '--tau', '2', '--level', 'ops', '-o', '-']);
    expect(ops.stdout).toMatch(/unfolded, τ = 2 · ops level/);
    // The gradient view at --level ops: each scan's vjp a backward row of τ steps.
    const gradOps = await cli([...lstm, '--view', 'gradient', '--level', 'ops', '--tau', '2', '-o', '-']);
    expect(gradOps.status, gradOps.stderr).toBe(0);
    expect(gradOps.stdout).toMatch(/gradient, τ = 2 · ops level/);
    expect((gradOps.stdout.match(/subgraph "cluster_back\d+_t\d+" \{/g) ?? []).length).toBe(8);
    const gradSvg = path.join(dir, 'adding-bidir-gradient-ops.svg');
    const bidirOps = await cli(['graphs/adding-bidir.ts', '--view', 'gradient', '--level', 'ops', '--tau', '3', '-o', gradSvg]);
    expect(bidirOps.status, bidirOps.stderr).toBe(0);
    expect(fs.readFileSync(gradSvg, 'utf8')).toContain('</svg>');
    const svg = path.join(dir, 'adding-bidir.svg');
    const dsl = await cli(['graphs/adding-bidir.ts', '--view', 'unfolded', '-o', svg]);
    expect(dsl.status, dsl.stderr).toBe(0);
    expect(fs.readFileSync(svg, 'utf8')).toContain('a program of 4 scans (2 layers, bidirectional)');
  });

  const bad: [string, string[], RegExp][] = [
    ['τ < 1', ['graphs/sincos.ts', '--view', 'unfolded', '--tau', '0', '-o', '-'], /--tau must be an integer ≥ 1, got "0"/],
    ['a τ that is no integer', ['graphs/sincos.ts', '--view', 'unfolded', '--tau', '2.5', '-o', '-'], /--tau must be an integer/],
    ['an unknown view', ['graphs/sincos.ts', '--view', 'sideways', '-o', '-'], /--view must be one of folded, unfolded, gradient, got "sideways"/],
    ['no view', ['graphs/sincos.ts', '-o', '-'], /--view is required/],
    ['an unknown level', ['graphs/sincos.ts', '--view', 'folded', '--level', 'atoms', '-o', '-'], /--level must be one of cell, ops/],
    ['no output', ['graphs/sincos.ts', '--view', 'folded'], /-o FILE\.dot, -o FILE\.svg or -o - \(stdout\) is required/],
    ['an output of another kind', ['graphs/sincos.ts', '--view', 'folded', '-o', 'x.png'], /must end in \.dot, \.gv or \.svg/],
    ['--tau with the folded view', ['graphs/sincos.ts', '--view', 'folded', '--tau', '3', '-o', '-'], /--tau applies to the unfolded and gradient views/],
    ['a missing graph file', ['graphs/nope.ts', '--view', 'folded', '-o', '-'], /cannot load graph file graphs\/nope\.ts: no such file/],
    ['an unknown flag', ['graphs/sincos.ts', '--view', 'folded', '--colour', 'red', '-o', '-'], /Unknown option '--colour'/],
  ];
  for (const [what, args, message] of bad) {
    it(`rejects ${what}`, async () => expectError(await cli(args), message));
  }

  it('names a graph file that does not load, with the loader’s reason', async () => {
    const broken = path.join(dir, 'broken.ts');
    expectError(await cli([broken, '--view', 'folded', '-o', '-']), new RegExp(`cannot load graph file ${broken.replace(/[.\\/]/g, '\\$&')}.*: `));
    const throws = path.join(dir, 'throws.ts');
    expectError(await cli([throws, '--view', 'folded', '-o', '-']), /cannot load graph file .*throws\.ts:1: no model here/);
  });

  it('reports an unwritable output path and leaves nothing behind', async () => {
    // A missing directory is made (-o out/x.svg); one that cannot be, under a file, is named.
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, '');
    expectError(
      await cli(['graphs/dynamical-system.ts', '--view', 'folded', '-o', path.join(file, 'sub', 'x.svg')]),
      /-o .*a-file\/sub\/x\.svg: cannot create the directory .*a-file\/sub: /,
    );
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o500);
    try {
      const r = await cli(['graphs/dynamical-system.ts', '--view', 'folded', '-o', path.join(ro, 'x.dot')]);
      // Root may write anywhere; everyone else gets the OS reason.
      if (r.status !== 0) expectError(r, /cannot write .*x\.dot: permission denied/);
    } finally {
      fs.chmodSync(ro, 0o700);
    }
    expect(fs.readdirSync(ro).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });
});
