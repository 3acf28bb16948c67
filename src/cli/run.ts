// `unfold run`: a model forward only, any number of steps, through the compiled inference module — every output and state s(1..N) as JSON, or drawn (outputs over t; an input-free system's trajectory, its orbit for a 2-D state).
import { stackLayout } from '../dsl/sequence.ts';
import path from 'node:path';
import { UnfoldError } from '../ir/errors.ts';
import { runGraphForward } from './graph-model.ts';
import { sameShape, shapeToString, sizeOf, tensor, type Shape, type Tensor } from '../ir/tensor.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { Dtype } from '../ir/tensor.ts';
import type { InferenceInstance } from '../emit/inference.ts';
import { describeOsError, makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { readTensorMap, tensorToJson } from '../io/tensor-file.ts';
import { choiceFlag, numericsError, optionalIntFlag, parse, UsageError, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { buildAt, initialKey, LENGTHS, lossOf, probeModel, readParams, sequenceShape, targetName } from './run-data.ts';
import { checkLengths } from '../transforms/lengths.ts';
import { evaluationTrainer } from './grad.ts';
import { headOnFinalStates } from './evaluator.ts';
import { headOption } from './head-option.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

/** What a forward run starts from: B, the number of steps N, the inputs x(1..N) [B, N, ...] and s(0). */
export interface ForwardData {
  readonly batch: number;
  readonly steps: number;
  /** By input name, batch-first [B, N, ...]. */
  readonly inputs: ReadonlyMap<string, Tensor>;
  /** By state name, flat in the state's own shape (zeros where none was given). */
  readonly initial: ReadonlyMap<string, Float64Array>;
  readonly source: string;
  /** Valid steps of each row (1..N), as pack_padded_sequence: a row's state stops at its length. */
  readonly lengths?: readonly number[];
}

/**
 * A forward run: every output and every state s(1..N), batch-first [B, N, ...]. A program
 * (stacked or bidirectional layers) reports instead, as `grad` does, its top layer's output
 * [B, N, D·H] and its final state [L·D, B, H]: its states at t are not one value per step.
 */
export interface ForwardResult {
  readonly outputs: Map<string, Tensor>;
  readonly states: Map<string, Tensor>;
  readonly hiddenOutputs?: Tensor;
  readonly finalState?: Map<string, Tensor>;
}

/** Steps of an input-free run when neither --tau nor the model's task says. */
export const DEFAULT_STEPS = 20;

/** Row-major [B, ...rest] at step t of a [B, N, ...rest] sequence. */
export function stepSlice(seq: Tensor, t: number): Float64Array {
  const [B, N] = seq.shape as [number, number];
  const K = sizeOf(seq.shape) / (B * N);
  const out = new Float64Array(B * K);
  for (let b = 0; b < B; b++) out.set(seq.data.subarray((b * N + t) * K, (b * N + t + 1) * K), b * K);
  return out;
}

/** Per-step blocks [B, ...rest] back into [B, N, ...rest]. */
export function stackBlocks(blocks: readonly ArrayLike<number>[], step: Shape): Tensor {
  const N = blocks.length;
  const shape = sequenceShape(step, N);
  const B = step.length === 0 ? 1 : step[0]!;
  const K = sizeOf(step) / B;
  const data = new Float64Array(B * N * K);
  blocks.forEach((blk, t) => {
    for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) data[(b * N + t) * K + k] = blk[b * K + k]!;
  });
  return { shape, data };
}

/**
 * A run's data file: the inputs as [B, T, ...] (absent for an input-free model), the target `y`
 * (optional, not used) and initial states `<state>0` as [1, ...shape] or the state's own shape.
 * B comes from the inputs, else from an initial state, else 1.
 */
export function readForwardData(file: string, model: ModelDef, tau: number | undefined): { rec: Recurrence; data: ForwardData } {
  return forwardData(readTensorMap(file), model, tau, file);
}

export function forwardData(tensors: ReadonlyMap<string, Tensor>, model: ModelDef, tau: number | undefined, source: string): { rec: Recurrence; data: ForwardData } {
  const probe = probeModel(model);
  const target = targetName(lossOf(model));
  const known = new Set([...probe.input.map((x) => x.name), target, ...probe.state.map((s) => initialKey(s.name)), LENGTHS]);
  const unknown = [...tensors.keys()].filter((k) => !known.has(k));
  if (unknown.length > 0) {
    throw new UnfoldError(`${source}: unknown tensor${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}; a run's data holds ${[...known].map((k) => `"${k}"`).join(', ')}`);
  }
  // B from the first input [B, T, ...], else from an initial state ([1, B, ...] or [B, ...]).
  let batch: number | undefined;
  let steps: number | undefined;
  const x0 = probe.input[0];
  if (x0) {
    const x = tensors.get(x0.name);
    if (!x) throw new UnfoldError(`${source}: no "${x0.name}"; the model's input needs [B, T${x0.node.shape.slice(1).map((d) => `, ${d}`).join('')}]`);
    if (x.shape.length !== x0.node.shape.length + 1 || x.shape[0]! < 1 || x.shape[1]! < 1) {
      throw new UnfoldError(`${source}: "${x0.name}" has shape ${shapeToString(x.shape)}; expected a batch-first sequence [B, T${x0.node.shape.slice(1).map((d) => `, ${d}`).join('')}]`);
    }
    batch = x.shape[0]!;
    steps = x.shape[1]!;
    if (tau !== undefined && tau > steps) throw new UnfoldError(`--tau ${tau}: ${source} gives "${x0.name}" for ${steps} steps only`);
    if (tau !== undefined) steps = tau;
  } else {
    for (const s of probe.state) {
      const t = tensors.get(initialKey(s.name));
      if (!t) continue;
      const rank = s.node.shape.length;
      batch = t.shape.length === rank + 1 && t.shape[0] === 1 ? t.shape[1] : t.shape.length === rank ? t.shape[0] : undefined;
      if (batch === undefined) throw new UnfoldError(`${source}: initial state "${initialKey(s.name)}" has shape ${shapeToString(t.shape)}; expected [1, B${s.node.shape.slice(1).map((d) => `, ${d}`).join('')}] or [B${s.node.shape.slice(1).map((d) => `, ${d}`).join('')}]`);
      break;
    }
    steps = tau ?? model.task?.seqLen ?? DEFAULT_STEPS;
  }
  const B = batch ?? 1;
  const rec = buildAt(model, B);
  const inputs = new Map<string, Tensor>();
  for (const x of rec.input) {
    const t = tensors.get(x.name);
    const full = t?.shape[1] ?? 0;
    const want = sequenceShape(x.node.shape, full);
    if (!t || !sameShape(t.shape, want) || full < steps!) {
      throw new UnfoldError(`${source}: "${x.name}" has shape ${t ? shapeToString(t.shape) : 'nothing'}, expected ${shapeToString(sequenceShape(x.node.shape, Math.max(full, steps!)))}`);
    }
    // The first N steps of the data (all of it without --tau).
    inputs.set(x.name, full === steps ? t : stackBlocks(Array.from({ length: steps! }, (_, i) => stepSlice(t, i)), x.node.shape));
  }
  const initial = new Map<string, Float64Array>();
  for (const s of rec.state) {
    const t = tensors.get(initialKey(s.name));
    if (t && !sameShape(t.shape, s.node.shape) && !sameShape(t.shape, [1, ...s.node.shape])) {
      // A program's state is [L·D, B, H] as it is; a single recurrence's [1, ...shape] or its own shape.
      const want = stackLayout(rec) ? shapeToString(s.node.shape) : `${shapeToString([1, ...s.node.shape])} (or ${shapeToString(s.node.shape)})`;
      throw new UnfoldError(`${source}: initial state "${initialKey(s.name)}" has shape ${shapeToString(t.shape)}, expected ${want}`);
    }
    initial.set(s.name, t ? Float64Array.from(t.data) : tensor(s.node.shape).data);
  }
  const lengthsTensor = tensors.get(LENGTHS);
  const lengths = lengthsTensor && checkLengths(lengthsTensor, B, steps!, source);
  return { rec, data: { batch: B, steps: steps!, inputs, initial, source, ...(lengths ? { lengths } : {}) } };
}

/** The model's own task window 0 as a run's data (its x and initial states), else zeros for an input-free model. */
function defaultData(model: ModelDef, source: string, tau: number | undefined): { rec: Recurrence; data: ForwardData } {
  const probe = probeModel(model);
  const tensors = new Map<string, Tensor>();
  if (model.task) {
    const w = model.task.window(0);
    if (w.x && probe.input[0]) tensors.set(probe.input[0].name, w.x);
    for (const [name, t] of Object.entries(w.initial ?? {})) tensors.set(initialKey(name), t);
    return forwardData(tensors, model, tau, `the task of ${source} (window 0)`);
  }
  if (probe.input.length > 0) {
    throw new UnfoldError(`model "${model.name}" (${source}) has input ${probe.input.map((x) => `"${x.name}"`).join(', ')} and no task of its own; give --data FILE with ${probe.input.map((x) => `"${x.name}": [B, T${x.node.shape.slice(1).map((d) => `, ${d}`).join('')}]`).join(', ')}`);
  }
  return forwardData(tensors, model, tau, `zero initial state`);
}

/** Runs N steps through an inference module, from data.initial. */
export function runSteps(inf: InferenceInstance, rec: Recurrence, data: ForwardData): ForwardResult {
  inf.reset();
  inf.setState(Object.fromEntries(data.initial));
  const outs = rec.outputs.map(() => [] as Float64Array[]);
  const states = rec.state.map(() => [] as Float64Array[]);
  for (let t = 0; t < data.steps; t++) {
    inf.step(...rec.input.map((x) => stepSlice(data.inputs.get(x.name)!, t)));
    const o = inf.outputs(), s = inf.getState();
    rec.outputs.forEach((x, k) => outs[k]!.push(Float64Array.from(o[x.name]!.data)));
    rec.state.forEach((x, k) => states[k]!.push(Float64Array.from(s[x.name]!.data)));
  }
  return {
    outputs: new Map(rec.outputs.map((o, k) => [o.name, stackBlocks(outs[k]!, o.node.shape)])),
    states: new Map(rec.state.map((s, k) => [s.name, stackBlocks(states[k]!, s.node.shape)])),
  };
}

/**
 * The whole window through its generated trainer's forward pass: a program (a reverse scan needs
 * every step before its first output, so there is no step-at-a-time module for it), or any model
 * under per-row lengths (the inference module steps every row alike). A program reports its top
 * layer's output and final state; a recurrence its states s(1..N) (under lengths, held from each
 * row's length on).
 */
export async function runWhole(model: ModelDef, source: string, rec: Recurrence, data: ForwardData, dtype: Dtype, params: ReadonlyMap<string, Tensor> | undefined, checkNumerics = false): Promise<ForwardResult> {
  const B = data.batch, N = data.steps;
  const { trainer } = await evaluationTrainer({ model, source, batch: B, tau: N, dtype, loss: { kind: 'mse' }, form: 'rolled', ...(data.lengths ? { lengths: true } : {}), ...(checkNumerics ? { checkNumerics: true } : {}) }, params);
  trainer.setState(Object.fromEntries(data.initial));
  let o: Float64Array;
  try {
    o = trainer.predict(...rec.input.map((x) => data.inputs.get(x.name)!.data), undefined, ...(data.lengths ? [data.lengths] : []));
  } catch (e) {
    numericsError(e);
  }
  const out = rec.outputs[0]!;
  const outputs = new Map([[out.name, { shape: [B, N, ...out.node.shape.slice(1)], data: Float64Array.from(o) }]]);
  if (!stackLayout(rec)) {
    // s(0) … s(N), t-major: the run reports s(1..N) batch-first.
    const seq = trainer.stateSequence!();
    const states = new Map(rec.state.map((s) => {
      const size = sizeOf(s.node.shape), all = seq[s.name]!.data;
      return [s.name, stackBlocks(Array.from({ length: N }, (_, t) => all.slice((t + 1) * size, (t + 2) * size)), s.node.shape)];
    }));
    return { outputs, states };
  }
  const hidden = trainer.hiddenOutputs!();
  const final = trainer.finalState!();
  return {
    outputs,
    states: new Map(),
    hiddenOutputs: { shape: [B, N, hidden.length / (B * N)], data: hidden },
    finalState: new Map(Object.entries(final).map(([k, t]) => [k, { shape: t.shape, data: Float64Array.from(t.data) }])),
  };
}

/**
 * The run with its output from the head on the final states instead of each step's (`--head final`,
 * as `train --head final` trained it): [B, 1, O], one per row, beside the states as before.
 */
function withFinalHead(r: ForwardResult, rec: Recurrence, B: number, params: ReadonlyMap<string, Tensor>, directions: number): ForwardResult {
  // A program reports its final states; a single recurrence's h_n is s(N), held from each row's length on.
  const final = r.finalState ?? new Map([...r.states].map(([k, t]) => {
    const N = t.shape[1]!, size = sizeOf(t.shape) / (B * N);
    const data = new Float64Array(B * size);
    for (let b = 0; b < B; b++) data.set(t.data.subarray((b * N + N - 1) * size, (b * N + N) * size), b * size);
    return [k, { shape: [B, ...t.shape.slice(2)], data }];
  }));
  const o = headOnFinalStates(Object.fromEntries(final), Object.fromEntries(params), directions, B);
  const name = rec.outputs[0]!.name;
  return { ...r, outputs: new Map([[name, { shape: [B, 1, o.length / B], data: o }]]) };
}

/** Emits and imports the model's inference module at batch B, with the given parameters (else its seeded init). */
export async function inferenceFor(model: ModelDef, source: string, batch: number, dtype: Dtype, params: ReadonlyMap<string, Tensor> | undefined): Promise<InferenceInstance> {
  const { loadInference } = await import('../emit/inference.ts');
  const mod = await loadInference({ model, source, batch, dtype });
  return mod.createInference(params ? { params: Object.fromEntries([...params].map(([k, t]) => [k, t.data])) } : {});
}

/** `{"outputs": {...}, "states": {...}}`, every tensor [B, N, ...]; a non-finite value is refused, naming the tensor. */
export function forwardJson(r: ForwardResult): string {
  const part = (what: string, m: ReadonlyMap<string, Tensor>) => Object.fromEntries([...m].map(([k, t]) => [k, tensorToJson(t, `${what}.${k}`)]));
  if (r.finalState) {
    return JSON.stringify({ outputs: part('outputs', r.outputs), hiddenOutputs: tensorToJson(r.hiddenOutputs!, 'hiddenOutputs'), finalState: part('finalState', r.finalState) }) + '\n';
  }
  return JSON.stringify({ outputs: part('outputs', r.outputs), states: part('states', r.states) }) + '\n';
}

/** Batch row 0 of a [B, N, ...] sequence as components over t. */
function row0(t: Tensor): number[][] {
  const [B, N] = t.shape.length >= 2 ? (t.shape as [number, number]) : [1, t.shape[0]!];
  const K = sizeOf(t.shape) / (B * N);
  return Array.from({ length: K }, (_, c) => Array.from({ length: N }, (_, j) => t.data[j * K + c]!));
}

async function drawRun(r: ForwardResult, rec: Recurrence, model: string, dir: string, initial: ReadonlyMap<string, Float64Array>): Promise<string[]> {
  const { seriesPlotSvg, phasePortraitSvg } = await import('../plot/run.ts');
  const files: string[] = [];
  const put = (name: string, svg: string) => {
    const f = path.join(dir, name);
    writeFileAtomic(f, svg);
    files.push(f);
  };
  const steps = (t: Tensor) => Array.from({ length: t.shape.length >= 2 ? t.shape[1]! : t.shape[0]! }, (_, j) => j + 1);
  for (const [name, t] of r.outputs) put(`run-${name}.svg`, await seriesPlotSvg({ name, t: steps(t), values: row0(t) }, { title: `${model}: output ${name} over t (batch row 0)` }));
  // An input-free system is its trajectory: every state over t, and the orbit of a 2-D state.
  if (rec.input.length === 0) {
    for (const [name, t] of r.states) {
      // Drawn from s(0), where the run starts (the JSON holds s(1..N)).
      const s0 = initial.get(name)!;
      const values = row0(t).map((v, c) => [s0[c]!, ...v]);
      const ts = [0, ...steps(t)];
      put(`run-state-${name}.svg`, await seriesPlotSvg({ name, t: ts, values }, { title: `${model}: state ${name} over t, from s(0) (batch row 0)` }));
      if (values.length === 2) put(`run-orbit-${name}.svg`, await phasePortraitSvg({ name, t: ts, values }, { title: `${model}: orbit of ${name} from s(0) (batch row 0)` }));
    }
  }
  return files;
}

export const run: Command = {
  name: 'run',
  summary: COMMAND_SUMMARIES.run,
  usage: `unfold run ${MODEL_USAGE} [--params FILE] [--data FILE] [--tau N] [--dtype f64|f32] [--head last|final] [--json] [--check-numerics] [-o DIR]`,
  async run(argv) {
    const { values, positionals } = parse('run', argv, {
      ...modelOptions,
      params: { type: 'string' },
      data: { type: 'string' },
      tau: { type: 'string' },
      dtype: { type: 'string' },
      json: { type: 'boolean' },
      'check-numerics': { type: 'boolean' },
      head: { type: 'string' },
      out: { type: 'string', short: 'o' },
    });
    const tau = optionalIntFlag('run', 'tau', values.tau);
    const dtype = choiceFlag<Dtype>('run', 'dtype', values.dtype, ['f64', 'f32'], 'f64');
    if (values.json && values.out !== undefined) throw new UsageError('run: --json prints to stdout and -o DIR draws into a directory; give one of them');
    const { model, source, record } = await resolveModel('run', positionals, values, values.params);
    const head = headOption('run', values.head, record);
    if (head === 'final' && (!values.json || values.params === undefined)) {
      throw new UsageError(`run: --head final gives the trained head's one output per row: print it with --json${values.params === undefined ? ' and give --params (the trained parameters)' : ''}`);
    }
    if (model.graph) {
      // A graph of scans: its outputs over whole tensors, forward only (each scan by its rule), as JSON.
      if (values.data === undefined || values.params === undefined) throw new UsageError(`run: model ${model.name} is a graph of scans; give --params FILE and --data FILE (its inputs)`);
      if (tau !== undefined || values.out !== undefined) throw new UsageError(`run: --${tau !== undefined ? 'tau' : 'out'} is for one recurrence; model ${model.name} is a graph of scans, run with --json`);
      process.stdout.write(JSON.stringify({ outputs: Object.fromEntries([...runGraphForward(model, values.data, values.params, dtype, values['check-numerics'] === true)].map(([k, t]) => [k, tensorToJson(t, `outputs.${k}`)])) }) + '\n');
      return 0;
    }
    const { rec, data } = values.data !== undefined ? readForwardData(values.data, model, tau) : defaultData(model, source, tau);
    const params = values.params !== undefined ? readParams(values.params, rec) : undefined;
    if (params === undefined) process.stderr.write(`note: no --params: ${model.name} runs with its initial parameters (seeded init)\n`);
    // --check-numerics runs the whole window through the trainer's checked forward pass.
    const checkNumerics = values['check-numerics'] === true;
    const whole = stackLayout(rec) !== undefined || data.lengths || checkNumerics || head === 'final';
    const stepped = whole ? await runWhole(model, source, rec, data, dtype, params, checkNumerics) : runSteps(await inferenceFor(model, source, data.batch, dtype, params), rec, data);
    const result = head === 'final' && 'cell' in record ? withFinalHead(stepped, rec, data.batch, params!, record.bidirectional ? 2 : 1) : stepped;
    if (values.json) {
      process.stdout.write(forwardJson(result));
      return 0;
    }
    const dir = values.out ?? path.join('out', model.name);
    try {
      makeDirectory(dir);
    } catch (e) {
      throw new UnfoldError(`-o ${dir}: cannot create the output directory: ${describeOsError(e)}`);
    }
    const files = await drawRun(result, rec, model.name, dir, data.initial);
    process.stdout.write(`ran ${model.name} for ${data.steps} steps (B = ${data.batch}) from ${data.source}\nwrote ${files.join(', ')}\n`);
    return 0;
  },
};
