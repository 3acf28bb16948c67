// The gradient flow through time: ‖∂L/∂s(t)‖ (the total derivative through every later step,
// Frobenius over [B, H] and over every state together) as the trainer's reverse loop records it,
// against PyTorch float64 (retain_grad on an unrolled loop of the layer's own cell) to 1e-12.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel } from '../src/dsl/model.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { TORCH_DIR } from './helpers/torch.ts';

interface TensorJson {
  shape: number[];
  data: number[];
}
interface FlowFixture {
  cell: CellKind;
  input: number;
  hidden: number;
  output: number;
  batch: number;
  seqLen: number;
  lossOver: 'all' | 'last';
  params: Record<string, TensorJson>;
  data: Record<string, TensorJson>;
  loss: number;
  gradFlow: number[];
}

const fixtures = fs.readdirSync(TORCH_DIR).filter((f) => /^gradflow-.*\.json$/.test(f)).sort()
  .map((file) => ({ file, fx: JSON.parse(fs.readFileSync(path.join(TORCH_DIR, file), 'utf8')) as FlowFixture }));

describe('gradient flow through time = PyTorch float64 (retain_grad)', () => {
  it('has an Elman and an LSTM fixture whose flow vanishes from the last step back', () => {
    for (const kind of ['elman', 'lstm']) expect(fixtures.some((f) => f.fx.cell === kind && f.fx.lossOver === 'last')).toBe(true);
    const elman = fixtures.find((f) => f.file === 'gradflow-elman-last.json')!.fx.gradFlow;
    expect(elman[0]! / elman[elman.length - 1]!).toBeLessThan(1e-3);
  });

  for (const { file, fx } of fixtures) {
    for (const hoist of ['on', 'off'] as const) {
      it(`${file}, hoist ${hoist}: trainer.gradFlow() to 1e-12, and the loss`, async () => {
        const model = defineModel({ name: 'flow', build: (b) => cell(fx.cell, { batch: b, input: fx.input, hidden: fx.hidden, output: fx.output }) });
        const emitted = emitTrainer({
          model, source: file, batch: fx.batch, tau: fx.seqLen, dtype: 'f64', loss: { kind: 'mse', over: fx.lossOver },
          optimizer: { name: 'sgd', lr: 0 }, carryState: false, gradFlow: true, form: 'rolled', hoist,
        });
        const tr = (await importTrainer(emitted)).createTrainer({ params: Object.fromEntries(Object.entries(fx.params).map(([k, v]) => [k, v.data])) });
        tr.setState({ h: fx.data['h0']!.data, ...(fx.data['c0'] ? { c: fx.data['c0'].data } : {}) });
        const loss = tr.gradients(fx.data['x']!.data, fx.data['y']!.data);
        expect(Math.abs(loss - fx.loss) / fx.loss).toBeLessThan(1e-12);
        const flow = tr.gradFlow!();
        expect(flow.length).toBe(fx.seqLen);
        fx.gradFlow.forEach((n, t) => expect(Math.abs(flow[t]! - n) / Math.max(...fx.gradFlow), `t = ${t + 1}`).toBeLessThan(1e-12));
      });
    }
  }

  it('the unrolled form has no reverse loop to record it in, and says so', () => {
    const model = defineModel({ name: 'flow', build: (b) => cell('elman', { batch: b, input: 1, hidden: 2, output: 1 }) });
    expect(() => emitTrainer({ model, source: 'x', batch: 1, tau: 3, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, carryState: false, gradFlow: true, form: 'unrolled' }))
      .toThrow(/gradient flow is recorded by the rolled form/);
  });
});
