// Lengths and loss placement as properties: for random cells (the built-in ones and a user-written
// two-state cell), batch sizes, lengths, placements and losses, the rolled trainer, the unrolled
// trainer and the interpreter agree (f64, 1e-12); a user-written masked cell passes gradcheck; a
// trainer compiled for τ runs a shorter window exactly as one compiled for its length.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { checkGradients } from '../src/cli/gradcheck.ts';
import { runWindow } from '../src/cli/grad.ts';
import { randomData, type RunData } from '../src/cli/run-data.ts';
import { add, matmul, mul, sigmoid, sub, tanh, transpose } from '../src/dsl/ops.ts';
import { initialParams } from '../src/dsl/init.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { input, param, recurrence, state } from '../src/dsl/recurrence.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { importTrainer } from '../src/emit/load.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import type { LossSpec } from '../src/transforms/loss.ts';
import { relErr } from './helpers/numeric.ts';

const [I, H, O] = [2, 3, 2];

/** A user-written cell with two states: h(t) = tanh(h W + x U + b), m(t) = σ(h(t) V) ⊙ m + (1 − σ(h(t) V)) ⊙ h(t). */
const twoState = defineModel({
  name: 'two-state',
  build: (B) => {
    const W = param('W', [H, H]), U = param('U', [I, H]), b = param('b', [H]), V = param('V', [H, H]), P = param('P', [O, H]);
    return recurrence({
      state: { h: state('h', [B, H]), m: state('m', [B, H]) }, input: { x: input('x', [B, I]) }, params: { W, U, b, V, P },
      step: ({ h, m }, { x }) => {
        const h2 = tanh(add(add(matmul(h, W), matmul(x, U)), b));
        const g = sigmoid(matmul(h2, V));
        return { h: h2, m: add(mul(g, m), mul(sub(1, g), h2)) };
      },
      output: ({ h, m }) => ({ o: matmul(mul(h, m), transpose(P)) }),
    });
  },
});

const builtIn = (kind: CellKind): ModelDef => defineModel({ name: kind, build: (B) => cell(kind, { batch: B, input: I, hidden: H, output: O }) });
const MODELS: Record<string, ModelDef> = { elman: builtIn('elman'), lstm: builtIn('lstm'), gru: builtIn('gru'), 'two-state': twoState };

/** Random data with per-row lengths (the target a probability row for xent). */
function dataWith(model: ModelDef, loss: LossSpec, B: number, T: number, lengths: number[], seed: number): { data: RunData; params: Map<string, Tensor> } {
  const rec = model.build(B);
  const base = randomData(rec, loss, { batch: B, tau: T }, seed);
  const sequences = new Map(base.sequences);
  if (loss.kind === 'xent') {
    const y = sequences.get('y')!;
    const data = y.data.map((v) => Math.exp(2 * v));
    for (let r = 0; r < data.length; r += O) {
      const z = data.slice(r, r + O).reduce((a, v) => a + v, 0);
      for (let k = 0; k < O; k++) data[r + k]! /= z;
    }
    sequences.set('y', { shape: y.shape, data });
  }
  return { data: { ...base, sequences, lengths }, params: initialParams(rec, seed) };
}

describe('lengths and loss placement: rolled = unrolled = interpreter (fast-check, f64)', () => {
  it('for random cells, batches, lengths, placements and losses', async () => {
    const arb = fc.record({
      model: fc.constantFrom(...Object.keys(MODELS)),
      B: fc.integer({ min: 1, max: 3 }),
      T: fc.integer({ min: 1, max: 6 }),
      over: fc.constantFrom('all', 'last') as fc.Arbitrary<'all' | 'last'>,
      kind: fc.constantFrom('mse', 'sse', 'xent') as fc.Arbitrary<LossSpec['kind']>,
      seed: fc.integer({ min: 1, max: 1 << 20 }),
    }).chain((c) => fc.record({ c: fc.constant(c), lengths: fc.array(fc.integer({ min: 1, max: c.T }), { minLength: c.B, maxLength: c.B }) }));
    await fc.assert(
      fc.asyncProperty(arb, async ({ c, lengths }) => {
        const model = MODELS[c.model]!;
        const loss: LossSpec = { kind: c.kind, over: c.over };
        const { data, params } = dataWith(model, loss, c.B, c.T, lengths, c.seed);
        const rec = model.build(c.B);
        const ref = await runWindow(model, 'prop', rec, data, loss, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
        for (const form of ['rolled', 'unrolled'] as const) {
          const r = await runWindow(model, 'prop', rec, data, loss, params, { engine: 'compiled', dtype: 'f64', form });
          expect(Math.abs(r.loss - ref.loss) / Math.abs(ref.loss), `${form} loss`).toBeLessThanOrEqual(1e-12);
          expect(relErr(r.outputs.data, ref.outputs.data), `${form} outputs`).toBeLessThanOrEqual(1e-12);
          expect(relErr(r.hiddenOutputs.data, ref.hiddenOutputs.data), `${form} hidden outputs`).toBeLessThanOrEqual(1e-12);
          for (const [k, v] of ref.finalState) expect(relErr(r.finalState.get(k)!.data, v.data), `${form} final ${k}`).toBeLessThanOrEqual(1e-12);
          for (const [k, v] of ref.grads) expect(relErr(r.grads.get(k)!.data, v.data), `${form} grad ${k}`).toBeLessThanOrEqual(1e-12);
        }
        // A row's final state is its state at its own last step: the same run on that row's valid prefix alone.
        const b = c.B - 1, n = lengths[b]!;
        const one = dataWith(model, loss, 1, n, [n], c.seed);
        const K = (t: Tensor) => t.data.length / (c.B * c.T);
        const prefix = (t: Tensor): Tensor => ({ shape: [1, n, ...t.shape.slice(2)], data: t.data.slice(b * c.T * K(t), (b * c.T + n) * K(t)) });
        const solo: RunData = {
          ...one.data,
          sequences: new Map([...data.sequences].map(([k, t]) => [k, prefix(t)])),
          initial: new Map([...data.initial].map(([k, t]) => [k, { shape: [1, ...t.shape.slice(1)], data: t.data.slice(b * (t.data.length / c.B), (b + 1) * (t.data.length / c.B)) }])),
        };
        const s = await runWindow(model, 'prop', model.build(1), solo, { kind: c.kind }, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
        for (const [k, v] of s.finalState) {
          const whole = ref.finalState.get(k)!.data, per = v.data.length;
          expect(relErr(whole.slice(b * per, (b + 1) * per), v.data), `row ${b} final ${k}`).toBeLessThanOrEqual(1e-12);
        }
      }),
      { numRuns: 10, seed: 20261130 },
    );
  });

  it('a user-written masked cell passes gradcheck (every parameter, input and initial state)', () => {
    for (const over of ['all', 'last'] as const) {
      const loss: LossSpec = { kind: 'mse', over };
      const { data, params } = dataWith(twoState, loss, 3, 5, [5, 1, 3], 7);
      const report = checkGradients(twoState.build(3), data, params, loss, { eps: 1e-6, tol: 1e-6, atol: 1e-8, seed: 1, entries: 20, floor: 1e-12 });
      expect(report.rows.filter((r) => !r.ok).map((r) => r.name), over).toEqual([]);
      expect(report.rows.find((r) => r.name === 'x')!.maxAbsGrad).toBeGreaterThan(0);
    }
  });

  it('a trainer compiled for τ = 6 runs a 4-step window exactly as one compiled for τ = 4, lengths and Adam steps included', async () => {
    const cfg = (tau: number) => ({
      model: MODELS['lstm']!, source: 'prop', batch: 2, tau, dtype: 'f64' as const, loss: { kind: 'mse' as const, over: 'last' as const },
      optimizer: { name: 'adam' as const, lr: 0.05 }, carryState: true, lengths: true, hoist: 'on' as const,
    });
    const [long, short] = [(await importTrainer(emitTrainer(cfg(6)))).createTrainer({ seed: 5 }), (await importTrainer(emitTrainer(cfg(4)))).createTrainer({ seed: 5 })];
    const x = Array.from({ length: 2 * 4 * I }, (_, i) => Math.sin(i)), y = Array.from({ length: 2 * 4 * O }, (_, i) => Math.cos(i));
    for (let k = 0; k < 3; k++) {
      expect(long.step(x, y, [4, 2])).toBe(short.step(x, y, [4, 2]));
      expect(long.T).toBe(4);
      for (const [p, v] of Object.entries(short.getParams())) expect(long.getParams()[p]!.data).toEqual(v.data);
      expect(long.getState()).toEqual(short.getState());
    }
    expect(() => long.step(x, y, [4, 5])).toThrow(/lengths: index 1 is 5; a length must be an integer in 1\.\.4/);
    expect(() => long.step(x, y, [4])).toThrow(/lengths: expected 2 values/);
    const x7 = Array.from({ length: 2 * 7 * I }, () => 0);
    expect(() => long.step(x7, x7)).toThrow(/1 ≤ T ≤ 6/);
  });
});
