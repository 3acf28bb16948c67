// PlotRecorder: what a run's plots are made of — the task decides the figure (prediction panels,
// trajectory, classification), accuracy is counted exactly over the steps the loss looks at, and
// only the last windows are drawn, each under the parameters of its own step.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PLOTTED_STEPS, PlotRecorder } from '../src/cli/train-plots.ts';
import type { DataSource, TrainWindow } from '../src/cli/train-data.ts';
import { expectValidSvg, lineMarks } from './helpers/svg.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'unfold-plots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function source(input: number, output: number, seqLen: number, batch = 2): DataSource {
  return {
    describe: 'test', batch, batches: [batch], seqLen, input, output, count: 1, fromTask: false, mixedLengths: false, lengths: false,
    window: () => ({ batch, y: new Float64Array(batch * seqLen * output) }),
  };
}

/** Runs `steps` optimizer steps of whole windows through a recorder; `outputs(i)` are step i's outputs. */
async function record(src: DataSource, loss: ConstructorParameters<typeof PlotRecorder>[1], steps: number, win: (i: number) => TrainWindow, outputs: (i: number) => Float64Array, sub: string) {
  const r = new PlotRecorder(src, loss, steps);
  for (let i = 0; i < steps; i++) r.step(i, i, i, 0, src.seqLen, win(i), win(i), () => outputs(i));
  mkdirSync(path.join(dir, sub));
  return r.write(path.join(dir, sub), 'm', Array.from({ length: steps }, (_, i) => 1 / (i + 1)));
}

describe('PlotRecorder', () => {
  it('a prediction task: the last windows, each on its own panel at its own step', async () => {
    const src = source(1, 1, 5);
    const win = (i: number): TrainWindow => ({ batch: 2, x: new Float64Array(10).fill(i), y: new Float64Array(10).fill(-i) });
    const { files } = await record(src, { kind: 'mse' }, 9, win, (i) => new Float64Array(10).fill(i / 2), 'pred');
    expect(files.map((f) => path.basename(f))).toEqual(['loss.svg', 'prediction.svg']);
    const svg = readFileSync(path.join(dir, 'pred', 'prediction.svg'), 'utf8');
    expectValidSvg(svg);
    for (const series of ['input', 'target', 'prediction']) expect(lineMarks(svg, series)).toHaveLength(PLOTTED_STEPS);
    for (let s = 9 - PLOTTED_STEPS + 1; s <= 9; s++) expect(svg).toContain(`>window ${s} · step ${s}<`);
    expect(svg).toContain('>step t in the window<');
  });

  it('an input-free system: its trajectory', async () => {
    const src = source(0, 2, 4, 1);
    const win = (): TrainWindow => ({ batch: 1, y: Float64Array.from({ length: 8 }, (_, j) => Math.sin(j)) });
    const { files } = await record(src, { kind: 'mse' }, 3, win, () => Float64Array.from({ length: 8 }, (_, j) => Math.cos(j)), 'traj');
    expect(files.map((f) => path.basename(f))).toEqual(['loss.svg', 'trajectory.svg']);
    expectValidSvg(readFileSync(path.join(dir, 'traj', 'trajectory.svg'), 'utf8'));
  });

  it('cross-entropy: accuracy of every step over the symbols the loss looks at, and p(true symbol)', async () => {
    // B = 2, T = 2, O = 3; targets: symbols 0, 1 in row 0 and 2, 2 in row 1.
    const src = source(1, 3, 2);
    const y = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1]);
    const win = (): TrainWindow => ({ batch: 2, x: new Float64Array(4), y });
    // Step i gets the first i + 1 of the four (row, step) predictions right.
    const right = [[5, 0, 0], [0, 5, 0], [0, 0, 5], [0, 0, 5]];
    const wrong = [[0, 5, 0], [5, 0, 0], [5, 0, 0], [5, 0, 0]];
    const outputs = (i: number) => Float64Array.from([0, 1, 2, 3].flatMap((n) => (n <= i ? right[n]! : wrong[n]!)));
    const svg = async (loss: ConstructorParameters<typeof PlotRecorder>[1], sub: string) => {
      const { files } = await record(src, loss, 4, win, outputs, sub);
      expect(files.map((f) => path.basename(f))).toEqual(['loss.svg', 'classification.svg']);
      const text = readFileSync(path.join(dir, sub, 'classification.svg'), 'utf8');
      expectValidSvg(text);
      return text;
    };
    // The accuracy line's points, one per step (its own label repeats the first).
    const accuracies = (text: string) => [...text.matchAll(/aria-label="training step: (\d+); accuracy: ([\d.]+)" role="graphics-symbol" aria-roledescription="point"/g)].map((m) => [Number(m[1]), Number(m[2])]);
    // Every step counts: 1/4, 2/4, 3/4, 4/4 (the line's points carry the values).
    const all = await svg({ kind: 'xent' }, 'xent');
    expect(accuracies(all)).toEqual([[1, 0.25], [2, 0.5], [3, 0.75], [4, 1]]);
    expect(all).toContain('>p(true symbol)<');
    // Only the last step counts: rows 0 and 1 at t = 2 are predictions 1 and 3 → 0, 1/2, 1/2, 1.
    const last = await svg({ kind: 'xent', over: 'last' }, 'xent-last');
    expect(accuracies(last)).toEqual([[1, 0], [2, 0.5], [3, 0.5], [4, 1]]);
  });

  it('per-row lengths: the steps past a row’s length are neither scored nor drawn', async () => {
    const src = { ...source(1, 3, 2), lengths: true };
    const y = Float64Array.from([1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1]);
    // Row 0 is one step long: its second step (predicted wrong here) is padding.
    const win = (): TrainWindow => ({ batch: 2, x: new Float64Array(4), y, lengths: [1, 2] });
    const outputs = () => Float64Array.from([5, 0, 0, 5, 0, 0, 0, 0, 5, 0, 0, 5]);
    const { files } = await record(src, { kind: 'xent' }, 1, win, outputs, 'lengths');
    const text = readFileSync(files[1]!, 'utf8');
    expect(text).toMatch(/aria-label="training step: 1; accuracy: 1" role="graphics-symbol" aria-roledescription="point"/);
    // p(true symbol) of row 0: one point, at t = 1.
    expect([...text.matchAll(/aria-label="step t in the window: (\d+); p\(true symbol\): [^"]*" role="graphics-symbol" aria-roledescription="point"/g)].map((m) => m[1])).toEqual(['1']);
  });
});
