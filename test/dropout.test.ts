// Dropout (issue 22 item 3): a mask is a per-step input the trainer fills from its seeded generator, multiplied in, so the
// backward pass reuses the forward's mask; p = 0 is no dropout at all, bit for bit; the rate of zeros is binomial;
// run (and every command but train) builds without it, so nn.LSTM(dropout=p) in eval mode is what `run` gives.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { add, bidirectional, defineModel, dropout, input, matmul, mul, param, recurrence, stack, state, tanh, transpose, type ModelDef } from '../src/index.ts';
import { withContext, withDropout } from '../src/dsl/context.ts';
import { cell } from '../src/cells/rnn.ts';
import { importTrainer, type TrainerInstance } from '../src/emit/load.ts';
import { emitTrainer, type TrainerConfig } from '../src/emit/trainer.ts';
import { emitGraphTrainer, type GraphTrainerInstance } from '../src/emit/graph-trainer.ts';
import { graphModel } from '../src/dsl/graph-model.ts';
import { UnfoldError } from '../src/ir/errors.ts';
import { unfold } from './helpers/cli.ts';

const B = 4, I = 25, T = 20;

/** o(t) = c ⊙ dropout(x(t), p): with x = 1 and c = 1 the output is the mask itself. */
const maskModel = (p: number): ModelDef => defineModel({
  name: 'mask-probe',
  build: (batch) => {
    const c = param('c', [I], 1), W = param('W', [1, 1]);
    return recurrence({
      state: { h: state('h', [batch, 1]) }, input: { x: input('x', [batch, I]) }, params: { c, W },
      step: ({ h }) => ({ h: tanh(matmul(h, transpose(W))) }),
      output: (_s, { x }) => ({ o: mul(dropout(x, p), c) }),
    });
  },
});

/** A small gated cell that drops its input and its state's contribution: something to differentiate through. */
const droppedCell = (p: number): ModelDef => defineModel({
  name: 'dropped-cell',
  build: (batch) => {
    const H = 3;
    const W = param('W', [H, H]), U = param('U', [H, 2]), b = param('b', [H]), V = param('V', [1, H]);
    return recurrence({
      state: { h: state('h', [batch, H]) }, input: { x: input('x', [batch, 2]) }, params: { W, U, b, V },
      step: ({ h }, { x }) => ({ h: tanh(add(add(matmul(dropout(h, p), transpose(W)), matmul(dropout(x, p), transpose(U))), b)) }),
      output: ({ h }) => ({ o: matmul(dropout(h, p), transpose(V)) }),
    });
  },
});

const config = (model: ModelDef, over: Partial<TrainerConfig> = {}): TrainerConfig => ({
  model, source: 'test', batch: B, tau: T, dtype: 'f64', target: 'ts', loss: { kind: 'mse' },
  optimizer: { name: 'sgd', lr: 0.1 }, carryState: false, dropout: true, ...over,
});

const ones = (n: number) => new Array<number>(n).fill(1);
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.9);

describe('the mask', () => {
  let probe: TrainerInstance;
  const p = 0.3;
  beforeAll(async () => {
    probe = (await importTrainer(emitTrainer(config(maskModel(p))))).createTrainer({ seed: 5 });
  });

  it('keeps each element with probability 1 − p, scaled by 1/(1 − p): the zeros within binomial bounds', () => {
    const n = B * T * I;
    let zeros = 0;
    for (let k = 0; k < 5; k++) {
      probe.gradients(ones(n), ones(n));
      const o = probe.outputs();
      for (const v of o) {
        if (v === 0) zeros++;
        else expect(v).toBe(1 / (1 - p));
      }
    }
    // 5 draws of n = 2000 elements: mean 0.3 · 10000 = 3000, sd √(10000 · 0.3 · 0.7) ≈ 45.8; 5 sd either way.
    expect(Math.abs(zeros - 5 * n * p)).toBeLessThan(5 * Math.sqrt(5 * n * p * (1 - p)));
  });

  it('draws a new mask each step, the same ones again from the same generator state, and none in predict()', () => {
    const n = B * T * I;
    const s = probe.getRandomState!();
    probe.gradients(ones(n), ones(n));
    const a = probe.outputs().slice();
    probe.gradients(ones(n), ones(n));
    expect(probe.outputs()).not.toEqual(a);
    probe.setRandomState!(s);
    probe.gradients(ones(n), ones(n));
    expect(probe.outputs()).toEqual(a);
    expect(Array.from(probe.predict(ones(n)))).toEqual(ones(n));
  });
});

describe('the wasm target', () => {
  it('draws the same masks from the same seed as the ts target (float32 arena in WebAssembly memory)', async () => {
    const n = B * T * I;
    const [ts, wasm] = await Promise.all([
      importTrainer(emitTrainer(config(maskModel(0.5)))),
      importTrainer(emitTrainer(config(maskModel(0.5), { dtype: 'f32', target: 'wasm' }))),
    ]);
    const [a, b] = [ts.createTrainer({ seed: 9 }), wasm.createTrainer({ seed: 9 })];
    a.gradients(ones(n), ones(n));
    b.gradients(ones(n), ones(n));
    expect(Array.from(b.outputs())).toEqual(Array.from(a.outputs()));
    expect(a.outputs().filter((v) => v === 0).length).toBeGreaterThan(0);
  });
});

describe('the backward pass reuses the forward\'s mask', () => {
  it('the gradient of the dropped loss is its central finite difference with the mask held fixed (float64)', async () => {
    const t = (await importTrainer(emitTrainer(config(droppedCell(0.4), { batch: 2, tau: 6 })))).createTrainer({ seed: 3 });
    const x = values(2 * 6 * 2, 1), y = values(2 * 6, 2);
    const s = t.getRandomState!();
    const loss = t.gradients(x, y);
    const grads = t.getGrads();
    const params = t.getParams();
    // The same generator state gives the same mask: the finite difference sees exactly the function the gradient is of.
    const lossAt = (name: string, i: number, eps: number) => {
      const data = params[name]!.data.slice();
      data[i] = data[i]! + eps;
      t.setParams({ [name]: data });
      t.setRandomState!(s);
      const l = t.gradients(x, y);
      t.setParams({ [name]: params[name]!.data });
      return l;
    };
    let checked = 0;
    for (const name of ['W', 'U', 'b', 'V']) {
      for (let i = 0; i < params[name]!.data.length; i++) {
        const fd = (lossAt(name, i, 1e-6) - lossAt(name, i, -1e-6)) / 2e-6;
        expect(Math.abs(grads[name]!.data[i]! - fd), `${name}[${i}]`).toBeLessThan(1e-7 + 1e-6 * Math.abs(fd));
        checked++;
      }
    }
    expect(checked).toBe(9 + 6 + 3 + 3);
    // And the mask matters: another draw gives another loss.
    expect(t.gradients(x, y)).not.toBe(loss);
  });
});

/** A 2-layer bidirectional stack of cells that drop their own state's contribution, and a head: dropout inside a program's scans. */
const droppedStack = (p: number): ModelDef => defineModel({
  name: 'dropped-stack',
  build: (batch) => {
    const H = 2;
    const layer = (I: number, sfx: string) => {
      const U = param(`U_${sfx}`, [H, I]), W = param(`W_${sfx}`, [H, H]);
      return recurrence({
        state: { h: state('h', [batch, H]) }, input: { x: input('x', [batch, I]) }, params: [U, W],
        step: ({ h }, { x }) => ({ h: tanh(add(matmul(x, transpose(U)), matmul(dropout(h, p), transpose(W)))) }),
      });
    };
    const V = param('V', [1, 2 * H]);
    return stack({
      layers: [bidirectional(layer(2, 'l0'), layer(2, 'l0_reverse')), bidirectional(layer(2 * H, 'l1'), layer(2 * H, 'l1_reverse'))],
      head: { params: [V], output: (top) => ({ o: matmul(top, transpose(V)) }) },
      dropout: p,
    });
  },
});

describe('dropout inside a program', () => {
  it('a stack\'s cells draw their own masks beside the one between layers; the gradient is the finite difference with the masks held', async () => {
    const rec = withContext(() => withDropout(() => droppedStack(0.3).build(2)));
    expect(rec.input.map((x) => x.name)).toEqual(['x', 'dropout.1', 'dropout.2', 'dropout_l0', 'dropout.3', 'dropout.4']);
    const t = (await importTrainer(emitTrainer(config(droppedStack(0.3), { batch: 2, tau: 5 })))).createTrainer({ seed: 4 });
    const x = values(2 * 5 * 2, 3), y = values(2 * 5, 4);
    const s = t.getRandomState!();
    t.gradients(x, y);
    const grads = t.getGrads(), params = t.getParams();
    for (const name of ['W_l0_reverse', 'U_l1', 'W_l1']) {
      for (let i = 0; i < params[name]!.data.length; i++) {
        const at = (eps: number) => {
          const data = params[name]!.data.slice();
          data[i] = data[i]! + eps;
          t.setParams({ [name]: data });
          t.setRandomState!(s);
          const l = t.gradients(x, y);
          t.setParams({ [name]: params[name]!.data });
          return l;
        };
        const fd = (at(1e-6) - at(-1e-6)) / 2e-6;
        expect(Math.abs(grads[name]!.data[i]! - fd), `${name}[${i}]`).toBeLessThan(1e-7 + 1e-6 * Math.abs(fd));
      }
    }
  });
});

describe('p = 0, and every use but training', () => {
  it('dropout(x, 0) is x: the trainer is the one without dropout, byte for byte', () => {
    const stacked = (p: number) => defineModel({ name: 'stacked', build: (batch) => cell('lstm', { input: 2, hidden: 3, output: 1, batch, layers: 2, ...(p ? { dropout: p } : {}) }) });
    expect(emitTrainer(config(stacked(0))).source).toBe(emitTrainer(config(stacked(0), { dropout: false })).source);
    // p > 0 changes the trainer only while training.
    expect(emitTrainer(config(stacked(0.5), { dropout: false })).source).toBe(emitTrainer(config(stacked(0), { dropout: false })).source);
    expect(emitTrainer(config(stacked(0.5))).source).not.toBe(emitTrainer(config(stacked(0))).source);
  });

  it('outside training dropout adds no node; while training, one mask input per call (a stack: one per layer output, shared by both directions)', () => {
    const build = () => cell('gru', { input: 2, hidden: 3, output: 1, batch: 2, layers: 3, bidirectional: true, dropout: 0.2 });
    expect(withContext(build).input.map((x) => x.name)).toEqual(['x']);
    const trained = withContext(() => withDropout(build));
    expect(trained.input.map((x) => x.name)).toEqual(['x', 'dropout_l0', 'dropout_l1']);
    expect(trained.input[1]!.node.shape).toEqual([2, 6]);
    expect(withContext(() => withDropout(() => droppedCell(0.1).build(2))).input.map((x) => x.name)).toEqual(['x', 'dropout.1', 'dropout.2', 'dropout.3']);
  });

  it('refuses a rate outside [0, 1) at the user\'s line', () => {
    expect(() => withContext(() => withDropout(() => dropout(input('x', [2, 2]), 1)))).toThrow(UnfoldError);
    expect(() => withContext(() => withDropout(() => dropout(input('x', [2, 2]), 1)))).toThrow(/dropout: p must be in \[0, 1\), got 1/);
  });
});

describe('from the command line', () => {
  let dir: string;
  const f = (p: string) => path.join(dir, p);
  const LSTM = ['--cell', 'lstm', '--input', '2', '--hidden', '5', '--output', '1', '--layers', '2'];
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-dropout-'));
    const windows = [0, 1].map((w) => ({ x: { shape: [2, 6, 2], data: values(24, w + 1) }, y: { shape: [2, 6, 1], data: values(12, w + 7) } }));
    fs.writeFileSync(f('w.json'), JSON.stringify({ windows }));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const losses = (stdout: string) => stdout.trim().split('\n').map((l) => (JSON.parse(l) as { loss: number }).loss);

  it('--dropout 0 is training without dropout bit for bit; --dropout 0.5 trains otherwise, deterministically, and resumes exactly', async () => {
    const common = ['train', ...LSTM, '--data', f('w.json'), '--log-json', '--no-plots', '--dtype', 'f64'];
    const [none, zero, half, again] = [
      await unfold(...common, '--steps', '6'), await unfold(...common, '--steps', '6', '--dropout', '0'),
      await unfold(...common, '--steps', '6', '--dropout', '0.5', '--save', f('half.json')), await unfold(...common, '--steps', '6', '--dropout', '0.5'),
    ];
    for (const r of [none, zero, half, again]) expect(r.code, r.stderr).toBe(0);
    expect(zero.stdout).toBe(none.stdout);
    expect(half.stdout).toBe(again.stdout);
    expect(losses(half.stdout)).not.toEqual(losses(none.stdout));
    // 3 + 3 steps through a checkpoint: the masks go on from the saved generator state.
    expect((await unfold(...common, '--steps', '3', '--dropout', '0.5', '--save', f('h3.json'))).code).toBe(0);
    // The rate comes from the checkpoint's model record, the masks from its generator state.
    const resumed = await unfold('train', '--params', f('h3.json'), '--data', f('w.json'), '--log-json', '--no-plots', '--dtype', 'f64', '--steps', '3');
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(losses(resumed.stdout)).toEqual(losses(half.stdout).slice(3));
  }, 60_000);

  it('nn.LSTM(num_layers=2, dropout=0.5) in eval mode is what run gives for its parameters', async () => {
    const fx = JSON.parse(fs.readFileSync(new URL('./fixtures/torch/dropout-lstm-eval.json', import.meta.url), 'utf8')) as {
      params: Record<string, unknown>; x: { shape: number[]; data: number[] }; outputEval: { data: number[] }; outputTrain: { data: number[] };
    };
    fs.writeFileSync(f('p.json'), JSON.stringify(fx.params));
    fs.writeFileSync(f('x.json'), JSON.stringify({ x: fx.x }));
    const r = await unfold('run', '--cell', 'lstm', '--input', '3', '--hidden', '4', '--output', '2', '--layers', '2', '--params', f('p.json'), '--data', f('x.json'), '--json');
    expect(r.code, r.stderr).toBe(0);
    const o = (JSON.parse(r.stdout) as { outputs: { o: { data: number[] } } }).outputs.o.data;
    const err = Math.max(...o.map((v, i) => Math.abs(v - fx.outputEval.data[i]!)));
    expect(err).toBeLessThan(1e-12);
    expect(Math.max(...o.map((v, i) => Math.abs(v - fx.outputTrain.data[i]!)))).toBeGreaterThan(1e-3);
  });

  it('--dropout with a model file, or a bad rate, is one clear line', async () => {
    const file = await unfold('train', 'graphs/sincos.ts', '--dropout', '0.5', '--no-plots');
    expect(file.code).toBe(2);
    expect(file.stderr).toMatch(/^unfold train: --dropout 0\.5 goes with a --cell of --layers L \(nn\.LSTM's dropout between layers\); a model file calls dropout\(x, p\) itself\n/);
    const bad = await unfold('train', ...LSTM, '--data', f('w.json'), '--dropout', '1', '--no-plots');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--dropout must be in \[0, 1\), got "1"/);
  });
});

describe('dropout in a graph model (a mask over a whole tensor, drawn by the graph trainer)', () => {
  /** o = c ⊙ dropout(x, p) over [B, T, I]: with x = 1 and c = 1 the output is the mask itself. */
  const graphMask = (p: number): ModelDef => defineModel({
    name: 'graph-mask',
    graph: (batch) => {
      const x = input('x', [batch, T, I]), y = input('y', [batch, T, I]);
      const c = param('c', [I], 1);
      return graphModel({ inputs: { x, y }, outputs: { o: mul(dropout(x, p), c) } });
    },
  });
  const ones = new Float64Array(B * T * I).fill(1);
  const make = async (p: number) => (await importTrainer(emitGraphTrainer({
    model: graphMask(p), source: 'graph-mask', batch: B, dtype: 'f64', loss: { kind: 'mse' }, optimizer: { name: 'sgd', lr: 0 }, dropout: true,
  }).source)).createTrainer({ seed: 5 }) as unknown as GraphTrainerInstance;

  it('step() draws a fresh mask, kept with probability 1 − p and scaled by 1/(1 − p); predict() and gradients() draw none; the generator state replays it', async () => {
    const p = 0.3, n = B * T * I;
    const t = await make(p);
    t.step({ x: ones, y: ones });
    const first = t.outputs()['o']!.data;
    const zeros = first.filter((v) => v === 0).length;
    // Binomial(n, p): within 5 standard deviations.
    expect(Math.abs(zeros - n * p)).toBeLessThan(5 * Math.sqrt(n * p * (1 - p)));
    for (const v of first) expect([0, 1 / (1 - p)]).toContain(v);
    const state = t.getRandomState!();
    t.step({ x: ones, y: ones });
    const second = t.outputs()['o']!.data;
    expect(second).not.toEqual(first);
    expect(t.predict({ x: ones, y: ones })['o']!.data.every((v) => v === 1)).toBe(true);
    t.gradients({ x: ones, y: ones });
    expect(t.outputs()['o']!.data.every((v) => v === 1)).toBe(true);
    t.setRandomState!(state);
    t.step({ x: ones, y: ones });
    expect(t.outputs()['o']!.data).toEqual(second);
  });

  it('dropout(x, 0) draws nothing: the trainer has no generator', async () => {
    const t = await make(0);
    expect(t.getRandomState).toBeUndefined();
    t.step({ x: ones, y: ones });
    expect(t.outputs()['o']!.data.every((v) => v === 1)).toBe(true);
  });
});
