// The generated trainer against the interpreter (same graph) and against PyTorch (fixtures):
// gradients, optimizer trajectories with carried state, determinism, no allocation in step.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { cell, type CellKind } from '../src/cells/rnn.ts';
import { defineModel, type ModelDef, type OptimizerSpec } from '../src/dsl/model.ts';
import { mulberry32 } from '../src/dsl/init.ts';
import { importTrainer } from '../src/emit/load.ts';
import { moduleJavaScript } from '../src/emit/javascript.ts';
import { emitTrainer, type Dtype, type Form } from '../src/emit/trainer.ts';
import { evaluate } from '../src/interp/evaluate.ts';
import { bindSequence, stackSteps } from '../src/interp/sequence.ts';
import type { Tensor } from '../src/ir/tensor.ts';

interface T { shape: number[]; data: number[] }
const fixture = (name: string) => JSON.parse(readFileSync(`test/fixtures/torch/${name}.json`, 'utf8'));

function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let diff = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / (scale || 1);
}

function cellModel(fx: { cell: string; input: number; hidden: number; output: number }): ModelDef {
  const kind = (fx.cell.startsWith('elman') ? 'elman' : fx.cell) as CellKind;
  const nonlinearity = fx.cell === 'elman-relu' ? 'relu' : 'tanh';
  return defineModel({ name: 'fixture', build: (batch) => cell(kind, { input: fx.input, hidden: fx.hidden, output: fx.output, batch, nonlinearity }) });
}

async function compiled(model: ModelDef, batch: number, tau: number, dtype: Dtype, optimizer: OptimizerSpec = { name: 'adam', lr: 0.01 }, extra: { clipNorm?: number; carryState?: boolean; form?: Form } = {}) {
  const emitted = emitTrainer({
    model, source: 'test', batch, tau, dtype, loss: { kind: 'mse' }, optimizer,
    carryState: extra.carryState ?? false, inputGrads: true, form: extra.form ?? 'auto',
    ...(extra.clipNorm !== undefined ? { clipNorm: extra.clipNorm } : {}),
  });
  return { emitted, module: await importTrainer(emitted) };
}

const params = (p: Record<string, T>) => Object.fromEntries(Object.entries(p).map(([k, v]) => [k, v.data]));

describe('generated trainer vs PyTorch gradients', () => {
  const cases = ['cell-elman-batch3', 'cell-elman-relu-mixed', 'cell-lstm-wide-input', 'cell-lstm-hidden1', 'cell-gru-mixed', 'cell-gru-t1', 'cell-elman-seed'];
  for (const name of cases) for (const form of ['unrolled', 'rolled'] as const) {
    it(`${name} (${form}): loss, outputs, states and every gradient within 1e-9`, async () => {
      const fx = fixture(name);
      const { module, emitted } = await compiled(cellModel(fx), fx.batch, fx.seqLen, 'f64', undefined, { form });
      expect(emitted.form).toBe(form);
      const tr = module.createTrainer({ params: params(fx.params) });
      tr.setState({ h: fx.data.h0.data, ...(fx.data.c0 ? { c: fx.data.c0.data } : {}) });
      const loss = tr.gradients(fx.data.x.data, fx.data.y.data);
      expect(Math.abs(loss - fx.loss) / fx.loss).toBeLessThan(1e-12);
      expect(relErr(tr.outputs(), fx.outputs.data)).toBeLessThan(1e-12);
      // s(1..τ) of the window = PyTorch's hidden outputs; s(τ) its final state.
      const hs = tr.stateSequence!()['h']!;
      const [B, T, H] = fx.hiddenOutputs.shape as [number, number, number];
      const hidden = Array.from({ length: B * T * H }, (_, f) => hs.data[(Math.floor(f / H) % T + 1) * B * H + Math.floor(f / (T * H)) * H + (f % H)]!);
      expect(relErr(hidden, fx.hiddenOutputs.data)).toBeLessThan(1e-12);
      const grads = tr.getGrads();
      for (const [k, g] of Object.entries(fx.grads as Record<string, T>)) {
        const ours = grads[k]?.data ?? tr.getInputGrads!()[k === 'h0' ? 'h0' : k === 'c0' ? 'c0' : k]!.data;
        expect(relErr(ours, g.data), k).toBeLessThan(1e-9);
      }
    });
  }
});

describe('generated trainer vs the interpreter', () => {
  for (const kind of ['elman', 'lstm', 'gru'] as const) {
    it(`${kind}: f64 to 1e-12 and f32 within float32 rounding`, async () => {
      const spec = { input: 3, hidden: 5, output: 2 };
      const B = 2, T = 4;
      const model = defineModel({ name: 'x', build: (b) => cell(kind, { ...spec, batch: b }) });
      const next = mulberry32(7);
      const rand = (n: number) => Array.from({ length: n }, () => 2 * next() - 1);
      const x: Tensor = { shape: [B, T, spec.input], data: Float64Array.from(rand(B * T * spec.input)) };
      const y: Tensor = { shape: [B, T, spec.output], data: Float64Array.from(rand(B * T * spec.output)) };
      for (const dtype of ['f64', 'f32'] as const) for (const form of ['unrolled', 'rolled'] as const) {
        const { emitted, module } = await compiled(model, B, T, dtype, undefined, { form });
        const tr = module.createTrainer({ seed: 3 });
        const loss = tr.gradients(x.data, y.data);
        const inputs = new Map<string, Float64Array>();
        bindSequence(inputs, 'x', x, B, T, spec.input);
        bindSequence(inputs, 'y', y, B, T, spec.output);
        for (const s of emitted.graph.unrolled.states[0]!) inputs.set(`${String(s.attrs['name'])}@0`, new Float64Array(s.shape[0]! * s.shape[1]!));
        const paramMap = new Map(Object.entries(tr.getParams()).map(([k, v]) => [k, Float64Array.from(v.data)]));
        const ref = evaluate(emitted.graph.grad.graph, paramMap, inputs, dtype);
        const tol = dtype === 'f64' ? 1e-12 : 1e-5;
        expect(Math.abs(loss - ref.get('loss')!.data[0]!) / Math.abs(loss)).toBeLessThan(tol);
        const outs = stackSteps(Array.from({ length: T }, (_, t) => ref.get(`o@${t + 1}`)!.data), B, spec.output);
        expect(relErr(tr.outputs(), outs.data)).toBeLessThan(tol);
        for (const [k, g] of Object.entries(tr.getGrads())) expect(relErr(g.data, ref.get(`grad:${k}`)!.data), `${dtype} ${form} ${k}`).toBeLessThan(tol);
      }
    });
  }
});

describe('training trajectories replay PyTorch (optimizer, clipping, carried state)', () => {
  for (const name of ['train-elman', 'train-elman-sgd', 'train-lstm', 'train-gru']) for (const form of ['unrolled', 'rolled'] as const) {
    it(`${name} (${form}): losses and parameters after every step within 1e-9`, async () => {
      const fx = fixture(name);
      const { amsgrad: _unused, ...optimizer } = fx.optimizer;
      const { module } = await compiled(cellModel(fx), fx.batch, fx.seqLen, 'f64', optimizer, { clipNorm: fx.clipNorm, carryState: true, form });
      const tr = module.createTrainer({ params: params(fx.params0) });
      fx.windows.forEach((w: { x: T; y: T }, k: number) => {
        const loss = tr.step(w.x.data, w.y.data);
        expect(Math.abs(loss - fx.losses[k]) / fx.losses[k], `loss ${k}`).toBeLessThan(1e-9);
        const after = tr.getParams();
        for (const [p, v] of Object.entries(fx.paramsAfter[k] as Record<string, T>)) expect(relErr(after[p]!.data, v.data), `${p} after ${k + 1}`).toBeLessThan(1e-9);
      });
      // The carried state is the final state of the last window.
      expect(relErr(tr.getState()['h']!.data, fx.finalState.h.data)).toBeLessThan(1e-9);
    });
  }
});

describe('emitted code', () => {
  it('is deterministic: compile twice, same bytes', () => {
    const model = cellModel({ cell: 'gru', input: 2, hidden: 3, output: 1 });
    const a = emitTrainer({ model, source: 's', batch: 2, tau: 3, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'adam', lr: 0.1 }, carryState: true });
    const b = emitTrainer({ model, source: 's', batch: 2, tau: 3, dtype: 'f32', loss: { kind: 'mse' }, optimizer: { name: 'adam', lr: 0.1 }, carryState: true });
    expect(a.source).toBe(b.source);
    expect(a.source).toMatch(/^\/\*\*\n \* @generated by unfold \d+\.\d+\.\d+ from s/);
    expect(a.source).not.toMatch(/^import /m);
  });

  it('names the model file\'s line above the statements it wrote, once per run, and "(derived)" above what the compiler built (the loss, the backward pass)', () => {
    const graph = readFileSync('graphs/dynamical-system.ts', 'utf8').split('\n');
    const step = graph.findIndex((l) => l.includes('step: ({ s }) =>')) + 1;
    // (The wasm trainer runs its whole step as one call into its module: no statement of it is TypeScript.)
    for (const form of ['trainer.ts']) {
      const trainer = readFileSync(`codegen/dynamical-system/${form}`, 'utf8');
      expect(trainer, form).toMatch(new RegExp(`^\\s*// graphs/dynamical-system\\.ts:${step}\\n`, 'm'));
      expect(trainer, form).toMatch(/^\s*\/\/ \(derived\)\n/m);
      // Every named line is one of the model file's, and no comment repeats the one before it.
      const comments = [...trainer.matchAll(/^\s*\/\/ (graphs\/[\w-]+\.ts:\d+|\(derived\))$/gm)].map((m) => m[1]!);
      for (const c of comments.filter((c) => c.startsWith('graphs/'))) expect(c).toBe(`graphs/dynamical-system.ts:${step}`);
      const lines = trainer.split('\n');
      lines.forEach((l, i) => { if (/^\s*\/\/ graphs\//.test(l)) expect(lines[i + 1]!.trim(), `${form}:${i + 2}`).not.toMatch(/^\/\/ graphs\//); });
    }
  });

  it('embeds the same PRNG as the compiler', async () => {
    const { module } = await compiled(cellModel({ cell: 'elman', input: 1, hidden: 4, output: 1 }), 1, 2, 'f64');
    const next = mulberry32(99);
    const k = 1 / Math.sqrt(4);
    const p = module.createTrainer({ seed: 99 }).getParams();
    const flat = Object.values(p).flatMap((t) => t.data);
    flat.forEach((v) => expect(v).toBe((2 * next() - 1) * k));
  });

  it('keeps the heap flat over 10,000 steps, allocating at most the returned loss', async () => {
    const { emitted } = await compiled(cellModel({ cell: 'elman', input: 1, hidden: 8, output: 1 }), 1, 10, 'f32', { name: 'adam', lr: 0.01 }, { carryState: true });
    // A child process with an explicit gc(), so the measurement is not at the mercy of GC timing.
    const dir = mkdtempSync(path.join(tmpdir(), 'unfold-heap-'));
    writeFileSync(path.join(dir, 'trainer.mjs'), await moduleJavaScript(emitted));
    writeFileSync(path.join(dir, 'run.mjs'), [
      "import { createTrainer } from './trainer.mjs';",
      'const tr = createTrainer();',
      'const x = new Float32Array(10).map((_, i) => Math.sin(i)), y = new Float32Array(10).map((_, i) => Math.cos(i));',
      'for (let i = 0; i < 10000; i++) tr.step(x, y);',
      // Allocation while stepping: the least of three windows (a JIT or GC event can land in one).
      'let during = Infinity;',
      'for (let w = 0; w < 3; w++) {',
      '  gc(); gc(); const before = process.memoryUsage().heapUsed;',
      '  for (let i = 0; i < 10000; i++) tr.step(x, y);',
      '  during = Math.min(during, process.memoryUsage().heapUsed - before);',
      '}',
      // Retention: the least growth of three later windows between full collections. A leak grows
      // every window; a one-off JIT or feedback allocation lands in one of them.
      'let retained = Infinity;',
      'for (let w = 0; w < 3; w++) {',
      '  gc(); gc(); const mid = process.memoryUsage().heapUsed;',
      '  for (let i = 0; i < 10000; i++) tr.step(x, y);',
      '  gc(); gc(); retained = Math.min(retained, process.memoryUsage().heapUsed - mid);',
      '}',
      'console.log(JSON.stringify({ retained, during }));',
    ].join('\n'));
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(dir, 'run.mjs')], { encoding: 'utf8' });
    rmSync(dir, { recursive: true, force: true });
    expect(r.stderr).toBe('');
    const { retained, during } = JSON.parse(r.stdout) as { retained: number; during: number };
    // Nothing is retained (a leak of 8 bytes a step would show as 80 kB). While stepping, V8 boxes
    // the returned loss (a 16-byte heap number, which a JS function returning a float cannot avoid);
    // any per-step array would be far more.
    expect(retained).toBeLessThan(40_000);
    expect(during / 10_000).toBeLessThan(100);
  });

  it('refuses a non-finite loss without touching the parameters', async () => {
    const { module } = await compiled(cellModel({ cell: 'elman', input: 1, hidden: 3, output: 1 }), 1, 2, 'f64');
    const tr = module.createTrainer({ seed: 1 });
    const before = JSON.stringify(tr.getParams());
    expect(() => tr.step([1, Number.NaN], [0, 0])).toThrow(/non-finite loss NaN at step 1/);
    expect(JSON.stringify(tr.getParams())).toBe(before);
    // A window of T ≤ τ = 2 steps: x gives T, and the target must agree with it.
    expect(() => tr.step([1], [0, 0])).toThrow(/target \[1, T, 1\]: expected 1 values \(T = 1\), got 2/);
    expect(() => tr.step([1, 2, 3], [0, 0, 0])).toThrow(/input x \[1, T, 1\]: expected T · 1 values with 1 ≤ T ≤ 2, got 3/);
  });
});
