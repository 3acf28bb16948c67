// --check-numerics (train, run, grad; interpreted and compiled, ts and wasm): the first value that is
// not finite stops the run with one line naming the model file's line of the op, the op, the tensor's
// shape and the step t — here log of a negative number at step 3. Off, nothing is emitted.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unfold } from './helpers/cli.ts';
import type { ModelDef } from '../src/dsl/model.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer, emitTrainerInSegments } from '../src/emit/trainer.ts';
import { defineModel } from '../src/dsl/model.ts';
import { input, param, recurrence, state } from '../src/dsl/recurrence.ts';
import { add, constant, log, matmul, tanh, transpose } from '../src/dsl/ops.ts';
import { stack } from '../src/dsl/stack.ts';

const DIR = `test/.tmp-numerics-${process.pid}`;
const f = (p: string) => path.join(DIR, p);
const MODEL = `import { add, defineModel, input, log, matmul, param, recurrence, state, tanh, transpose } from 'unfold-rnn';

export default defineModel({
  name: 'numerics',
  build: (B) => {
    const W = param('W', [2, 2]), U = param('U', [2, 1]), V = param('V', [1, 2]);
    return recurrence({
      state: { h: state('h', [B, 2]) }, input: { x: input('x', [B, 1]) }, params: [W, U, V],
      step: ({ h }, { x }) => ({ h: tanh(add(matmul(h, transpose(W)), matmul(x, transpose(U)))) }),
      output: ({ h }, { x }) => ({ o: log(add(x, matmul(h, transpose(V)))) }),
    });
  },
});
`;
const LINE = `${DIR}/model.ts:10: log [1, 1] gives NaN (element 0) at step 3`;

beforeAll(() => {
  fs.mkdirSync(DIR, { recursive: true });
  fs.writeFileSync(f('model.ts'), MODEL);
  const x = { shape: [1, 4, 1], data: [0.5, 0.6, -5, 0.5] }, y = { shape: [1, 4, 1], data: [0, 0, 0, 0] };
  fs.writeFileSync(f('windows.json'), JSON.stringify({ windows: [{ x, y }] }));
  fs.writeFileSync(f('data.json'), JSON.stringify({ x, y }));
  fs.writeFileSync(f('huge.json'), JSON.stringify({ windows: [{ x: { shape: [1, 4, 1], data: [0.5, 0.6, 1e39, 0.5] }, y }] }));
  fs.writeFileSync(f('params.json'), JSON.stringify({ W: { shape: [2, 2], data: [0.1, 0.2, 0.3, 0.4] }, U: { shape: [2, 1], data: [0.5, -0.5] }, V: { shape: [1, 2], data: [0.3, 0.1] } }));
});
afterAll(() => fs.rmSync(DIR, { recursive: true, force: true }));

type Value = ReturnType<typeof input>;

/** A one-layer stack (a graph of scans) of h(t) = tanh(h·Wᵀ + feed(x)·Uᵀ) with a linear head. */
function stackModel(name: string, feed: (B: number, x: Value) => Value): ModelDef {
  return defineModel({
    name,
    build: (B) => {
      const W = param('W', [2, 2]), U = param('U', [2, 1]), V = param('V', [1, 2]);
      const rec = recurrence({
        state: { h: state('h', [B, 2]) }, input: { x: input('x', [B, 1]) }, params: [W, U],
        step: ({ h }, { x }) => ({ h: tanh(add(matmul(h, transpose(W)), matmul(feed(B, x), transpose(U)))) }),
      });
      return stack({ layers: [rec], head: { params: [V], output: (h) => ({ o: matmul(h, transpose(V)) }) } });
    },
  });
}
const STACK_TRAINING = { loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0.1 }, carryState: false, checkNumerics: true } as const;
const TARGETS = [['f64', 'ts'], ['f32', 'wasm']] as const;

/** One training step of the emitted trainer from the stack's fixed parameters, to expect a throw of. */
async function stepOf(source: string, x: Float64Array, y: Float64Array): Promise<() => number> {
  const trainer = (await importTrainer(source)).createTrainer({ params: { W: [0.1, 0.2, 0.3, 0.4], U: [0.5, -0.5], V: [0.3, 0.1] } }) as unknown as { step(x: Float64Array, y: Float64Array): number };
  return () => trainer.step(x, y);
}

describe('--check-numerics', () => {
  it.each([['f64 (ts)', ['--dtype', 'f64']], ['f32 (wasm)', []]])('train %s: one line at the op\'s line and step, exit 1', async (_n, flags) => {
    const r = await unfold('train', f('model.ts'), '--data', f('windows.json'), '--steps', '2', '--no-plots', '--check-numerics', ...flags);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`unfold train: training diverged at step 1 of 2: ${LINE}. Try a smaller --lr, or --clip-norm.\n`);
  });

  it.each(['interpreter', 'compiled'])('grad --engine %s', async (engine) => {
    const r = await unfold('grad', f('model.ts'), '--params', f('params.json'), '--data', f('data.json'), '--engine', engine, '--check-numerics');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`unfold grad: ${LINE}\n`);
  });

  it('run', async () => {
    const r = await unfold('run', f('model.ts'), '--params', f('params.json'), '--data', f('data.json'), '--json', '--check-numerics');
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`unfold run: ${LINE}\n`);
  });

  it('on wasm, the checks run inside the step: one call into wasm, which fails with the ts target\'s line', async () => {
    const { default: model } = await import(path.resolve(f('model.ts'))) as { default: ModelDef };
    const cfg = { model, source: f('model.ts'), batch: 1, tau: 4, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0.1 }, carryState: false, checkNumerics: true } as const;
    const [ts, wasm] = [emitTrainer({ ...cfg, target: 'ts' }), emitTrainer({ ...cfg, target: 'wasm' })];
    expect(wasm.source).toMatch(/const \[site, position, value, step\] = W\.step\d+\(T\); if \(site\) throw failure\(site, position, value, step\);/);
    const x = Float32Array.of(0.5, 0.6, -5, 0.5), y = new Float32Array(4);
    for (const e of [ts, wasm]) {
      const trainer = (await importTrainer(e.source)).createTrainer({ params: { W: [0.1, 0.2, 0.3, 0.4], U: [0.5, -0.5], V: [0.3, 0.1] } }) as unknown as { step(x: Float32Array, y: Float32Array): number };
      expect(() => trainer.step(x, y)).toThrow(`numerics: ${LINE}`);
    }
  });

  it('in a stack trained in segments (a scan of scans), the check names the step of the whole window, on ts and wasm', async () => {
    // log(x + 10) of x = −15 at step 3, inside the step: segments of 2 steps put it at step 1 of segment 2.
    const model = stackModel('segmented-numerics', (B, x) => log(add(x, constant(10, [B, 1]))));
    const x = Float64Array.of(0.5, 0.6, -15, 0.5), y = new Float64Array(4);
    for (const [dtype, target] of TARGETS) {
      const emitted = emitTrainerInSegments({ model, source: 'segmented.ts', batch: 1, tau: 4, dtype, ...STACK_TRAINING, target }, 2);
      expect(await stepOf(emitted.source, x, y), target).toThrow(/: log \[1, 1\] gives NaN \(element 0\) at step 3$/);
    }
  });

  it('an input projection computed over all steps (--hoist on) names the line of the step\'s product, and the step of the element that failed', async () => {
    // huge.json: x(3) = 1e39, +Infinity in float32: x(3)·Uᵀ overflows, row 2 of the [T·B, 2] product (step 3).
    for (const target of ['ts', 'wasm']) {
      const r = await unfold('train', f('model.ts'), '--data', f('huge.json'), '--steps', '2', '--no-plots', '--check-numerics', '--hoist', 'on', '--dtype', 'f32', '--target', target);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^unfold train: training diverged at step 1 of 2: ${DIR}/model\\.ts:9: matmul \\[4, 2\\] gives -?Infinity \\(element 4\\) at step 3\\.`));
    }
  });

  it('in a graph of scans, an input projection hoisted over the rows of every step (batch-major) names the step of its row, on ts and wasm', async () => {
    // x(t = 3) of row 1 is +Infinity: row 1·T + 2 of the [B·T, 2] product x_all·Uᵀ, elements 12 and 13 — step 3, not 7.
    const model = stackModel('hoisted-numerics', (_B, x) => x);
    const x = Float64Array.of(0.5, 0.6, 0.7, 0.5, 0.5, 0.6, Infinity, 0.5), y = new Float64Array(8);
    for (const [dtype, target] of TARGETS) {
      const emitted = emitTrainer({ model, source: 'hoisted.ts', batch: 2, tau: 4, dtype, ...STACK_TRAINING, hoist: 'on', target });
      expect(await stepOf(emitted.source, x, y), target).toThrow(/: matmul \[8, 2\] gives -?Infinity \(element 1[23]\) at step 3$/);
    }
  });

  it('a --cell model, which has no model file, names the layer (nn.LSTM\'s layer k) whose op failed', () => {
    // (The command itself: in this process the test's own frames would be the first outside the compiler.)
    const r = spawnSync(process.execPath, ['bin/unfold.mjs', 'train', '--cell', 'lstm', '--input', '1', '--hidden', '8', '--output', '1', '--layers', '2', '--data', f('huge.json'), '--steps', '2', '--no-plots', '--check-numerics'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^unfold train: training diverged at step 1 of 2: lstm layer 0: matmul \[\d+, 32\] gives -?Infinity \(element \d+\)/);
  });

  it('off, the same run is stopped by its non-finite loss, without a line to point at', async () => {
    const r = await unfold('train', f('model.ts'), '--data', f('windows.json'), '--steps', '2', '--no-plots', '--dtype', 'f64');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^unfold train: training diverged at step 1 of 2: non-finite loss NaN/);
    expect(r.stderr).not.toContain('model.ts:10');
  });
});
