// Stacked and bidirectional layers against PyTorch float64 (nn.RNN/LSTM/GRU with num_layers and
// bidirectional, + nn.Linear over D·H): loss, outputs, hidden outputs [B, T, D·H], final state
// [L·D, B, H] and every gradient, with and without per-row lengths, over all steps and the last,
// in the interpreter and the generated trainer (rolled and unrolled), to 1e-12.
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { runWindow, type Engine, type FormChoice } from '../src/cli/grad.ts';
import type { RunData } from '../src/cli/run-data.ts';
import { defineModel } from '../src/dsl/model.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import type { LossSpec } from '../src/transforms/loss.ts';
import { relErr } from './helpers/numeric.ts';
import { deepFixtures } from './helpers/torch.ts';

const fixtures = deepFixtures().map((fx) => ({ file: fx.file, fx }));

const ENGINES: [Engine, FormChoice][] = [['interpreter', 'auto'], ['compiled', 'rolled'], ['compiled', 'unrolled']];

describe('stacked and bidirectional layers = PyTorch float64', () => {
  it('has fixtures for every cell: L = 2 and 3, bidirectional, both, with lengths and a last-step loss', () => {
    for (const kind of ['elman', 'lstm', 'gru']) {
      const mine = fixtures.filter((f) => f.fx.cell === kind).map((f) => f.fx);
      expect(mine.some((f) => f.layers === 3)).toBe(true);
      expect(mine.some((f) => f.layers === 2 && f.bidirectional && f.lengths && f.lossOver === 'last')).toBe(true);
      expect(mine.some((f) => f.layers === 1 && f.bidirectional && f.lengths && f.lossOver === 'last')).toBe(true);
    }
  });

  for (const { file, fx } of fixtures) {
    for (const [engine, form] of ENGINES) {
      it(`${file}: ${engine}${engine === 'compiled' ? ` (${form})` : ''}`, async () => {
        const { batch: B, seqLen: T, hidden: H } = fx;
        const D = fx.bidirectional ? 2 : 1, LD = fx.layers * D;
        const model = defineModel({
          name: 'deep',
          build: (b) => cell(fx.cell as CellKind, { batch: b, input: fx.input, hidden: H, output: fx.output, layers: fx.layers, bidirectional: fx.bidirectional }),
        });
        const rec = model.build(B);
        const initial = new Map<string, Tensor>([['h', { shape: [LD, B, H], data: fx.data.h0.data }]]);
        if (fx.data.c0) initial.set('c', { shape: [LD, B, H], data: fx.data.c0.data });
        const data: RunData = { batch: B, tau: T, source: file, initial, ...(fx.lengths ? { lengths: fx.lengths } : {}), sequences: new Map([['x', fx.data.x], ['y', fx.data.y]]) };
        const params = new Map(Object.entries(fx.params));
        const loss: LossSpec = { kind: fx.lossKind, over: fx.lossOver };
        const r = await runWindow(model, file, rec, data, loss, params, { engine, dtype: 'f64', form });
        const TOL = 1e-12;
        expect(Math.abs(r.loss - fx.loss) / Math.abs(fx.loss)).toBeLessThan(TOL);
        expect(relErr(r.outputs.data, fx.outputs.data)).toBeLessThan(TOL);
        expect(r.hiddenOutputs.shape).toEqual([B, T, D * H]);
        expect(relErr(r.hiddenOutputs.data, fx.hiddenOutputs.data)).toBeLessThan(TOL);
        for (const [name, t] of Object.entries(fx.finalState)) {
          expect(r.finalState.get(name)!.shape, `finalState.${name}`).toEqual([LD, B, H]);
          expect(relErr(r.finalState.get(name)!.data, t.data), `finalState.${name}`).toBeLessThan(TOL);
        }
        for (const [name, g] of Object.entries(fx.grads)) expect(relErr(r.grads.get(name)!.data, g.data), `grads.${name}`).toBeLessThan(TOL);
      });
    }
  }
});
