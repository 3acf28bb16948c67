// The rolled form (loops over t, the step body's own VJP) against the unrolled form and the interpreter; its size independent of τ; the memory report equal to the allocation; the default form.
import { describe, expect, it } from 'vitest';
import dynamical from '../graphs/dynamical-system.ts';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { emitTrainer, type Dtype, type EmittedTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { bindSequence, stackSteps } from '../src/interp/sequence.ts';
import { makeGraph } from '../src/ir/graph.ts';
import { sizeOf } from '../src/ir/tensor.ts';
import { relErr } from './helpers/numeric.ts';
import { rng } from './helpers/rng.ts';

const TOL = 1e-12;
const B = 2, T = 5;

const cellModel = (kind: CellKind, spec: { input: number; hidden: number; output: number }): ModelDef =>
  defineModel({ name: kind, build: (batch) => cell(kind, { ...spec, batch }) });

function config(model: ModelDef, over: Partial<TrainerConfig> = {}): TrainerConfig {
  return {
    model, source: 'test/rolled.test.ts', batch: B, tau: T, dtype: 'f64', loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: 0.05 }, carryState: false, inputGrads: true, ...over,
  };
}

interface Window {
  /** Batch-first [B, T, K] per input, in the recurrence's input order. */
  readonly xs: Float64Array[];
  readonly y: Float64Array;
  /** Initial state per state name. */
  readonly s0: Record<string, Float64Array>;
}

/** Random data for the trainer's inputs, target and initial state (seeded). */
function windowFor(e: EmittedTrainer, seed: number): Window {
  const r = rng(seed);
  const { rec } = e.graph;
  const out = rec.outputs[0]!.node;
  return {
    xs: rec.input.map((x) => r.array(T * sizeOf(x.node.shape))),
    y: r.array(T * sizeOf(out.shape)),
    s0: Object.fromEntries(rec.state.map((s) => [s.name, r.array(sizeOf(s.node.shape), -0.5, 0.5)])),
  };
}

interface Run {
  readonly loss: number;
  readonly outputs: Float64Array;
  readonly states: Record<string, number[]>;
  readonly grads: Record<string, number[]>;
  readonly inputGrads: Record<string, number[]>;
}

function gradientsOf(tr: TrainerInstance, w: Window): Run {
  tr.setState(w.s0);
  const loss = tr.gradients(...w.xs, w.y);
  const flat = (r: Record<string, { data: number[] }>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data]));
  return { loss, outputs: tr.outputs(), states: flat(tr.stateSequence!()), grads: flat(tr.getGrads()), inputGrads: flat(tr.getInputGrads!()) };
}

/** The same quantities from the interpreter on the trainer's own gradient graph (states as extra outputs). */
function interpreterRun(e: EmittedTrainer, w: Window, params: Record<string, number[]>): Run {
  const { rec, unrolled, grad } = e.graph;
  const extra = [];
  for (let t = 1; t <= T; t++) for (const [i, s] of rec.state.entries()) extra.push({ name: `state:${s.name}@${t}`, node: unrolled.states[t]![i]! });
  const g = makeGraph([...grad.graph.outputs, ...extra]);
  const inputs = new Map<string, Float64Array>();
  rec.input.forEach((x, i) => {
    const K = sizeOf(x.node.shape) / B;
    bindSequence(inputs, x.name, { shape: [B, T, K], data: w.xs[i]! }, B, T, K);
  });
  const O = sizeOf(rec.outputs[0]!.node.shape) / B;
  bindSequence(inputs, 'y', { shape: [B, T, O], data: w.y }, B, T, O);
  for (const s of rec.state) inputs.set(`${s.name}@0`, w.s0[s.name]!);
  const ref = evaluate(g, new Map(Object.entries(params).map(([k, v]) => [k, Float64Array.from(v)])), inputs);
  const get = (name: string) => {
    const v = ref.get(name);
    if (!v) throw new Error(`interpreter: no output ${name} (have ${[...ref.keys()].join(', ')})`);
    return v.data;
  };
  const o = rec.outputs[0]!.name;
  const steps = (name: string, K: number) => stackSteps(Array.from({ length: T }, (_, t) => get(`${name}@${t + 1}`)), B, K).data;
  return {
    loss: get('loss')[0]!,
    outputs: steps(o, O),
    states: Object.fromEntries(rec.state.map((s) => [s.name, [...w.s0[s.name]!, ...Array.from({ length: T }, (_, t) => [...get(`state:${s.name}@${t + 1}`)]).flat()]])),
    grads: Object.fromEntries(rec.params.map((p) => [p.name, [...get(`grad:${p.name}`)]])),
    inputGrads: Object.fromEntries([
      ...rec.input.map((x) => [x.name, [...steps(`grad:${x.name}`, sizeOf(x.node.shape) / B)]]),
      ...rec.state.map((s) => [`${s.name}0`, [...get(`grad:${s.name}@0`)]]),
    ]),
  };
}

function expectSameRun(a: Run, b: Run, what: string): void {
  expect(Math.abs(a.loss - b.loss) / Math.abs(b.loss), `${what}: loss`).toBeLessThanOrEqual(TOL);
  expect(relErr(a.outputs, b.outputs), `${what}: outputs`).toBeLessThanOrEqual(TOL);
  for (const part of ['states', 'grads', 'inputGrads'] as const) {
    expect(Object.keys(a[part]).sort(), `${what}: ${part}`).toEqual(Object.keys(b[part]).sort());
    for (const [k, v] of Object.entries(b[part])) expect(relErr(a[part][k]!, v), `${what}: ${part} ${k}`).toBeLessThanOrEqual(TOL);
  }
}

const MODELS: [string, ModelDef][] = [
  ['elman', cellModel('elman', { input: 3, hidden: 4, output: 2 })],
  ['lstm', cellModel('lstm', { input: 3, hidden: 4, output: 2 })],
  ['gru', cellModel('gru', { input: 3, hidden: 4, output: 2 })],
  ['graphs/dynamical-system.ts (input-free)', dynamical],
];

describe('rolled = unrolled = interpreter (f64, B = 2, τ = 5)', () => {
  // hoist 'on': x(t) @ W_ih for all steps before the loop, weight gradients summed over all steps after it.
  for (const [name, model] of MODELS) for (const hoist of ['on', 'off'] as const) {
    it(`${name}, hoist ${hoist}: loss, outputs, states, parameter/input/initial-state gradients, and 3 Adam steps`, async () => {
      const rolled = emitTrainer(config(model, { form: 'rolled', hoist }));
      const unrolled = emitTrainer(config(model, { form: 'unrolled' }));
      expect([rolled.form, unrolled.form]).toEqual(['rolled', 'unrolled']);
      expect(rolled.arena.residualsPerStep).toBeGreaterThan(0);
      const [R, U] = [(await importTrainer(rolled)).createTrainer({ seed: 3 }), (await importTrainer(unrolled)).createTrainer({ seed: 3 })];
      // Parameters away from their init (dynamical-system starts at A = I, b = 0), the same in both.
      const r = rng(17);
      const params = Object.fromEntries(Object.entries(R.getParams()).map(([k, v]) => [k, v.data.map((p) => p + 0.3 * r.uniform(-1, 1))]));
      R.setParams(params);
      U.setParams(params);
      const w = windowFor(rolled, 29);

      const runR = gradientsOf(R, w);
      const runU = gradientsOf(U, w);
      const ref = interpreterRun(rolled, w, params);
      expectSameRun(runR, runU, 'rolled vs unrolled');
      expectSameRun(runR, ref, 'rolled vs interpreter');
      expectSameRun(runU, interpreterRun(unrolled, w, params), 'unrolled vs interpreter');
      expect(Object.keys(runR.inputGrads).sort()).toEqual([...rolled.graph.rec.input.map((x) => x.name), ...rolled.graph.rec.state.map((s) => `${s.name}0`)].sort());
      // Nothing trivially zero.
      for (const g of Object.values(runR.grads)) expect(g.some((v) => v !== 0)).toBe(true);

      for (let k = 0; k < 3; k++) {
        R.setState(w.s0);
        U.setState(w.s0);
        const lr = R.step(...w.xs, w.y), lu = U.step(...w.xs, w.y);
        expect(Math.abs(lr - lu) / Math.abs(lu), `loss of step ${k + 1}`).toBeLessThanOrEqual(TOL);
        const [pr, pu] = [R.getParams(), U.getParams()];
        for (const [p, v] of Object.entries(pu)) expect(relErr(pr[p]!.data, v.data), `${p} after step ${k + 1}`).toBeLessThanOrEqual(TOL);
      }
      expect(R.steps).toBe(3);
      expect(Object.entries(R.getParams()).some(([k, v]) => relErr(v.data, params[k]!) > 0)).toBe(true);
      expect(relErr(R.getOptimizerState().buffers, U.getOptimizerState().buffers)).toBeLessThanOrEqual(TOL);
    });
  }
});

describe('the rolled form does not grow with τ', () => {
  // The `long` workload: elman, input 1, hidden 64, output 1, batch 1.
  const long = cellModel('elman', { input: 1, hidden: 64, output: 1 });
  const compileLong = (tau: number) => emitTrainer(config(long, { batch: 1, tau, dtype: 'f32', inputGrads: false, form: 'rolled', target: 'ts' }));

  it('τ = 10, 100, 1000: the sources differ only in the digits of τ-dependent constants', () => {
    const [s10, s100, s1000] = [10, 100, 1000].map(compileLong) as [EmittedTrainer, EmittedTrainer, EmittedTrainer];
    for (const e of [s10, s100, s1000]) expect(e.form).toBe('rolled');
    // Only digits grow (offsets, bounds, the stacked products' τ·B rows): under 2% here.
    expect(Math.abs(s1000.source.length - s10.source.length)).toBeLessThan(s10.source.length / 50);
    expect(Math.abs(s100.source.length - s10.source.length)).toBeLessThan(s10.source.length / 50);
    const loops = (s: string) => s.split('for (').length - 1;
    expect(loops(s1000.source)).toBe(loops(s10.source));
    expect(loops(s100.source)).toBe(loops(s10.source));
    expect(s1000.source.split('\n').length).toBe(s10.source.split('\n').length);
    // With every number replaced by 0, the three sources are one text: nothing is emitted per step.
    const shape = (s: string) => s.replace(/\d+/g, '0');
    expect(shape(s100.source) === shape(s10.source)).toBe(true);
    expect(shape(s1000.source) === shape(s10.source)).toBe(true);
    // The loops run over the window's own T, which the trainer checks against τ.
    expect(s1000.source).toContain('for (let t = 0; t < T; t++)');
    expect(s1000.source).toContain('T > 1000');
    // Only the per-step storage grows: residuals τ × per step, the same per step at every τ.
    for (const [e, tau] of [[s10, 10], [s100, 100], [s1000, 1000]] as const) expect(e.arena.regions.residuals).toBe(tau * e.arena.residualsPerStep);
    expect(s1000.arena.residualsPerStep).toBe(s10.arena.residualsPerStep);
    expect(s1000.arena.regions.loop).toBe(s10.arena.regions.loop);
    expect(s1000.arena.regions.temporaries).toBe(s10.arena.regions.temporaries);
  });

  it('a loss on each row\'s last valid step, under lengths: τ = 1000 within 5% of τ = 10, one text but for digits', () => {
    const compile = (tau: number, hoist: 'auto' | 'off') => emitTrainer(config(long, { batch: 4, tau, dtype: 'f64', inputGrads: false, lengths: true, loss: { kind: 'mse', over: 'last' }, hoist }));
    const [s10, s1000] = [compile(10, 'auto'), compile(1000, 'auto')];
    expect(s1000.form).toBe('rolled');
    expect(Math.abs(s1000.source.length - s10.source.length)).toBeLessThan(s10.source.length / 20);
    // (auto hoists the input projection at τ = 10 only, by its size rule; with hoisting off the texts match)
    expect(compile(1000, 'off').source.replace(/\d+/g, '0') === compile(10, 'off').source.replace(/\d+/g, '0')).toBe(true);
  });

  it('while the unrolled form does grow (the comparison above is not vacuous)', () => {
    const small = cellModel('elman', { input: 1, hidden: 4, output: 1 });
    const [a, b] = [5, 10].map((tau) => emitTrainer(config(small, { batch: 1, tau, inputGrads: false, form: 'unrolled' })));
    expect(b!.source.length).toBeGreaterThan(a!.source.length * 1.5);
  });
});

describe('hoisting products out of the loops over t (src/emit/hoist.ts)', () => {
  // The seed shape: batch 1, so each step's weight gradient is an outer product (k = 1).
  const seed = cellModel('elman', { input: 1, hidden: 32, output: 1 });
  const compileSeed = (hoist: 'on' | 'off' | 'auto') => emitTrainer(config(seed, { batch: 1, tau: 10, dtype: 'f32', inputGrads: false, form: 'rolled', hoist, target: 'ts' }));
  // From the reverse loop to the end of train() (the next method's doc comment).
  const reverseLoop = (src: string) => {
    const start = src.indexOf('for (let t = T - 1; t >= 0; t--)');
    return src.slice(start, src.indexOf('/**', start));
  };

  it('on (and auto at batch 1): dW_hh is one product with k = τ·B after the reverse loop, not an outer product per step', () => {
    for (const e of [compileSeed('on'), compileSeed('auto')]) {
      const body = reverseLoop(e.source);
      // W_hh's gradient is the second parameter's: 32·32 values after W_ih's 32.
      const gradWhh = e.source.match(/\{ name: "rnn\.weight_hh_l0", shape: \[32, 32\], offset: \d+, grad: (\d+)/)![1]!;
      const perStep = new RegExp(`A\\[${gradWhh} \\+ i \\* 32 \\+ j\\] \\+= a0 \\*`);
      expect(body).not.toMatch(perStep);
      expect(body).toMatch(new RegExp(`for \\(let p = 0; p < 10; p\\+\\+\\)[^]*A\\[${gradWhh} \\+ \\(i \\+ 0\\) \\* 32 \\+ \\(j \\+ 0\\)\\] \\+= c00;`));
    }
    const off = compileSeed('off');
    const gradWhh = off.source.match(/\{ name: "rnn\.weight_hh_l0", shape: \[32, 32\], offset: \d+, grad: (\d+)/)![1]!;
    expect(reverseLoop(off.source)).toMatch(new RegExp(`A\\[${gradWhh} \\+ i \\* 32 \\+ j\\] \\+= a0 \\*`));
  });

  it('the stacked values are counted as per-step storage in the memory report', () => {
    const [on, off] = [compileSeed('on'), compileSeed('off')];
    // dz(t) [1, 32] (for dW_hh, dW_ih and both biases), the projection x(t) W_ihᵀ [1, 32], and
    // the output's error dy(t) [1, 1] (for the head's weight and bias): 65 more per step.
    expect(on.arena.residualsPerStep - off.arena.residualsPerStep).toBe(65);
    for (const e of [on, off]) expect(e.arena.regions.residuals).toBe(10 * e.arena.residualsPerStep);
  });

  it('auto at batch 16 keeps per-step products (dot products of 16 rows stay in L1)', () => {
    const m = cellModel('elman', { input: 8, hidden: 128, output: 8 });
    const [auto, off] = ['auto', 'off'].map((hoist) => emitTrainer(config(m, { batch: 16, tau: 50, dtype: 'f32', inputGrads: false, form: 'rolled', hoist: hoist as 'auto' | 'off' })));
    expect(auto!.source).toBe(off!.source);
  });
});

describe('memory plan = actual allocation', () => {
  const gru = cellModel('gru', { input: 2, hidden: 3, output: 1 });
  for (const dtype of ['f32', 'f64'] as Dtype[]) for (const form of ['rolled', 'unrolled'] as const) {
    it(`${dtype}, ${form}: arena.bytes is the allocated arena, the regions sum to it, residuals = τ × per step`, async () => {
      const e = emitTrainer(config(gru, { tau: 4, dtype, form }));
      const tr = (await importTrainer(e)).createTrainer();
      expect(tr.arena).toBeInstanceOf(dtype === 'f32' ? Float32Array : Float64Array);
      expect(e.arena.bytes).toBe(tr.arena.byteLength);
      expect(e.arena.elements).toBe(tr.arena.length);
      expect(e.arena.bytes).toBe(e.arena.elements * (dtype === 'f32' ? 4 : 8));
      expect(Object.values(e.arena.regions).reduce((a, b) => a + b, 0)).toBe(e.arena.elements);
      expect(e.arena.regions.residuals).toBe(4 * e.arena.residualsPerStep);
      expect(e.arena.form).toBe(form);
      if (form === 'rolled') expect(e.arena.residualsPerStep).toBeGreaterThan(0);
      else expect([e.arena.residualsPerStep, e.arena.regions.residuals, e.arena.regions.loop]).toEqual([0, 0, 0]);
      // Parameters and gradients: W_ih 9×2, W_hh 9×3, two biases of 9, head 1×3 + 1 = 67 values each; Adam keeps two moments.
      expect(e.arena.regions.params).toBe(67);
      expect(e.arena.regions.grads).toBe(67);
      expect(e.arena.regions.optimizer).toBe(2 * 67);
      expect(e.source).toContain(`Arena: ${e.arena.elements} elements (${e.arena.bytes} bytes)`);
    });
  }
});

describe('the default form', () => {
  const elman = cellModel('elman', { input: 1, hidden: 3, output: 1 });
  it("is 'rolled' for a loss over every step, with form omitted or 'auto'", () => {
    const { form: _omit, ...noForm } = config(elman, { inputGrads: false });
    for (const cfg of [noForm, config(elman, { inputGrads: false, form: 'auto' }), config(elman, { inputGrads: false, loss: { kind: 'mse', over: 'all' } })]) {
      const e = emitTrainer(cfg);
      expect(e.form).toBe('rolled');
      expect(e.arena.form).toBe('rolled');
      expect(e.source).toContain('Form: rolled');
    }
  });

  it("is 'rolled' for a loss over the last step and under lengths too; 'unrolled' only when asked for", () => {
    for (const extra of [{ loss: { kind: 'mse', over: 'last' } }, { lengths: true }, { lengths: true, loss: { kind: 'xent', over: 'last' } }] as const) {
      for (const form of [undefined, 'auto'] as const) {
        const e = emitTrainer(config(elman, { inputGrads: false, ...extra, ...(form ? { form } : {}) }));
        expect(e.form).toBe('rolled');
        expect(e.source).toContain('Form: rolled');
      }
      expect(emitTrainer(config(elman, { inputGrads: false, ...extra, form: 'unrolled' })).form).toBe('unrolled');
    }
  });
});
