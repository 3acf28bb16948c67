// Stacked forward layers as one step (fuseForward: the stack's graph of scans over one step,
// inlined): the inference module built from it steps t by t to the trainer's outputs over the window.
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { emitInference, loadInference } from '../src/emit/inference.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { relErr } from './helpers/numeric.ts';

const B = 3, T = 5, I = 2, H = 4, O = 3;

describe('stacked forward layers step as one recurrence', () => {
  for (const [kind, layers] of [['lstm', 2], ['gru', 3], ['elman', 2]] as [CellKind, number][]) {
    it(`${kind} × ${layers}: the inference module's steps = the trainer's window, outputs and final states`, async () => {
      const model = defineModel({ name: kind, build: (b) => cell(kind, { batch: b, input: I, hidden: H, output: O, layers }) });
      const trainer = (await importTrainer(emitTrainer({ model, source: 'fuse', batch: B, tau: T, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, carryState: false }))).createTrainer({ seed: 3 });
      const inference = (await loadInference({ model, source: 'fuse', batch: B, dtype: 'f64' })).createInference({ params: Object.fromEntries(Object.entries(trainer.getParams()).map(([k, v]) => [k, v.data])) });
      const h0 = Object.fromEntries(Object.entries(trainer.getState()).map(([k, v]) => [k, v.data.map((_, i) => Math.sin(i + 1) / 2)]));
      trainer.setState(h0);
      inference.setState(h0);
      const x = Float64Array.from({ length: B * T * I }, (_, i) => Math.cos(0.7 * i));
      const whole = trainer.predict(x);
      const stepped = new Float64Array(B * T * O);
      for (let t = 0; t < T; t++) {
        const xt = Float64Array.from({ length: B * I }, (_, k) => x[(Math.floor(k / I) * T + t) * I + (k % I)]!);
        const o = inference.step(xt);
        for (let b = 0; b < B; b++) for (let k = 0; k < O; k++) stepped[(b * T + t) * O + k] = o[b * O + k]!;
      }
      expect(relErr(stepped, whole)).toBeLessThan(1e-12);
      const final = trainer.finalState!(), state = inference.getState();
      for (const [k, v] of Object.entries(final)) expect(relErr(Float64Array.from(state[k]!.data), Float64Array.from(v.data)), k).toBeLessThan(1e-12);
    });
  }
});

describe('the inference module on the wasm target', () => {
  it('lstm × 2: its step is one call into its module, within float32 rounding of the ts module, step by step; the async factory gives the same module', async () => {
    const model = defineModel({ name: 'lstm', build: (b) => cell('lstm', { batch: b, input: I, hidden: H, output: O, layers: 2 }) });
    const [ts, wasm] = await Promise.all((['ts', 'wasm'] as const).map((target) => loadInference({ model, source: 'fuse', batch: B, dtype: 'f32', target })));
    const source = emitInference({ model, source: 'fuse', batch: B, dtype: 'f32', target: 'wasm' });
    expect(source.target).toBe('wasm');
    expect(source.source).toMatch(/private kernel\(_A: Float32Array\): void \{\n\s*const W = this\.kernels;\n\s*W\.step\d+\(\);\n\s*\}/);
    expect(source.wasm!.kernels.some((k) => k.name.startsWith('mm'))).toBe(true);
    const a = ts!.createInference({ seed: 4 }), b = wasm!.createInference({ seed: 4 });
    const c = await (wasm as unknown as { createInferenceAsync(o: object): Promise<typeof b> }).createInferenceAsync({ seed: 4 });
    expect(b.arena).toBeInstanceOf(Float32Array);
    for (let t = 0; t < 6; t++) {
      const x = Float64Array.from({ length: B * I }, (_, k) => Math.sin(1.3 * t + k));
      const [oa, ob, oc] = [a.step(x), b.step(x), c.step(x)];
      expect(relErr(ob, oa), `step ${t}`).toBeLessThan(1e-5);
      expect(Array.from(oc)).toEqual(Array.from(ob));
    }
    for (const [k, v] of Object.entries(a.getState())) expect(relErr(Float64Array.from(b.getState()[k]!.data), Float64Array.from(v.data)), k).toBeLessThan(1e-5);
  });

  it('refuses float64 with a way out', () => {
    const model = defineModel({ name: 'gru', build: (b) => cell('gru', { batch: b, input: I, hidden: H, output: O }) });
    expect(() => emitInference({ model, source: 'fuse', batch: B, dtype: 'f64', target: 'wasm' })).toThrow(/float32.*--target ts/);
  });
});
