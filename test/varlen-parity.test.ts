// Variable-length batches and loss placement against PyTorch float64 (pack_padded_sequence,
// enforce_sorted=False): loss, outputs, hidden outputs, final state and every gradient, in the
// interpreter and in the generated trainer (rolled and unrolled), to 1e-12.
import { describe, expect, it } from 'vitest';
import { cell } from '../src/cells/rnn.ts';
import { runWindow, type Engine, type FormChoice } from '../src/cli/grad.ts';
import type { RunData } from '../src/cli/run-data.ts';
import { defineModel } from '../src/dsl/model.ts';
import type { Tensor } from '../src/ir/tensor.ts';
import type { LossSpec } from '../src/transforms/loss.ts';
import { expectVarlenFixture, varlenFixtures } from './helpers/torch.ts';

const fixtures = varlenFixtures().map((fx) => ({ file: fx.file, fx }));

const ENGINES: [Engine, FormChoice][] = [['interpreter', 'auto'], ['compiled', 'rolled'], ['compiled', 'unrolled']];

describe('variable lengths and loss placement = PyTorch float64 (pack_padded_sequence)', () => {
  it('has fixtures for every cell, lengths 1 and T, over all and last, T up to 40', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(24);
    for (const kind of ['elman', 'lstm', 'gru']) expect(fixtures.filter((f) => f.fx.cell === kind).length).toBeGreaterThanOrEqual(8);
    expect(fixtures.some((f) => f.fx.lengths.includes(1) && f.fx.lengths.includes(f.fx.seqLen))).toBe(true);
    expect(Math.max(...fixtures.map((f) => f.fx.seqLen))).toBe(40);
  });

  for (const { file, fx } of fixtures) {
    // The unrolled form spells out every step (seconds to compile at T = 40): it is checked on the short windows.
    for (const [engine, form] of ENGINES.filter(([, f]) => f !== 'unrolled' || fx.seqLen <= 8)) {
      it(`${file}: ${engine}${engine === 'compiled' ? ` (${form})` : ''}`, async () => {
        const { batch: B, seqLen: T, hidden: H } = fx;
        const model = defineModel({ name: 'varlen', build: (b) => cell(fx.cell === 'elman-relu' ? 'elman' : fx.cell, { batch: b, input: fx.input, hidden: H, output: fx.output }) });
        const rec = model.build(B);
        const initial = new Map<string, Tensor>([['h', { shape: [B, H], data: fx.data.h0.data }]]);
        if (fx.data.c0) initial.set('c', { shape: [B, H], data: fx.data.c0.data });
        const data: RunData = { batch: B, tau: T, source: file, initial, lengths: fx.lengths, sequences: new Map([['x', fx.data.x], ['y', fx.data.y]]) };
        const params = new Map(Object.entries(fx.params));
        const loss: LossSpec = { kind: fx.lossKind, over: fx.lossOver };
        const r = await runWindow(model, file, rec, data, loss, params, { engine, dtype: 'f64', form });
        expectVarlenFixture(r, fx);
      });
    }
  }
});
