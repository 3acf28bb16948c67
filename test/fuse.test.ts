// Stacked forward layers as one step (fuseForward: the stack's graph of scans over one step,
// inlined): the inference module built from it steps t by t to the trainer's outputs over the window.
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { loadInference } from '../src/emit/inference.ts';
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
