// Commands that train or run a model load no TypeScript compiler (the trainer is printed by
// source-text.ts and its types stripped by esbuild): each runs in a child process whose CommonJS
// modules are listed at exit, on every thread (ts-morph and typescript are CommonJS). compile, which
// writes trainer.d.ts with the compiler on a worker thread, is the check that the listing sees it.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DIR = path.join(ROOT, 'test', `.tmp-no-compiler-${process.pid}`);
mkdirSync(DIR, { recursive: true });
afterAll(() => rmSync(DIR, { recursive: true, force: true }));

let n = 0;
/** Runs the CLI in a child process; resolves with its exit code and the compiler modules it loaded, on any thread. */
function loaded(args: readonly string[]): Promise<{ code: number | null; stderr: string; compiler: string[] }> {
  const list = path.join(DIR, `loaded-${n++}.json`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', './test/helpers/loaded-modules.cjs', 'bin/unfold.mjs', ...args], {
      cwd: ROOT,
      env: { ...process.env, UNFOLD_LOADED_MODULES: list },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      const lists = [list, ...readdirSync(DIR).filter((f) => f.startsWith(`${path.basename(list)}.thread-`)).map((f) => path.join(DIR, f))];
      const files = lists.flatMap((l) => JSON.parse(readFileSync(l, 'utf8')) as string[]);
      resolve({ code, stderr, compiler: files.filter((f) => /[\\/](ts-morph|@ts-morph|typescript)[\\/]/.test(f)) });
    });
  });
}

describe('no TypeScript compiler outside compile', () => {
  const text = path.join(DIR, 'period.txt');
  writeFileSync(text, 'abcde'.repeat(40));
  const ck = path.join(DIR, 'text.json');
  const t = (shape: number[], data: number[]) => ({ shape, data });
  const params = path.join(DIR, 'dyn-params.json'), data = path.join(DIR, 'dyn-data.json');
  writeFileSync(params, JSON.stringify({ A: t([2, 2], [0.9, -0.25, 0.3, 0.85]), b: t([2], [0.05, -0.1]) }));
  writeFileSync(data, JSON.stringify({ y: t([1, 2, 2], [0.5, 0.1, 0.3, 0.2]), s0: t([1, 2], [0.7, -0.2]) }));

  it('compile loads it (for trainer.d.ts, on its worker thread): the listing sees the compiler', async () => {
    const r = await loaded(['compile', 'graphs/sincos.ts', '-o', path.join(DIR, 'compiled')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.compiler.length).toBeGreaterThan(0);
  });

  it.each([
    ['start', ['start', '--steps', '2', '--out', path.join(DIR, 'start')]],
    ['train', ['train', '--cell', 'elman', '--hidden', '8', '--text', text, '--seq-len', '5', '--batch', '2', '--steps', '2', '--save', ck, '--no-plots']],
    ['run', ['run', 'graphs/dynamical-system.ts', '--tau', '3', '--json']],
    ['grad', ['grad', 'graphs/dynamical-system.ts', '--params', params, '--data', data, '--engine', 'compiled']],
    ['gradcheck', ['gradcheck', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--batch', '2', '--tau', '3']],
  ])('%s loads none', async (_name, args) => {
    const r = await loaded(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.compiler).toEqual([]);
  });

  it('generate loads none', async () => {
    const r = await loaded(['generate', '--cell', 'elman', '--hidden', '8', '--params', ck, '--steps', '5']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.compiler).toEqual([]);
  });
});
