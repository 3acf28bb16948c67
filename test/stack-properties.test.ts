// Stacks of scans as properties: for random stacks (1–3 layers, one or two directions) of the
// built-in cells and of a user-written two-state cell, with or without per-row lengths, any loss
// placement: the rolled trainer (each scan a loop), the unrolled trainer (every scan inlined) and the interpreter agree
// (f64, 1e-12); every row of a padded batch is exactly that row run alone over its own length
// (pack_padded_sequence: a reverse scan starts at the row's last valid step); the f32 wasm trainer
// agrees to float32 accuracy; a user-written cell stacked and made bidirectional passes gradcheck.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { checkGradients } from '../src/cli/gradcheck.ts';
import { runWindow } from '../src/cli/grad.ts';
import { randomData, type RunData } from '../src/cli/run-data.ts';
import { add, matmul, mul, sigmoid, sub, tanh, transpose } from '../src/dsl/ops.ts';
import { initialParams } from '../src/dsl/init.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { bidirectional, stack, type Layer } from '../src/dsl/stack.ts';
import { input, param, recurrence, state, type Recurrence } from '../src/dsl/recurrence.ts';
import { sizeOf, type Tensor } from '../src/ir/tensor.ts';
import { makeGraph } from '../src/ir/graph.ts';
import { currentContext, withContext } from '../src/dsl/context.ts';
import { finalName, initialName, sequenceModel } from '../src/dsl/sequence.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { stepSlice } from '../src/cli/run.ts';
import { inlineScans } from '../src/transforms/inline-scans.ts';
import { unroll } from '../src/transforms/unroll.ts';
import type { LossSpec } from '../src/transforms/loss.ts';
import { relErr } from './helpers/numeric.ts';

const [I, H, O] = [2, 3, 2];

/** A user-written two-state cell: h(t) = tanh(x U + h W + b), m(t) = σ(h(t) V) ⊙ m + (1 − σ(h(t) V)) ⊙ h(t); its layer output is h. */
function twoState(B: number, inputSize: number, sfx: string): Recurrence {
  const W = param(`W_${sfx}`, [H, H]), U = param(`U_${sfx}`, [inputSize, H]), b = param(`b_${sfx}`, [H]), V = param(`V_${sfx}`, [H, H]);
  return recurrence({
    name: 'two', state: { h: state('h', [B, H]), m: state('m', [B, H]) }, input: { x: input('x', [B, inputSize]) }, params: { W, U, b, V },
    step: ({ h, m }, { x }) => {
      const h2 = tanh(add(add(matmul(h, W), matmul(x, U)), b));
      const g = sigmoid(matmul(h2, V));
      return { h: h2, m: add(mul(g, m), mul(sub(1, g), h2)) };
    },
    output: ({ h, m }) => ({ y: mul(h, m) }),
  });
}

/** L layers of the two-state cell, D directions, and a linear head over D·H. */
function userStack(L: number, D: number): ModelDef {
  return defineModel({
    name: `two-${L}x${D}`,
    build: (B) => {
      const layers: Layer[] = [];
      for (let k = 0; k < L; k++) {
        const inputSize = k === 0 ? I : D * H;
        const at = (d: number) => twoState(B, inputSize, `l${k}${d ? '_reverse' : ''}`);
        layers.push(D === 2 ? bidirectional(at(0), at(1)) : { forward: at(0) });
      }
      const P = param('P', [O, D * H]);
      return stack({ layers, head: { params: [P], output: (top) => ({ o: matmul(top, transpose(P)) }) } });
    },
  });
}

const builtIn = (kind: CellKind, L: number, D: number): ModelDef =>
  defineModel({ name: `${kind}-${L}x${D}`, build: (B) => cell(kind, { batch: B, input: I, hidden: H, output: O, layers: L, bidirectional: D === 2 }) });

const modelOf = (kind: string, L: number, D: number) => (kind === 'two' ? userStack(L, D) : builtIn(kind as CellKind, L, D));

function dataFor(model: ModelDef, loss: LossSpec, B: number, T: number, lengths: number[] | undefined, seed: number): { data: RunData; params: Map<string, Tensor> } {
  const rec = model.build(B);
  const base = randomData(rec, loss, { batch: B, tau: T }, seed);
  return { data: { ...base, ...(lengths ? { lengths } : {}) }, params: initialParams(rec, seed) };
}

/** Row b of a batch-first [B, T, K] tensor, its first n steps, as [1, n, K]. */
function rowPrefix(t: Tensor, b: number, n: number): Tensor {
  const [, T, K] = t.shape as [number, number, number];
  return { shape: [1, n, K], data: t.data.slice(b * T * K, (b * T + n) * K) };
}

/** Row b of a state [L·D, B, H] as [L·D, 1, H]. */
function stateRow(t: Tensor, b: number): Tensor {
  const [LD, B, K] = t.shape as [number, number, number];
  const data = new Float64Array(LD * K);
  for (let s = 0; s < LD; s++) data.set(t.data.subarray((s * B + b) * K, (s * B + b + 1) * K), s * K);
  return { shape: [LD, 1, K], data };
}

const config = fc.record({
  kind: fc.constantFrom('elman', 'lstm', 'gru', 'two'),
  L: fc.integer({ min: 1, max: 3 }),
  D: fc.constantFrom(1, 2),
  B: fc.integer({ min: 1, max: 3 }),
  T: fc.integer({ min: 1, max: 5 }),
  varlen: fc.boolean(),
  over: fc.constantFrom<'all' | 'last'>('all', 'last'),
  seed: fc.integer({ min: 1, max: 1000 }),
}).filter((c) => c.L * c.D > 1);

describe('programs of scans (fast-check, f64)', () => {
  it('rolled = unrolled = interpreter: loss, outputs, hidden outputs, final state, every gradient', async () => {
    await fc.assert(fc.asyncProperty(config, fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 3, maxLength: 3 }), async (c, lens) => {
      const model = modelOf(c.kind, c.L, c.D);
      const lengths = c.varlen ? lens.slice(0, c.B).map((n) => Math.min(n, c.T)) : undefined;
      const loss: LossSpec = { kind: 'mse', over: c.over };
      const { data, params } = dataFor(model, loss, c.B, c.T, lengths, c.seed);
      const rec = model.build(c.B);
      const ref = await runWindow(model, 'prop', rec, data, loss, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
      for (const form of ['rolled', 'unrolled'] as const) {
        if (form === 'unrolled' && c.T > 3) continue; // straight-line code: short windows only
        const r = await runWindow(model, 'prop', rec, data, loss, params, { engine: 'compiled', dtype: 'f64', form });
        expect(Math.abs(r.loss - ref.loss)).toBeLessThan(1e-12 * Math.max(1, Math.abs(ref.loss)));
        expect(relErr(r.outputs.data, ref.outputs.data)).toBeLessThan(1e-12);
        expect(relErr(r.hiddenOutputs.data, ref.hiddenOutputs.data)).toBeLessThan(1e-12);
        for (const [k, t] of ref.finalState) expect(relErr(r.finalState.get(k)!.data, t.data), `${form} finalState.${k}`).toBeLessThan(1e-12);
        for (const [k, g] of ref.grads) expect(relErr(r.grads.get(k)!.data, g.data), `${form} grads.${k}`).toBeLessThan(1e-12);
      }
    }), { numRuns: 10, seed: 12 });
  }, 120_000);

  it('each row of a padded batch is that row alone over its own length (both directions)', async () => {
    await fc.assert(fc.asyncProperty(config, fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 3, maxLength: 3 }), async (c, lens) => {
      const model = modelOf(c.kind, c.L, c.D);
      const B = Math.max(c.B, 2);
      const lengths = lens.slice(0, B).map((n) => Math.min(n, c.T));
      const loss: LossSpec = { kind: 'mse', over: 'all' };
      const { data, params } = dataFor(model, loss, B, c.T, lengths, c.seed);
      const batch = await runWindow(model, 'prop', model.build(B), data, loss, params, { engine: 'compiled', dtype: 'f64', form: 'rolled' });
      for (let b = 0; b < B; b++) {
        const n = lengths[b]!;
        const alone: RunData = {
          batch: 1, tau: n, source: 'row',
          sequences: new Map([...data.sequences].map(([k, t]) => [k, rowPrefix(t, b, n)])),
          initial: new Map([...data.initial].map(([k, t]) => [k, stateRow(t, b)])),
        };
        const r = await runWindow(model, 'row', model.build(1), alone, loss, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
        expect(relErr(rowPrefix(batch.outputs, b, n).data, r.outputs.data)).toBeLessThan(1e-12);
        expect(relErr(rowPrefix(batch.hiddenOutputs, b, n).data, r.hiddenOutputs.data)).toBeLessThan(1e-12);
        for (const [k, t] of r.finalState) expect(relErr(stateRow(batch.finalState.get(k)!, b).data, t.data), `row ${b} finalState.${k}`).toBeLessThan(1e-12);
      }
    }), { numRuns: 8, seed: 7 });
  }, 120_000);

  it('the f32 wasm trainer agrees with f64 to float32 accuracy', async () => {
    const model = modelOf('lstm', 2, 2);
    const loss: LossSpec = { kind: 'mse', over: 'last' };
    const { data, params } = dataFor(model, loss, 3, 5, [5, 2, 4], 3);
    const rec = model.build(3);
    const f64 = await runWindow(model, 'f32', rec, data, loss, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
    const f32 = await runWindow(model, 'f32', rec, data, loss, params, { engine: 'compiled', dtype: 'f32', form: 'rolled' });
    expect(Math.abs(f32.loss - f64.loss) / f64.loss).toBeLessThan(1e-5);
    for (const [k, g] of f64.grads) expect(relErr(f32.grads.get(k)!.data, g.data), `grads.${k}`).toBeLessThan(1e-4);
  });

  it('a user-written cell, stacked and made bidirectional, passes gradcheck (with lengths, last-step loss)', () => {
    const model = userStack(2, 2);
    const loss: LossSpec = { kind: 'mse', over: 'last' };
    const { data, params } = dataFor(model, loss, 3, 4, [4, 1, 3], 5);
    const report = checkGradients(model.build(3), data, params, loss, { eps: 1e-6, tol: 1e-6, seed: 1, entries: 12, floor: 1e-6 });
    expect(report.ok, JSON.stringify(report.worst)).toBe(true);
    expect(report.rows.map((r) => r.name)).toEqual(expect.arrayContaining(['W_l0_reverse', 'U_l1', 'P', 'x', 'h0', 'm0']));
  });
});

describe('one recurrence is one scan', () => {
  // unroll(rec, τ) (τ copies of the step, what the recurrence trainer's unrolled form and the
  // interpreter engine compute) is the scan of sequenceScans inlined: the same outputs and states.
  for (const [what, build] of [
    ['the two-state cell', (B: number) => twoState(B, I, 'l0')],
    ['the built-in LSTM with its head', (B: number) => cell('lstm', { batch: B, input: I, hidden: H, output: O })],
  ] as const) {
    it(`${what}: unroll = the scan inlined, every output at every step and the final states (1e-12)`, () => {
      withContext(() => {
        const B = 3, T = 5;
        const rec = build(B);
        const params = initialParams(rec, 9);
        const u = unroll(rec, T, currentContext());
        const model = sequenceModel(rec, { steps: T });
        const inlined = inlineScans(makeGraph(model.outputs.map((o) => ({ name: o.name, node: o.node }))), currentContext()).graph;
        const wave = (n: number, s: number) => Float64Array.from({ length: n }, (_, i) => Math.sin(s * (i + 1)));
        const xs = rec.input.map((x, k) => ({ name: x.name, step: x.node.shape, data: wave(B * T * sizeOf(x.node.shape.slice(1)), k + 2) }));
        const s0 = rec.state.map((s, k) => ({ name: s.name, data: wave(sizeOf(s.node.shape), k + 7) }));
        const stepInputs = new Map<string, Float64Array>(s0.map((s) => [`${s.name}@0`, s.data]));
        for (let t = 1; t <= T; t++) for (const x of xs) stepInputs.set(`${x.name}@${t}`, stepSlice({ shape: [B, T, ...x.step.slice(1)], data: x.data }, t - 1));
        const want = evaluate(u.graph, params, stepInputs);
        const got = evaluate(inlined, params, new Map<string, Tensor>([
          ...xs.map((x): [string, Tensor] => [x.name, { shape: [B, T, ...x.step.slice(1)], data: x.data }]),
          ...rec.state.map((s, k): [string, Tensor] => [initialName(s.name), { shape: s.node.shape, data: s0[k]!.data }]),
        ]));
        for (const o of rec.outputs) {
          const seq = got.get(o.name)!, K = sizeOf(o.node.shape.slice(1));
          for (let t = 1; t <= T; t++) expect(relErr(stepSlice(seq, t - 1), want.get(`${o.name}@${t}`)!.data), `${o.name}@${t}`).toBeLessThan(1e-12);
          expect(seq.shape).toEqual([B, T, K]);
        }
        for (const s of rec.state) expect(relErr(got.get(finalName(s.name))!.data, want.get(`${s.name}@${T}`)!.data), s.name).toBeLessThan(1e-12);
      });
    });
  }
});
