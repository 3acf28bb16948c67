// What `grad` and `gradcheck` share: params/data files checked against the model (every tensor named, expected vs found), bound as x@t/y@t/s@0, results read back batch-first.
import { stackLayout } from '../dsl/sequence.ts';
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, type Graph, type Output } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString, sizeOf, tensor, type Shape, type Tensor } from '../ir/tensor.ts';
import { withContext } from '../dsl/context.ts';
import { mulberry32 } from '../dsl/init.ts';
import type { ModelDef, Window } from '../dsl/model.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';
import { stackSteps, stepOf } from '../interp/sequence.ts';
import { checkTensorMap, readTensorMap } from '../io/tensor-file.ts';
import { readParamsOnly } from './checkpoint.ts';
import { isWeighted, LOSS_NORM, LOSS_WEIGHT, lossNormalizer, lossWeights, type LossSpec } from '../transforms/loss.ts';
import { checkLengths, validTable, VALID } from '../transforms/lengths.ts';
import type { TrainingGraph } from '../transforms/training.ts';
import { isClassIndices, oneHotTargets } from './class-labels.ts';

/** The model's own loss (a task's), else MSE over every step — what `grad` and PyTorch's fixtures use. */
export function lossOf(model: ModelDef): LossSpec {
  return model.task?.loss ?? { kind: 'mse' };
}

/** The output the loss compares with the target (withLoss's rule: the named one, else the first). */
export function lossOutput(rec: Recurrence, loss: LossSpec): Named {
  if (rec.outputs.length === 0) throw new UnfoldError(`model "${rec.name}" has no output to compare with a target`);
  const o = loss.output === undefined ? rec.outputs[0] : rec.outputs.find((x) => x.name === loss.output);
  if (!o) throw new UnfoldError(`loss: no output "${loss.output}" (outputs: ${rec.outputs.map((x) => x.name).join(', ')})`);
  return o;
}

export const targetName = (loss: LossSpec): string => loss.target ?? 'y';

/** The file key of a state's initial value: `h0`, `c0`, `s0` (PyTorch's names for h and c). */
export const initialKey = (state: string): string => `${state}0`;

/**
 * An initial or final state as PyTorch lays it out: [L·D, ...] — a program's states have that axis
 * already, a single recurrence's state gains a leading 1.
 */
export function stateFileShape(rec: Recurrence, shape: readonly number[]): readonly number[] {
  return stackLayout(rec) ? shape : [1, ...shape];
}

/**
 * The batch-first sequence of a per-step leaf of shape [B, ...rest]: [B, T, ...rest]
 * (a rank-0 per-step value gives [T]).
 */
export function sequenceShape(step: Shape, T: number): number[] {
  return step.length === 0 ? [T] : [step[0]!, T, ...step.slice(1)];
}

/** A sequence's shape with B and T left symbolic, for messages: `[B, T, 2]`. */
function sequencePattern(step: Shape): string {
  return step.length === 0 ? '[T]' : `[B, T${step.slice(1).map((d) => `, ${d}`).join('')}]`;
}

/** Parameter names and shapes, in declaration order. */
export function paramShapes(rec: Recurrence): Map<string, readonly number[]> {
  return new Map(rec.params.map((p) => [p.name, p.node.shape]));
}

/** Reads a params file holding exactly the model's parameters, or a --save checkpoint's parameters alone (all problems reported at once). */
export function readParams(file: string, rec: Recurrence): Map<string, Tensor> {
  return readParamsOnly(file, paramShapes(rec), rec.state.map((s) => initialKey(s.name)));
}

/**
 * Builds the model once at a throwaway batch size, in its own context, to learn its leaf names and
 * loss before the data has told us B (model.build needs B; the data's shapes give it).
 */
export function probeModel(model: ModelDef): Recurrence {
  return buildAt(model, model.task?.batch ?? 1);
}

/** The model built at batch size B in its own compile context (for parameter and state shapes). */
export function buildAt(model: ModelDef, batch: number): Recurrence {
  return withContext(() => model.build(batch));
}

/** One window of data, validated against a built recurrence. */
export interface RunData {
  readonly batch: number;
  readonly tau: number;
  /** Every input and the target as a [B, T, ...] sequence, by leaf name. */
  readonly sequences: ReadonlyMap<string, Tensor>;
  /** Initial states by state name, in the state's own shape (zeros where the data gave none). */
  readonly initial: ReadonlyMap<string, Tensor>;
  /** Valid steps of each batch row (1..T), when the data gave `lengths`: rows past theirs are padding. */
  readonly lengths?: readonly number[];
  /** What the data is, for reports: a file name, "task window 0", ... */
  readonly source: string;
}

/** The sequences the data must hold: the inputs, then the target. */
function sequenceLeaves(rec: Recurrence, loss: LossSpec): { name: string; step: Shape }[] {
  return [...rec.input.map((x) => ({ name: x.name, step: x.node.shape })), { name: targetName(loss), step: lossOutput(rec, loss).node.shape }];
}

/**
 * B and T of a data map, from its first input (the target for an input-free model), using the
 * probe's per-step ranks. Every other sequence must agree; a disagreement is named before any
 * shape check, since it is the likelier mistake than a wrong feature size.
 */
export function dataDims(tensors: ReadonlyMap<string, Tensor>, probe: Recurrence, loss: LossSpec, file: string, fallbackBatch: number): { batch: number; tau: number } {
  const leaves = sequenceLeaves(probe, loss);
  const lead = leaves.find((l) => tensors.has(l.name));
  if (!lead) {
    throw new UnfoldError(`${file}: no ${leaves.map((l) => `"${l.name}"`).join(' or ')}; expected ${leaves.map((l) => `"${l.name}": ${sequencePattern(l.step)}`).join(', ')}`);
  }
  const dims = (name: string, step: Shape): { batch: number; tau: number } => {
    const t = tensors.get(name)!;
    const rank = sequenceShape(step, 1).length;
    if (t.shape.length !== rank) {
      throw new UnfoldError(`${file}: data tensor "${name}" has shape ${shapeToString(t.shape)}; expected a batch-first sequence ${sequencePattern(step)}`);
    }
    return step.length === 0 ? { batch: fallbackBatch, tau: t.shape[0]! } : { batch: t.shape[0]!, tau: t.shape[1]! };
  };
  const first = dims(lead.name, lead.step);
  for (const l of leaves) {
    if (l === lead || !tensors.has(l.name)) continue;
    const d = dims(l.name, l.step);
    if (l.step.length > 0 && lead.step.length > 0 && (d.batch !== first.batch || d.tau !== first.tau)) {
      throw new UnfoldError(
        `${file}: "${l.name}" ${shapeToString(tensors.get(l.name)!.shape)} has B = ${d.batch}, T = ${d.tau} but "${lead.name}" ` +
          `${shapeToString(tensors.get(lead.name)!.shape)} has B = ${first.batch}, T = ${first.tau}; every sequence must have the same batch size and length`,
      );
    }
    if (d.tau !== first.tau) {
      throw new UnfoldError(`${file}: "${l.name}" has T = ${d.tau} steps but "${lead.name}" has T = ${first.tau}`);
    }
  }
  if (first.batch < 1 || first.tau < 1) {
    throw new UnfoldError(`${file}: "${lead.name}" has shape ${shapeToString(tensors.get(lead.name)!.shape)}; B and T must be at least 1`);
  }
  return first;
}

/**
 * Checks a data map against the built recurrence: exactly the inputs and target as [B, T, ...]
 * sequences, and optionally `<state>0` initial states as [1, ...stateShape] (PyTorch's num_layers
 * axis) or in the state's own shape. Every problem is named with expected and found shapes.
 */
export function checkData(tensors: ReadonlyMap<string, Tensor>, rec: Recurrence, loss: LossSpec, dims: { batch: number; tau: number }, source: string): RunData {
  const { batch, tau } = dims;
  const leaves = sequenceLeaves(rec, loss);
  const expected = new Map<string, readonly number[]>(leaves.map((l) => [l.name, sequenceShape(l.step, tau)]));
  for (const s of rec.state) {
    const key = initialKey(s.name);
    if (expected.has(key)) {
      throw new UnfoldError(`${source}: the initial state of "${s.name}" is read from "${key}", which is also the name of an input or target; rename one of them`);
    }
    expected.set(key, stateFileShape(rec, s.node.shape));
  }
  const stateKeys = rec.state.map((s) => initialKey(s.name));
  if (expected.has(LENGTHS)) throw new UnfoldError(`${source}: "${LENGTHS}" names an input, target or initial state and per-row lengths alike; rename it`);
  expected.set(LENGTHS, [batch]);
  checkTensorMap(new Map(tensors), expected, {
    file: source, kind: 'data tensor', optional: [...stateKeys, LENGTHS],
    // The state's own shape is accepted too: same row-major data, without the leading 1.
    alsoAccepted: new Map(rec.state.map((s) => [initialKey(s.name), s.node.shape])),
    // A program's state has its [L·D, B, H] shape already: no leading 1 to leave out.
    ...(stackLayout(rec) ? {} : { misshapedNote: { names: stateKeys, note: "(an initial state may also be given in the state's own shape, without the leading 1)" } }),
  });
  const sequences = new Map(leaves.map((l) => [l.name, tensors.get(l.name)!]));
  const initial = new Map(
    rec.state.map((s) => {
      const t = tensors.get(initialKey(s.name));
      return [s.name, t ? { shape: s.node.shape, data: t.data } : tensor(s.node.shape)];
    }),
  );
  const lengthsTensor = tensors.get(LENGTHS);
  const lengths = lengthsTensor && checkLengths(lengthsTensor, batch, tau, source);
  return { batch, tau, sequences, initial, source, ...(lengths ? { lengths } : {}) };
}

/** The data key of per-row lengths: `{"lengths": {"shape": [B], "data": [...]}}`. */
export const LENGTHS = 'lengths';

/** Checks named tensors as `model`'s data: probes it for names, takes B and T from the data, builds it at B. */
function dataFor(given: ReadonlyMap<string, Tensor>, model: ModelDef, loss: LossSpec, source: string, probe = probeModel(model)): { rec: Recurrence; data: RunData } {
  const tensors = withOneHotTarget(given, probe, loss, source);
  const dims = dataDims(tensors, probe, loss, source, model.task?.batch ?? 1);
  const rec = model.build(dims.batch);
  return { rec, data: checkData(tensors, rec, loss, dims, source) };
}

/** The data with a class-index target y [B, T] (for an output [B, C] per step) made one-hot [B, T, C], as nn.CrossEntropyLoss reads indices. */
function withOneHotTarget(tensors: ReadonlyMap<string, Tensor>, probe: Recurrence, loss: LossSpec, source: string): ReadonlyMap<string, Tensor> {
  const name = targetName(loss);
  const y = tensors.get(name);
  const out = lossOutput(probe, loss).node.shape;
  if (y === undefined || out.length !== 2 || !isClassIndices(y, out[1]!)) return tensors;
  return new Map([...tensors, [name, oneHotTargets(y, out[1]!, loss, `${source}: "${name}"`, tensors.get(LENGTHS)?.data)]]);
}

/** Reads a data file for `model` (see checkData for what it must hold). */
export function readData(file: string, model: ModelDef, loss: LossSpec): { rec: Recurrence; data: RunData } {
  return dataFor(readTensorMap(file), model, loss, file);
}

/** A model's task window as data (its x is the first input, y the target), checked like a file. */
export function taskData(window: Window, model: ModelDef, loss: LossSpec, source: string): { rec: Recurrence; data: RunData } {
  const tensors = new Map<string, Tensor>();
  const probe = probeModel(model);
  if (window.x !== undefined) {
    const x = probe.input[0];
    if (!x) throw new UnfoldError(`${source}: the task gives x, but the model has no input`);
    tensors.set(x.name, window.x);
  }
  tensors.set(targetName(loss), window.y);
  for (const [name, t] of Object.entries(window.initial ?? {})) tensors.set(initialKey(name), t);
  if (window.lengths !== undefined) tensors.set(LENGTHS, window.lengths);
  return dataFor(tensors, model, loss, source, probe);
}

/**
 * Reads the data file (when given; else `fallback` builds the model and makes its data) and the
 * params file (when given) against the model built at the data's B. Problems in both files are
 * reported together, so one run shows everything to fix.
 */
export function readRunFiles(
  model: ModelDef,
  loss: LossSpec,
  files: { readonly params?: string | undefined; readonly data?: string | undefined },
  fallback: () => { rec: Recurrence; data: RunData },
): { rec: Recurrence; data: RunData; params: Map<string, Tensor> | undefined } {
  const problems: string[] = [];
  const attempt = <T>(f: () => T): T | undefined => {
    try {
      return f();
    } catch (e) {
      if (!(e instanceof UnfoldError)) throw e;
      problems.push(e.message);
      return undefined;
    }
  };
  const run = attempt(() => (files.data !== undefined ? readData(files.data, model, loss) : fallback()));
  // Without a built model (the data failed), parameters do not depend on B: the probe's shapes serve.
  const params = files.params === undefined ? undefined : attempt(() => readParams(files.params!, run?.rec ?? probeModel(model)));
  if (problems.length > 0 || run === undefined) throw new UnfoldError(problems.join('\n'));
  return { ...run, params };
}

/** Deterministic pseudo-random data in (−1, 1): inputs, targets and initial states (mulberry32). */
export function randomData(rec: Recurrence, loss: LossSpec, dims: { batch: number; tau: number }, seed: number): RunData {
  const next = mulberry32(seed);
  const fill = (shape: Shape): Tensor => {
    const t = tensor(shape);
    for (let i = 0; i < t.data.length; i++) t.data[i] = 2 * next() - 1;
    return t;
  };
  const sequences = new Map(sequenceLeaves(rec, loss).map((l) => [l.name, fill(sequenceShape(l.step, dims.tau))]));
  const initial = new Map(rec.state.map((s) => [s.name, fill(s.node.shape)]));
  return { ...dims, sequences, initial, source: `pseudo-random data (seed ${seed})` };
}

/** A per-step [S0, ...rest] block of a sequence, through the [B, T, K] helpers of interp/sequence. */
function stepBlock(seq: Tensor, t: number): Float64Array {
  if (seq.shape.length === 1) return seq.data.subarray(t - 1, t).slice();
  const [B, T] = seq.shape as [number, number];
  return stepOf({ shape: [B, T, sizeOf(seq.shape) / (B * T)], data: seq.data }, t);
}

/** Per-step blocks of shape `step` back into a [B, T, ...] sequence. */
function stackBlocks(blocks: readonly ArrayLike<number>[], step: Shape): Tensor {
  const shape = sequenceShape(step, blocks.length);
  if (step.length === 0) return tensor(shape, Array.from(blocks, (b) => b[0]!));
  const B = step[0]!;
  return { shape, data: stackSteps(blocks, B, sizeOf(step) / B).data };
}

/**
 * Leaf values of one window: `x@t`, `y@t` for t = 1..T and `s@0`; under lengths `valid@t`; for a
 * weighted loss (transforms/loss.ts) the weights `loss.w@t` and the normalizer `loss.N`.
 */
export function bindData(rec: Recurrence, data: RunData, loss: LossSpec): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, seq] of data.sequences) for (let t = 1; t <= data.tau; t++) out.set(`${name}@${t}`, stepBlock(seq, t));
  for (const s of rec.state) out.set(`${s.name}@0`, data.initial.get(s.name)!.data);
  if (rec.valid) validTable(data.lengths!, data.tau).forEach((v, t) => out.set(`${VALID}@${t + 1}`, v));
  if (isWeighted(loss, rec.valid !== undefined)) {
    const shape = lossOutput(rec, loss).node.shape;
    const lengths = data.lengths ?? new Array<number>(shape.length >= 2 ? shape[0]! : 1).fill(data.tau);
    lossWeights(loss.over ?? 'all', lengths, data.tau).forEach((w, t) => out.set(`${LOSS_WEIGHT}@${t + 1}`, w));
    out.set(LOSS_NORM, Float64Array.of(lossNormalizer(loss.kind, shape, loss.over ?? 'all', lengths)));
  }
  return out;
}

/**
 * The training graph with every state of every step as an output too (`h@t`, t < T; `h@T` is
 * already one), so a run is fully described by output names: the interpreter and a compiled
 * kernel answer the same question.
 */
export function runGraph(tg: TrainingGraph): Graph {
  const extra: Output[] = [];
  const T = tg.unrolled.tau;
  for (let t = 1; t < T; t++) tg.rec.state.forEach((s, i) => extra.push({ name: `${s.name}@${t}`, node: tg.unrolled.states[t]![i]! }));
  return makeGraph([...tg.grad.graph.outputs, ...extra]);
}

/** A gradient's report name: the parameter's, the input's, or `<state>0`. */
export interface GradTarget {
  readonly name: string;
  readonly kind: 'param' | 'input' | 'state';
  /** The leaf it differentiates: the parameter, input or state name. */
  readonly leaf: string;
}

/** Every name a gradient can be asked of, in report order: parameters, inputs, initial states. */
export function gradTargets(rec: Recurrence): GradTarget[] {
  const out: GradTarget[] = [
    ...rec.params.map((p) => ({ name: p.name, kind: 'param' as const, leaf: p.name })),
    ...rec.input.map((x) => ({ name: x.name, kind: 'input' as const, leaf: x.name })),
    ...rec.state.map((s) => ({ name: initialKey(s.name), kind: 'state' as const, leaf: s.name })),
  ];
  const seen = new Set<string>();
  for (const t of out) {
    if (seen.has(t.name)) throw new UnfoldError(`model "${rec.name}": "${t.name}" names both a parameter or input and an initial state; gradients would collide`);
    seen.add(t.name);
  }
  return out;
}

/** One evaluated window, batch-first: what `grad` prints. */
export interface RunResult {
  readonly loss: number;
  /** The output the loss compares, [B, T, ...]. */
  readonly outputs: Tensor;
  /** The first state at every step, [B, T, ...] (0 at a row's padded steps, as pad_packed_sequence). */
  readonly hiddenOutputs: Tensor;
  /** Each state after step T, [1, ...stateShape]. */
  readonly finalState: Map<string, Tensor>;
  /** By gradTargets name: parameters in their shape, inputs [B, T, ...], initial states [1, ...]. */
  readonly grads: Map<string, Tensor>;
  /** gradTargets names the loss does not depend on (their gradients are explicit zeros). */
  readonly unused: readonly string[];
}

/** A batch-first [B, T, ...] sequence with row b's steps from lengths[b] on set to 0 (pad_packed_sequence's padding). */
function padded(seq: Tensor, lengths: readonly number[] | undefined): Tensor {
  if (!lengths) return seq;
  const [B, T] = seq.shape as [number, number];
  const K = sizeOf(seq.shape) / (B * T);
  const data = seq.data.slice();
  for (let b = 0; b < B; b++) data.fill(0, (b * T + lengths[b]!) * K, (b + 1) * T * K);
  return { shape: seq.shape, data };
}

/** Reads the named outputs of runGraph(tg) back into batch-first tensors. */
export function collectRun(tg: TrainingGraph, loss: LossSpec, values: ReadonlyMap<string, Tensor>, lengths?: readonly number[]): RunResult {
  const { rec } = tg;
  const T = tg.unrolled.tau;
  const get = (name: string): Tensor => {
    const v = values.get(name);
    if (!v) throw new Error(`run: no value for output "${name}"`);
    return v;
  };
  const steps = Array.from({ length: T }, (_, i) => i + 1);
  const out = lossOutput(rec, loss);
  // The layer output: a recurrence's first state (a stack reports its top layer's: src/cli/sequence-run.ts).
  const first = rec.state[0]!;
  const hidden = stackBlocks(steps.map((t) => get(`${first.name}@${t}`).data), first.node.shape);
  const grads = new Map<string, Tensor>();
  for (const p of rec.params) grads.set(p.name, { shape: p.node.shape, data: get(`grad:${p.name}`).data });
  for (const x of rec.input) grads.set(x.name, stackBlocks(steps.map((t) => get(`grad:${x.name}@${t}`).data), x.node.shape));
  for (const s of rec.state) grads.set(initialKey(s.name), { shape: stateFileShape(rec, s.node.shape), data: get(`grad:${s.name}@0`).data });

  // vjp reports unused targets as nodes; an input counts as unused only if no step of it is used.
  const unusedNodes = new Set<Node>(tg.grad.unused);
  const unused: string[] = [];
  rec.params.forEach((p) => unusedNodes.has(p.node) && unused.push(p.name));
  rec.input.forEach((x, i) => tg.unrolled.inputs.every((xs) => unusedNodes.has(xs[i]!)) && unused.push(x.name));
  rec.state.forEach((s, i) => unusedNodes.has(tg.unrolled.states[0]![i]!) && unused.push(initialKey(s.name)));

  return {
    loss: get('loss').data[0]!,
    outputs: stackBlocks(steps.map((t) => get(`${out.name}@${t}`).data), out.node.shape),
    hiddenOutputs: padded(hidden, lengths),
    finalState: new Map(rec.state.map((s) => [s.name, { shape: stateFileShape(rec, s.node.shape), data: get(`${s.name}@${T}`).data }])),
    grads,
    unused,
  };
}
