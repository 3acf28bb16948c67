// Every element-wise unary primitive of the registry, end to end, the list taken from the registry
// (ELEMENTWISE_UNARY), so a new one is checked without a line here: its DSL op drawn under its name,
// a recurrence using it compiled for ts (f64, the interpreter's loss and gradients to 1e-12) and wasm
// (f32, to 1e-5), and exported to ONNX, run in ONNX Runtime against the trainer's predictions.
import { describe, expect, it } from 'vitest';
import { runWindow } from '../src/cli/grad.ts';
import { withContext } from '../src/dsl/context.ts';
import { initialParams, mulberry32 } from '../src/dsl/init.ts';
import { defineModel, type ModelDef } from '../src/dsl/model.ts';
import { add, matmul, tanh, transpose, UNARY_OPS } from '../src/dsl/ops.ts';
import { input, param, recurrence, state } from '../src/dsl/recurrence.ts';
import { modelDot } from '../src/dot/export.ts';
import { importTrainer } from '../src/emit/load.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { tensor, type Tensor } from '../src/ir/tensor.ts';
import { exportOnnx } from '../src/onnx/export.ts';
import { ELEMENTWISE_UNARY, type ElementwiseUnaryName } from '../src/prims/index.ts';
import { expectTargetsMatchInterpreter } from './helpers/engines.ts';
import { runOnnx } from './helpers/ort.ts';

const I = 2, H = 3, B = 3, T = 3;

/** An Elman-like cell reading op(1.5 + tanh(h)): inside log's domain, away from kinks at 0, exp bounded. */
const modelOf = (op: ElementwiseUnaryName): ModelDef => defineModel({
  name: `unary-${op}`,
  build: (batch) => {
    const x = input('x', [batch, I]);
    const h = state('h', [batch, H]);
    const U = param('U', [H, I]), W = param('W', [H, H]), b = param('b', [H]), V = param('V', [1, H]), c = param('c', [1]);
    return recurrence({
      name: op, state: { h }, input: { x }, params: [U, W, b, V, c],
      step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(x, transpose(U)), matmul(UNARY_OPS[op](add(tanh(h), 1.5)), transpose(W))), b)) }),
      output: ({ h }) => ({ o: add(matmul(h, transpose(V)), c) }),
    });
  },
});

function sequence(shape: number[], seed: number): Tensor {
  const next = mulberry32(seed);
  return tensor(shape, Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => 2 * next() - 1));
}
const x = sequence([B, T, I], 21), y = sequence([B, T, 1], 22), h0 = sequence([1, B, H], 23);

describe.each(ELEMENTWISE_UNARY)('%s', (op) => {
  const model = modelOf(op);
  const params = initialParams(withContext(() => model.build(1)), 7);
  const config = (over: Partial<TrainerConfig>): TrainerConfig => ({
    model, source: 'test/unary-ops.test.ts', batch: B, tau: T, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, carryState: false, ...over,
  });
  const trainer = async (over: Partial<TrainerConfig>) => {
    const t = (await importTrainer(emitTrainer(config(over)))).createTrainer({ params: Object.fromEntries(params) });
    t.setState({ h: h0.data });
    return t;
  };

  it('is drawn as an op labelled with its name', () => {
    expect(modelDot(model, { view: 'folded', level: 'ops' })).toMatch(new RegExp(`label=<${op}\\b`));
  });

  it('ts f64 gives the interpreter\'s loss and gradients, wasm f32 within 1e-5', async () => {
    const rec = withContext(() => model.build(B));
    const data = { batch: B, tau: T, sequences: new Map([['x', x], ['y', y]]), initial: new Map([['h', h0]]), source: 'test' };
    const ref = await runWindow(model, 'test/unary-ops.test.ts', rec, data, { kind: 'mse' }, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
    const ts = await trainer({}), wasm = await trainer({ dtype: 'f32', target: 'wasm' });
    const lt = ts.gradients(x.data, y.data), lw = wasm.gradients(x.data, y.data);
    expectTargetsMatchInterpreter(ref, { loss: lt, grads: ts.getGrads() }, { loss: lw, grads: wasm.getGrads() });
  }, 60_000);

  it('exports to ONNX, and ONNX Runtime gives the trainer\'s predictions (f32 1e-5, f64 1e-12)', async () => {
    const want = (await trainer({})).predict(x.data);
    for (const [dtype, tol] of [['f32', 1e-5], ['f64', 1e-12]] as const) {
      const out = await runOnnx(exportOnnx(model, params, { form: 'sequence', dtype, lengths: false }), { x: { shape: x.shape, data: x.data }, h0: { shape: h0.shape, data: h0.data } }, dtype);
      out['o']!.data.forEach((v, i) => expect(Math.abs(v - want[i]!), `${dtype} o[${i}]`).toBeLessThanOrEqual(tol));
    }
  }, 60_000);
});
