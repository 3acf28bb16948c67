// abs end to end: PyTorch's semantics (|−0| = +0, NaN stays NaN, d|x|/dx = sign(x) with 0 at 0) in
// the interpreter, its emission on both targets (Math.abs, f32x4.abs), a recurrence using it whose
// compiled gradients (ts f64, wasm f32) agree with the interpreter's and with central differences,
// and its ONNX export (Abs) run in ONNX Runtime against the trainer's predictions.
import { describe, expect, it } from 'vitest';
import { abs, add, defineModel, input, matmul, param, recurrence, state, tanh, transpose } from '../src/index.ts';
import { runWindow } from '../src/cli/grad.ts';
import { withContext } from '../src/dsl/context.ts';
import { initialParams, mulberry32 } from '../src/dsl/init.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { modelDot } from '../src/dot/export.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { makeGraph } from '../src/ir/graph.ts';
import { Context } from '../src/ir/node.ts';
import { tensor, type Tensor } from '../src/ir/tensor.ts';
import { exportOnnx } from '../src/onnx/export.ts';
import { decodeModel, type GraphProto } from '../src/onnx/proto.ts';
import { createBuilder } from '../src/prims/builder.ts';
import { vjp } from '../src/transforms/vjp.ts';
import { expectTargetsMatchInterpreter } from './helpers/engines.ts';
import { runOnnx } from './helpers/ort.ts';

const I = 2, H = 3, B = 3, T = 4;

/** An Elman-like cell that reads |h|: h(0) = 0, so the first step differentiates abs at 0. */
const model = defineModel({
  name: 'abs-cell',
  build: (batch) => {
    const x = input('x', [batch, I]);
    const h = state('h', [batch, H]);
    const U = param('U', [H, I]), W = param('W', [H, H]), b = param('b', [H]), V = param('V', [1, H]), c = param('c', [1]);
    return recurrence({
      name: 'abs-cell', state: { h }, input: { x }, params: [U, W, b, V, c],
      step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(x, transpose(U)), matmul(abs(h), transpose(W))), b)) }),
      output: ({ h }) => ({ o: add(matmul(abs(h), transpose(V)), c) }),
    });
  },
});

const params = initialParams(withContext(() => model.build(1)), 5);

function sequence(shape: number[], seed: number): Tensor {
  const next = mulberry32(seed);
  return tensor(shape, Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => 2 * next() - 1));
}
const x = sequence([B, T, I], 11), y = sequence([B, T, 1], 12);

function config(over: Partial<TrainerConfig>): TrainerConfig {
  return { model, source: 'test/abs.test.ts', batch: B, tau: T, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, carryState: false, ...over };
}

async function trainer(over: Partial<TrainerConfig>, p: ReadonlyMap<string, Tensor> = params): Promise<{ source: string; t: TrainerInstance }> {
  const emitted = emitTrainer(config(over));
  return { source: emitted.source, t: (await importTrainer(emitted)).createTrainer({ params: Object.fromEntries(p) }) };
}

describe('abs in the interpreter, as torch.abs', () => {
  const xs = [-2, -0.5, -0, 0, 0.25, 3, -Infinity, NaN];
  it('|x| with |−0| = +0 and NaN through, in f64 and f32', () => {
    for (const dtype of ['f64', 'f32'] as const) {
      const b = createBuilder(new Context());
      const g = makeGraph({ y: b.abs(b.input('x', [xs.length])) });
      const got = [...evaluate(g, new Map(), new Map([['x', Float64Array.from(xs)]]), dtype).get('y')!.data];
      expect(got.slice(0, 6)).toEqual([2, 0.5, 0, 0, 0.25, 3]);
      expect(Object.is(got[2], 0)).toBe(true);
      expect(got[6]).toBe(Infinity);
      expect(got[7]).toBeNaN();
    }
  });

  it('its vjp is dy·sign(x), 0 at ±0 (torch.abs backward: grad · sgn(x))', () => {
    const b = createBuilder(new Context());
    const xn = b.input('x', [6]);
    const dy = b.input('dy', [6]);
    const loss = b.sum(b.mul(b.abs(xn), dy), [0]);
    const { graph } = vjp(makeGraph({ loss }), loss, [xn], b);
    const got = evaluate(graph, new Map(), new Map([['x', Float64Array.from([-2, -0.5, -0, 0, 0.25, 3])], ['dy', Float64Array.from([0.5, 2, 7, -7, 3, -1])]])).get('grad:x')!.data;
    // −7·0 is −0 here as in PyTorch; the sign of a zero gradient is not the point.
    expect([...got].map((v) => v + 0)).toEqual([-0.5, -2, 0, 0, 3, -1]);
  });

  it('simplifies as it is built: ||x|| -> |x|, |−x| -> |x|, |c| -> a fill', () => {
    const b = createBuilder(new Context());
    const xn = b.input('x', [2]);
    const once = b.abs(xn);
    expect(b.abs(once)).toBe(once);
    expect(b.abs(b.neg(xn))).toBe(once);
    expect(b.abs(b.scalar(-3, [2])).attrs['value']).toBe(3);
  });
});

describe('abs emitted', () => {
  it('ts renders Math.abs (f64 and f32 alike: |x| of a float32 is a float32); wasm a kernel with f32x4.abs', async () => {
    const f64 = (await trainer({})).source;
    expect(f64).toContain('Math.abs(');
    const ts32 = (await trainer({ dtype: 'f32', target: 'ts' })).source;
    expect(ts32).toContain('Math.abs(');
    const wasm = emitTrainer(config({ dtype: 'f32', target: 'wasm' }));
    const bytes = Buffer.from(wasm.source.match(/const WASM = "([^"]+)"/)![1]!, 'base64');
    // f32x4.abs is the SIMD prefix 0xfd then opcode 0xe0 (LEB128: e0 01).
    expect(bytes.includes(Buffer.from([0xfd, 0xe0, 0x01]))).toBe(true);
  });

  it('the compiled ts f64 trainer gives the interpreter\'s loss and gradients; wasm f32 within 1e-5', async () => {
    const rec = withContext(() => model.build(B));
    const data = { batch: B, tau: T, sequences: new Map([['x', x], ['y', y]]), initial: new Map([['h', tensor([1, B, H], new Array(B * H).fill(0))]]), source: 'test' };
    const ref = await runWindow(model, 'test/abs.test.ts', rec, data, { kind: 'mse' }, params, { engine: 'interpreter', dtype: 'f64', form: 'auto' });
    const ts = (await trainer({})).t, wasm = (await trainer({ dtype: 'f32', target: 'wasm' })).t;
    const lt = ts.gradients(x.data, y.data), lw = wasm.gradients(x.data, y.data);
    expectTargetsMatchInterpreter(ref, { loss: lt, grads: ts.getGrads() }, { loss: lw, grads: wasm.getGrads() });
  }, 60_000);

  it('the ts f64 trainer\'s gradient matches central differences of its loss', async () => {
    const { t } = await trainer({});
    t.gradients(x.data, y.data);
    const grads = t.getGrads();
    const next = mulberry32(99);
    const dir = new Map([...params].map(([k, v]) => [k, v.data.map(() => 2 * next() - 1)]));
    const analytic = [...dir].reduce((s, [k, d]) => s + d.reduce((a, v, i) => a + v * grads[k]!.data[i]!, 0), 0);
    const eps = 1e-6;
    const lossAt = (sgn: number) => {
      t.setParams(Object.fromEntries([...params].map(([k, v]) => [k, v.data.map((p, i) => p + sgn * eps * dir.get(k)![i]!)])));
      return t.gradients(x.data, y.data);
    };
    const numeric = (lossAt(1) - lossAt(-1)) / (2 * eps);
    expect(Math.abs(analytic - numeric)).toBeLessThanOrEqual(1e-7 * Math.max(1, Math.abs(numeric)));
  }, 60_000);
});

describe('abs drawn', () => {
  it('is an op box labelled abs in the folded, unfolded and gradient views', () => {
    for (const view of ['folded', 'unfolded', 'gradient'] as const) {
      const dot = modelDot(model, { view, level: 'ops', ...(view === 'folded' ? {} : { tau: 2 }) });
      expect(dot, view).toMatch(/label=<abs\b/);
    }
  });
});

describe('abs exported to ONNX', () => {
  it('is an Abs node, and ONNX Runtime gives the trainer\'s predictions (f32 1e-5, f64 1e-12)', async () => {
    const { t } = await trainer({});
    const want = t.predict(x.data);
    for (const [dtype, tol] of [['f32', 1e-5], ['f64', 1e-12]] as const) {
      const bytes = exportOnnx(model, params, { form: 'sequence', dtype, lengths: false });
      const ops = (g: GraphProto): string[] => g.nodes.flatMap((n) => [n.opType, ...Object.values(n.attrs ?? {}).flatMap((a) => ('g' in a ? ops(a.g) : []))]);
      expect(ops(decodeModel(bytes, 'abs.onnx').graph)).toContain('Abs');
      const out = await runOnnx(bytes, { x: { shape: x.shape, data: x.data }, h0: { shape: [1, B, H], data: new Array(B * H).fill(0) } }, dtype);
      expect(out['o']!.shape).toEqual([B, T, 1]);
      out['o']!.data.forEach((v, i) => expect(Math.abs(v - want[i]!), `${dtype} o[${i}]`).toBeLessThanOrEqual(tol));
    }
  }, 60_000);
});
