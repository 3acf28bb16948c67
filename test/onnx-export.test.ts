// `unfold export --format onnx`: the exported files run in ONNX Runtime (onnxruntime-web, in this
// process) and give `unfold run`'s (or, with lengths, `unfold grad`'s) outputs and states on the same
// parameters and data — float32 to 1e-5, float64 to 1e-12 — for Elman, LSTM, GRU, a stacked LSTM, a
// bidirectional GRU and a DSL-written cell with lengths, at batch sizes other than the traced one;
// a stack() of a DSL cell against its trainer's predictions (export reads scans, never a program);
// the step form, safetensors weights, and each bad input one line.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withContext } from '../src/dsl/context.ts';
import { initialParams, mulberry32 } from '../src/dsl/init.ts';
import type { ModelDef } from '../src/dsl/model.ts';
import { resolveModel } from '../src/cli/model-args.ts';
import { formatTensorMap } from '../src/io/tensor-file.ts';
import { tensor } from '../src/ir/tensor.ts';
import { decodeModel } from '../src/onnx/proto.ts';
import { emitTrainer } from '../src/emit/trainer.ts';
import { importTrainer } from '../src/emit/load.ts';
import { unfold, type Result } from './helpers/cli.ts';
import { runOnnx, type Feed } from './helpers/ort.ts';

let dir: string;
const tmp = (name: string) => path.join(dir, name);
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unfold-onnx-export-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

interface TensorJson {
  shape: number[];
  data: number[];
}

function ok(r: Result): Result {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** One line naming the problem, a non-zero exit, no stack trace. */
function oneLine(r: Result, code: number, pattern: RegExp): void {
  expect(r.code, r.stdout).toBe(code);
  expect(r.stderr).toMatch(pattern);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

/** Model arguments as the CLI takes them, and the model they resolve to. */
async function modelOf(args: string[]): Promise<ModelDef> {
  const file = args[0]!.endsWith('.ts') ? [args[0]!] : [];
  const values: Record<string, unknown> = {};
  for (let i = file.length; i < args.length; i++) {
    const k = args[i]!.slice(2);
    if (k === 'bidirectional') values[k] = true;
    else values[k] = args[++i];
  }
  return (await resolveModel('test', file, values)).model;
}

/** Writes params (seeded apart from the default init) for a model, returns the file. */
function writeParams(model: ModelDef, name: string): string {
  const rec = withContext(() => model.build(1));
  const file = tmp(`${name}-params.json`);
  fs.writeFileSync(file, formatTensorMap(initialParams(rec, 77)));
  return file;
}

function randomTensor(shape: number[], seed: number, scale = 1) {
  const next = mulberry32(seed);
  return tensor(shape, Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * next() - 1) * scale));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

function close(onnx: { shape: number[]; data: number[] } | undefined, ref: TensorJson, tol: number, what: string): void {
  expect(onnx, what).toBeDefined();
  expect(onnx!.shape, what).toEqual(ref.shape);
  if (process.env.SHOW_DIFF) console.log("DIFF", what, maxDiff(onnx!.data, ref.data));
  expect(maxDiff(onnx!.data, ref.data), what).toBeLessThanOrEqual(tol);
}

const TOL = { f32: 1e-5, f64: 1e-12 } as const;

interface Case {
  readonly name: string;
  readonly model: string[];
  readonly input: number;
  readonly hidden: number;
  /** L·D: the leading axis of the states. */
  readonly slots: number;
  readonly states: readonly string[];
  readonly lengths?: boolean;
}

const CASES: Case[] = [
  { name: 'elman', model: ['--cell', 'elman', '--input', '2', '--hidden', '5', '--output', '3'], input: 2, hidden: 5, slots: 1, states: ['h'] },
  { name: 'lstm', model: ['--cell', 'lstm', '--input', '3', '--hidden', '4', '--output', '2'], input: 3, hidden: 4, slots: 1, states: ['h', 'c'] },
  { name: 'gru', model: ['--cell', 'gru', '--input', '2', '--hidden', '6', '--output', '1'], input: 2, hidden: 6, slots: 1, states: ['h'] },
  { name: 'lstm, lengths', model: ['--cell', 'lstm', '--input', '3', '--hidden', '4', '--output', '2'], input: 3, hidden: 4, slots: 1, states: ['h', 'c'], lengths: true },
  { name: 'stacked lstm', model: ['--cell', 'lstm', '--input', '2', '--hidden', '4', '--output', '2', '--layers', '2'], input: 2, hidden: 4, slots: 2, states: ['h', 'c'] },
  { name: 'bidirectional gru, lengths', model: ['--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '2', '--layers', '2', '--bidirectional'], input: 2, hidden: 3, slots: 4, states: ['h'], lengths: true },
  { name: 'DSL cell (graphs/adding-bidir.ts), lengths', model: ['graphs/adding-bidir.ts'], input: 2, hidden: 16, slots: 4, states: ['h'], lengths: true },
];

describe('export --form sequence runs in ONNX Runtime as unfold runs', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const model = await modelOf(c.model);
      const key = c.name.replace(/\W+/g, '-');
      const params = writeParams(model, key);
      // Two batch sizes and lengths, neither the traced B.
      for (const [B, T] of [[3, 5], [2, 7]] as const) {
        const x = randomTensor([B, T, c.input], 11 + B);
        const init = Object.fromEntries(c.states.map((s, i) => [`${s}0`, randomTensor([c.slots, B, c.hidden], 21 + i + B, 0.5)]));
        const lengths = B === 3 ? [5, 2, 4] : [7, 1];
        const data: Record<string, ReturnType<typeof tensor>> = { x, ...init };
        let ref: { outputs: Record<string, TensorJson>; states?: Record<string, TensorJson>; hiddenOutputs?: TensorJson; finalState?: Record<string, TensorJson> };
        const dataFile = tmp(`${key}-data-${B}.json`);
        if (c.lengths) {
          // `run` steps every row through all T; with lengths the reference is `grad`'s forward pass.
          const O = model.build(1).outputs[0]!.node.shape[1]!;
          fs.writeFileSync(dataFile, formatTensorMap({ ...data, y: randomTensor([B, T, O], 5), lengths: tensor([B], lengths) }));
          const g = JSON.parse(ok(await unfold('grad', ...c.model, '--params', params, '--data', dataFile)).stdout) as { outputs: TensorJson; hiddenOutputs: TensorJson; finalState: Record<string, TensorJson> };
          ref = { outputs: { o: g.outputs }, hiddenOutputs: g.hiddenOutputs, finalState: g.finalState };
        } else {
          fs.writeFileSync(dataFile, formatTensorMap(data));
          ref = JSON.parse(ok(await unfold('run', ...c.model, '--params', params, '--data', dataFile, '--json')).stdout);
        }
        for (const dtype of ['f32', 'f64'] as const) {
          const file = tmp(`${key}-${dtype}.onnx`);
          if (B === 3) ok(await unfold('export', ...c.model, '--params', params, '--format', 'onnx', '-o', file, '--dtype', dtype, ...(c.lengths ? ['--lengths'] : [])));
          const feeds: Record<string, Feed> = { x: { shape: x.shape, data: x.data } };
          for (const [k, t] of Object.entries(init)) feeds[k] = c.slots === 1 ? { shape: t.shape, data: t.data } : { shape: t.shape, data: t.data };
          if (c.lengths) feeds['lengths'] = { shape: [B], data: lengths, int64: true };
          const out = await runOnnx(file, feeds, dtype);
          const tol = TOL[dtype];
          close(out['o'], ref.outputs['o']!, tol, `${dtype} o`);
          if (ref.finalState) {
            // One scan reports its states at every step (frozen past a row's length) instead of the hidden outputs.
            if (c.slots > 1) close(out['hiddenOutputs'], ref.hiddenOutputs!, tol, `${dtype} hiddenOutputs`);
            for (const s of c.states) close(out[`${s}n`], ref.finalState[s]!, tol, `${dtype} ${s}n`);
          } else {
            for (const s of c.states) {
              const seq = ref.states![s]!;
              close(out[s], seq, tol, `${dtype} ${s}`);
              // The final state: step T of every row.
              const last = Array.from({ length: B }, (_, b) => seq.data.slice((b * T + T - 1) * c.hidden, (b * T + T) * c.hidden)).flat();
              close(out[`${s}n`], { shape: [1, B, c.hidden], data: last }, tol, `${dtype} ${s}n`);
            }
          }
        }
      }
    }, 120_000);
  }
});

describe('a stack() of a DSL cell exports from its graph of scans', () => {
  // Export asks the model's scan nodes (src/onnx/scans.ts) what its scans are: nothing under src/onnx
  // reads a program's stages, so programs can leave the DSL without export noticing.
  it('src/onnx reads no program', () => {
    const onnxDir = path.join(__dirname, '../src/onnx');
    for (const file of fs.readdirSync(onnxDir).filter((f) => f.endsWith('.ts'))) {
      const code = fs.readFileSync(path.join(onnxDir, file), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
      for (const use of [/\.program\b/, /dsl\/program/, /\btopStages\b/, /\bstageSuffix\b/, /\bmapStages\b/, /\bwithLengths\b/]) expect(code, `${file}: ${use}`).not.toMatch(use);
    }
  });

  it('graphs/adding-bidir.ts in ONNX Runtime gives its trainer\'s predictions, for windows of two lengths', async () => {
    const model = await modelOf(['graphs/adding-bidir.ts']);
    const B = 3, tau = 7, H = 16;
    const params = initialParams(withContext(() => model.build(1)), 91);
    const trainer = (await importTrainer(emitTrainer({
      model, source: 'graphs/adding-bidir.ts', batch: B, tau, dtype: 'f64', loss: { kind: 'mse', over: 'last' },
      optimizer: { name: 'sgd', lr: 0.1 }, carryState: false, lengths: true,
    }))).createTrainer({ params: Object.fromEntries(params) });
    const paramsFile = tmp('adding-bidir-trainer-params.json');
    fs.writeFileSync(paramsFile, formatTensorMap(params));
    const files = { f32: tmp('adding-bidir-trainer-f32.onnx'), f64: tmp('adding-bidir-trainer-f64.onnx') };
    for (const [dtype, file] of Object.entries(files)) ok(await unfold('export', 'graphs/adding-bidir.ts', '--params', paramsFile, '--format', 'onnx', '--lengths', '--dtype', dtype, '-o', file));
    for (const [T, lengths] of [[7, [7, 3, 5]], [4, [2, 4, 1]]] as const) {
      const x = randomTensor([B, T, 2], 50 + T);
      const h0 = randomTensor([4, B, H], 60 + T, 0.5);
      trainer.setState({ h: h0.data });
      const o = trainer.predict(x.data, undefined, lengths);
      const ref = { o: { shape: [B, T, 1], data: Array.from(o) }, hiddenOutputs: { shape: [B, T, 2 * H], data: Array.from(trainer.hiddenOutputs!()) }, hn: trainer.finalState!()['h']! };
      for (const dtype of ['f32', 'f64'] as const) {
        const out = await runOnnx(files[dtype], { x: { shape: x.shape, data: x.data }, h0: { shape: h0.shape, data: h0.data }, lengths: { shape: [B], data: lengths, int64: true } }, dtype);
        for (const [k, v] of Object.entries(ref)) close(out[k], v, TOL[dtype], `T = ${T}, ${dtype} ${k}`);
      }
    }
  }, 120_000);
});

describe('an input-free system is an ONNX Loop over `steps`', () => {
  for (const [graph, s0] of [['graphs/hopfield.ts', 'docs/data/hopfield-corrupted.json'], ['graphs/dynamical-system.ts', undefined]] as const) {
    it(graph, async () => {
      const model = await modelOf([graph]);
      const key = path.basename(graph, '.ts');
      const params = writeParams(model, key);
      const state = withContext(() => model.build(1)).state[0]!;
      const B = s0 ? 1 : 3, N = 8;
      const data = s0 ? JSON.parse(fs.readFileSync(s0, 'utf8')) as Record<string, TensorJson> : { [`${state.name}0`]: randomTensor([1, B, ...state.node.shape.slice(1)], 3) };
      const dataFile = tmp(`${key}-data.json`);
      fs.writeFileSync(dataFile, s0 ? JSON.stringify(data) : formatTensorMap(data as Record<string, ReturnType<typeof tensor>>));
      const ref = JSON.parse(ok(await unfold('run', graph, '--params', params, '--data', dataFile, '--tau', String(N), '--json')).stdout) as { outputs: Record<string, TensorJson>; states: Record<string, TensorJson> };
      for (const dtype of ['f32', 'f64'] as const) {
        const file = tmp(`${key}-${dtype}.onnx`);
        ok(await unfold('export', graph, '--params', params, '--format', 'onnx', '--dtype', dtype, '-o', file));
        const init = data[`${state.name}0`]!;
        const out = await runOnnx(file, { steps: { shape: [], data: [N], int64: true }, [`${state.name}0`]: { shape: init.shape, data: Array.from(init.data) } }, dtype);
        for (const [k, t] of Object.entries(ref.outputs)) close(out[k], t, TOL[dtype], `${dtype} ${k}`);
        close(out[state.name], ref.states[state.name]!, TOL[dtype], `${dtype} ${state.name}`);
      }
    }, 60_000);
  }
});

describe('export --form step', () => {
  for (const c of CASES.filter((k) => !k.lengths)) {
    it(`${c.name}: one step from h0 is run's first step`, async () => {
      const model = await modelOf(c.model);
      const key = `step-${c.name.replace(/\W+/g, '-')}`;
      const params = writeParams(model, key);
      const B = 4;
      const x = randomTensor([B, 1, c.input], 31);
      const init = Object.fromEntries(c.states.map((s, i) => [`${s}0`, randomTensor([c.slots, B, c.hidden], 41 + i, 0.5)]));
      const dataFile = tmp(`${key}-data.json`);
      fs.writeFileSync(dataFile, formatTensorMap({ x, ...init }));
      const ref = JSON.parse(ok(await unfold('run', ...c.model, '--params', params, '--data', dataFile, '--json')).stdout) as { outputs: Record<string, TensorJson>; states?: Record<string, TensorJson>; finalState?: Record<string, TensorJson> };
      const file = tmp(`${key}.onnx`);
      ok(await unfold('export', ...c.model, '--params', params, '--format', 'onnx', '--form', 'step', '--dtype', 'f64', '-o', file));
      const feeds: Record<string, Feed> = { x: { shape: [B, c.input], data: x.data } };
      for (const [k, t] of Object.entries(init)) feeds[k] = { shape: t.shape, data: t.data };
      const out = await runOnnx(file, feeds, 'f64');
      const o = ref.outputs['o']!;
      close(out['o'], { shape: [B, o.shape[2]!], data: o.data }, TOL.f64, 'o');
      for (const s of c.states) {
        const next = ref.finalState ? ref.finalState[s]! : { shape: [1, B, c.hidden], data: ref.states![s]!.data };
        close(out[`${s}n`], next, TOL.f64, `${s}n`);
      }
    }, 60_000);
  }
});

describe('export: the file and its names', () => {
  it('opset 17, IR version 8, inputs and initializers named as the model', async () => {
    const file = tmp('names.onnx');
    ok(await unfold('export', '--cell', 'lstm', '--input', '2', '--hidden', '3', '--output', '1', '--format', 'onnx', '-o', file));
    const m = decodeModel(fs.readFileSync(file), file);
    expect(m.irVersion).toBe(8);
    expect(m.opset).toBe(17);
    expect(m.graph.inputs.map((i) => i.name)).toEqual(['x', 'h0', 'c0']);
    expect(m.graph.inputs[0]!.dims).toEqual(['B', 'T', 2]);
    expect(m.graph.outputs.map((i) => i.name)).toEqual(['o', 'h', 'hn', 'c', 'cn']);
    expect(m.graph.initializers.map((t) => t.name)).toEqual(['rnn.weight_ih_l0', 'rnn.weight_hh_l0', 'rnn.bias_ih_l0', 'rnn.bias_hh_l0', 'out.weight', 'out.bias']);
    expect(m.graph.nodes.filter((n) => n.opType === 'Scan')).toHaveLength(1);
  });

  it('--format safetensors writes the weights alone', async () => {
    const file = tmp('w.safetensors');
    ok(await unfold('export', '--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '1', '--format', 'safetensors', '--dtype', 'f64', '-o', file));
    const bytes = fs.readFileSync(file);
    const n = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header['rnn.weight_ih_l0']).toEqual({ dtype: 'F64', shape: [9, 2], data_offsets: [0, 144] });
    expect(Object.keys(header)).toHaveLength(6);
    expect((8 + n) % 8).toBe(0);
  });

  it('bad input: one line naming the problem', async () => {
    const cellArgs = ['--cell', 'gru', '--input', '2', '--hidden', '3', '--output', '1'];
    oneLine(await unfold('export', ...cellArgs, '--layers', '2', '--bidirectional', '--format', 'onnx', '--form', 'step', '-o', tmp('s.onnx')), 1, /--form step: a bidirectional model has no single step/);
    oneLine(await unfold('export', ...cellArgs, '-o', tmp('s.onnx')), 2, /--format is required/);
    oneLine(await unfold('export', ...cellArgs, '--format', 'tflite', '-o', tmp('s.onnx')), 2, /--format must be one of onnx, safetensors/);
    oneLine(await unfold('export', ...cellArgs, '--format', 'onnx'), 2, /-o FILE is required/);
    oneLine(await unfold('export', ...cellArgs, '--format', 'onnx', '--form', 'step', '--lengths', '-o', tmp('s.onnx')), 2, /one step, which has no lengths/);
    oneLine(await unfold('export', ...cellArgs, '--format', 'onnx', '-o', path.join(dir, 'no/such/dir/m.onnx')), 1, /m\.onnx/);
  });
});
