// Checkpoints you can use (issue 15 item 6): a `train --save` file resumes exactly — its 31st step is the straight run's 31st, at a window start or inside one (--tbptt) — and `grad` and `gradcheck` take it as --params, its optimizer state, data position and carried state set aside.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfoldRun } from './helpers/cli.ts';
import { readParamsOnly, readResume, TRAIN_POSITION, TRAIN_STEPS } from '../src/cli/checkpoint.ts';
import type { Tensor } from '../src/ir/tensor.ts';

let dir: string;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The CLI in this process (test/helpers/cli.ts): no child process, tsx and the compiler already loaded. */
const unfold = (args: readonly string[]): Promise<Run> => unfoldRun(args);

/** The losses a `--log-json` run printed, as their exact JSON text (so equal means bit-identical). */
function losses(r: Run): string[] {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.status, r.stderr).toBe(0);
  return r.stdout.trim().split('\n').map((l) => JSON.stringify((JSON.parse(l) as { loss: number }).loss));
}

const f = (p: string) => path.join(dir, p);
const CELL = ['--cell', 'elman', '--input', '2', '--hidden', '5', '--output', '1'];

/** Deterministic values in (−1, 1). */
function values(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-checkpoint-'));
  // Three windows of B = 2, T = 8 (x: 2 features, y: 1), different from one another.
  const windows = [0, 1, 2].map((w) => ({
    x: { shape: [2, 8, 2], data: values(32, w + 1) },
    y: { shape: [2, 8, 1], data: values(16, w + 11) },
  }));
  fs.writeFileSync(f('windows.json'), JSON.stringify({ windows }));
  fs.writeFileSync(f('data.json'), JSON.stringify({ x: windows[1]!.x, y: windows[1]!.y }));
});

afterAll(() => {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('train --save then --params: exact resume', () => {
  it('the seed task stopped after 31 steps continues exactly as the straight run (carried state, Adam moments, window 31)', async () => {
    const common = ['train', 'graphs/sincos.ts', '--no-plots', '--log-json'];
    const [straight, first] = await Promise.all([
      unfold([...common, '--steps', '60']),
      unfold([...common, '--steps', '31', '--save', f('sincos-31.json')]),
    ]);
    const all = losses(straight);
    expect(losses(first)).toEqual(all.slice(0, 31));
    expect(first.stderr).toContain('continues at window 31');
    const ck = JSON.parse(fs.readFileSync(f('sincos-31.json'), 'utf8')) as Record<string, { data: number[] }>;
    expect(ck[TRAIN_STEPS]!.data).toEqual([31]);
    expect(ck[TRAIN_POSITION]!.data).toEqual([31, 0]);
    expect(ck['optimizer.steps']!.data).toEqual([31]);
    const rest = await unfold([...common, '--steps', '29', '--params', f('sincos-31.json')]);
    // Window 31 is not window 0 (sin over [31π, 32π] is −sin over [0, π]): restarting the data would show.
    expect(losses(rest)).toEqual(all.slice(31));
  });

  it('a run stopped inside a window (--tbptt) continues from that piece with the state its pieces carried', async () => {
    const common = ['train', ...CELL, '--data', f('windows.json'), '--tbptt', '4', '--no-plots', '--log-json', '--lr', '0.05'];
    // 10 pieces of 4 steps: two per window, the windows cycled. Stopping after 5 leaves window 2 half done.
    const [straight, first] = await Promise.all([
      unfold([...common, '--steps', '10']),
      unfold([...common, '--steps', '5', '--save', f('mid.json'), '--save-every', '2']),
    ]);
    const all = losses(straight);
    expect(losses(first)).toEqual(all.slice(0, 5));
    const ck = JSON.parse(fs.readFileSync(f('mid.json'), 'utf8')) as Record<string, { shape: number[]; data: number[] }>;
    expect(ck[TRAIN_POSITION]!.data).toEqual([2, 4]);
    expect(ck['h0']!.shape).toEqual([1, 2, 5]); // no --carry-state, yet the piece's state is kept
    const rest = await unfold([...common, '--steps', '5', '--params', f('mid.json')]);
    expect(losses(rest)).toEqual(all.slice(5));
    expect(rest.stderr).not.toContain('ignored');
    // Saved again, the checkpoint counts every step: 5 before and 5 now.
    const again = await unfold([...common, '--steps', '1', '--params', f('mid.json'), '--save', f('mid2.json')]);
    expect(again.status).toBe(0);
    const ck2 = JSON.parse(fs.readFileSync(f('mid2.json'), 'utf8')) as Record<string, { data: number[] }>;
    expect(ck2[TRAIN_STEPS]!.data).toEqual([6]);
    expect(ck2[TRAIN_POSITION]!.data).toEqual([3, 0]); // windows trained on are counted; the file's 3 repeat
  });

  it('refuses a --tbptt that does not reach the step the checkpoint stopped at (exit 1, one line)', async () => {
    const r = await unfold(['train', ...CELL, '--data', f('windows.json'), '--tbptt', '8', '--steps', '1', '--no-plots', '--params', f('mid.json')]);
    expect(r.stderr).toBe(`unfold train: --params ${f('mid.json')} stopped at step 4 of window 2, which windows of 8 steps in pieces of --tbptt 8 do not start a piece at\n`);
    expect(r.status).toBe(1);
  });
});

describe('a checkpoint as --params for grad and gradcheck', () => {
  it('grad takes it: the same answer as from its parameters alone', async () => {
    const ck = JSON.parse(fs.readFileSync(f('mid.json'), 'utf8')) as Record<string, unknown>;
    const params = Object.fromEntries(Object.entries(ck).filter(([k]) => !k.startsWith('optimizer.') && !k.startsWith('train.') && !k.startsWith('unfold.') && k !== 'h0'));
    expect(Object.keys(params)).toHaveLength(6);
    fs.writeFileSync(f('params-only.json'), JSON.stringify(params));
    const [fromCk, fromParams, check] = await Promise.all([
      unfold(['grad', ...CELL, '--params', f('mid.json'), '--data', f('data.json')]),
      unfold(['grad', ...CELL, '--params', f('params-only.json'), '--data', f('data.json')]),
      unfold(['gradcheck', ...CELL, '--params', f('mid.json'), '--data', f('data.json')]),
    ]);
    expect(fromCk.stderr).toBe('');
    expect(fromCk.status).toBe(0);
    expect(fromCk.stdout).toBe(fromParams.stdout);
    expect((JSON.parse(fromCk.stdout) as { grads: Record<string, unknown> }).grads).toHaveProperty(['rnn.weight_hh_l0']);
    expect(check.stderr).not.toContain('unknown parameter');
    expect(check.status, check.stderr).toBe(0);
  });
});

describe('checkpoint entries', () => {
  const t = (data: number[]): Tensor => ({ shape: [data.length], data: Float64Array.from(data) });

  it('readResume: both entries or none, non-negative integers', () => {
    const problems: string[] = [];
    expect(readResume(new Map(), 'ck.json', problems)).toBeUndefined();
    expect(readResume(new Map([[TRAIN_STEPS, t([7])], [TRAIN_POSITION, t([3, 4])]]), 'ck.json', problems)).toEqual({ steps: 7, window: 3, time: 4 });
    expect(problems).toEqual([]);
    expect(readResume(new Map([[TRAIN_STEPS, t([7])]]), 'ck.json', problems)).toBeUndefined();
    expect(readResume(new Map([[TRAIN_STEPS, t([7])], [TRAIN_POSITION, t([3, -1])]]), 'ck.json', problems)).toBeUndefined();
    expect(readResume(new Map([[TRAIN_STEPS, t([1.5])], [TRAIN_POSITION, t([3, 0])]]), 'ck.json', problems)).toBeUndefined();
    expect(problems).toHaveLength(3);
    expect(problems[0]).toBe('ck.json: "train.steps" (one non-negative integer) and "train.position" (two: window, step within it) go together');
  });

  it('readParamsOnly sets aside the bookkeeping and the carried state, and still names a stray entry', () => {
    const file = path.join(dir, 'ck-unit.json');
    const tj = (data: number[]) => ({ shape: [data.length], data });
    fs.writeFileSync(file, JSON.stringify({ w: tj([1, 2]), h0: tj([0, 0]), 'optimizer.steps': tj([3]), 'optimizer.state': tj([0, 0, 0, 0]), 'train.steps': tj([3]), 'train.position': tj([1, 0]) }));
    expect([...readParamsOnly(file, new Map([['w', [2]]]), ['h0']).keys()]).toEqual(['w']);
    // h0 is not a state of this model: an unknown parameter, as before.
    expect(() => readParamsOnly(file, new Map([['w', [2]]]), [])).toThrow(`${file}: unknown parameter "h0"`);
  });
});
