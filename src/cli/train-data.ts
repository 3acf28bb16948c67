// Training data for `unfold train`: the model's own task or a windows file, checked against the model's per-step shapes (every window and tensor named in errors), served as flat batch-first arrays and cut into --tbptt pieces.
import { UnfoldError } from '../ir/errors.ts';
import { sameShape, shapeToString, sizeOf, type Shape, type Tensor } from '../ir/tensor.ts';
import type { ModelDef, TaskDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { checkTensorMap, readTensorMap, readWindowsFile } from '../io/tensor-file.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { buildAt, initialKey, lossOutput, paramShapes, probeModel, stateFileShape } from './run-data.ts';
import { checkLengths } from '../transforms/lengths.ts';
import { isClassIndices, oneHotTargets } from './class-labels.ts';
import { isCheckpointEntry, OPTIMIZER_STATE, OPTIMIZER_STEPS, readResume, TRAIN_LOSSES, TRAIN_RANDOM, type Resume } from './checkpoint.ts';

/** One window (or --tbptt piece) as the trainer takes it: flat row-major [B, T, I] and [B, T, O]. */
export interface TrainWindow {
  /** Its batch size B (a file's windows may differ in it: a partial last batch). */
  readonly batch: number;
  /** Absent for an input-free model. */
  readonly x?: Float64Array;
  readonly y: Float64Array;
  /** Initial states by state name, flat in the state's own shape. */
  readonly initial?: Readonly<Record<string, Float64Array>>;
  /** Valid steps of each batch row (1..T), as pack_padded_sequence. */
  readonly lengths?: readonly number[];
}

/** Where the windows come from; T up to seqLen, B one of `batches`. */
export interface DataSource {
  /** For messages and the summary: `the task of graphs/sincos.ts`, `w.json (2 windows)`. */
  readonly describe: string;
  /** The first window's batch size. */
  readonly batch: number;
  /** Every batch size the windows have, the first window's first (a trainer is compiled for each). */
  readonly batches: readonly number[];
  /** The longest window's T (the trainer's τ); every window has this T unless `mixedLengths`. */
  readonly seqLen: number;
  /** Whether windows differ in T. */
  readonly mixedLengths: boolean;
  /** Whether any window carries per-row lengths (the trainer is compiled for them). */
  readonly lengths: boolean;
  /** Features per step: I (0 for an input-free model) and O. */
  readonly input: number;
  readonly output: number;
  /** Windows in a file (cycled through); undefined for a task, whose window k is made on demand. */
  readonly count: number | undefined;
  /** Window k (0-based, counting every window trained on; a file's windows repeat). */
  window(k: number): TrainWindow;
  /** Whether window(k) is the task's own data (whose times the prediction plot may know). */
  readonly fromTask: boolean;
}

/** The per-step feature sizes the data must have, from a throwaway build of the model. */
interface Features {
  readonly input: number;
  readonly inputName: string | undefined;
  readonly output: number;
  readonly outputName: string;
}

function features(model: ModelDef, loss: LossSpec): Features {
  const probe = probeModel(model);
  if (probe.input.length > 1) {
    throw new UnfoldError(`model "${model.name}" has ${probe.input.length} inputs (${probe.input.map((x) => x.name).join(', ')}); train feeds one input x per window`);
  }
  // A per-step leaf is [B, ...rest]; the data holds [B, T, prod(rest)] (the same row-major values).
  const perRow = (shape: Shape) => sizeOf(shape.slice(1));
  const x = probe.input[0];
  const o = lossOutput(probe, loss);
  return { input: x ? perRow(x.node.shape) : 0, inputName: x?.name, output: perRow(o.node.shape), outputName: o.name };
}

/** Checks one window's x and y against the model and against the first window's shapes. */
function checkWindow(
  where: string,
  f: Features,
  x: Tensor | undefined,
  y: Tensor,
  lengths?: Tensor,
): string[] {
  const problems: string[] = [];
  const rank3 = (t: Tensor, name: string, features: number, what: string) => {
    if (t.shape.length !== 3 || t.shape[2] !== features || t.shape[0]! < 1 || t.shape[1]! < 1) {
      problems.push(`${where}.${name} has shape ${shapeToString(t.shape)}; the model's ${what} needs [B, T, ${features}] (batch-first, B and T at least 1)`);
      return false;
    }
    return true;
  };
  const yOk = rank3(y, 'y', f.output, `output "${f.outputName}"`);
  let xOk = false;
  if (f.inputName === undefined) {
    if (x !== undefined && sizeOf(x.shape) > 0) {
      problems.push(`${where}.x has shape ${shapeToString(x.shape)}, but the model has no input; give x as an empty [B, T, 0] (or, for a task, no x)`);
    }
  } else if (x === undefined) {
    problems.push(`${where} has no x; the model's input "${f.inputName}" needs [B, T, ${f.input}]`);
  } else {
    xOk = rank3(x, 'x', f.input, `input "${f.inputName}"`);
  }
  if (xOk && yOk && (x!.shape[0] !== y.shape[0] || x!.shape[1] !== y.shape[1])) {
    problems.push(`${where}: x ${shapeToString(x!.shape)} and y ${shapeToString(y.shape)} disagree on B or T`);
  }
  if (lengths !== undefined && yOk) {
    try {
      checkLengths(lengths, y.shape[0]!, y.shape[1]!, where);
    } catch (e) {
      if (!(e instanceof UnfoldError)) throw e;
      problems.push(e.message);
    }
  }
  return problems;
}

/**
 * A windows file `{"windows": [{"x", "y", "lengths"?, "<state>0"?}, ...]}`, every window checked
 * before training starts. Windows may differ in T (one trainer, compiled for the longest, takes
 * them all) and in B (a partial last batch: a trainer per batch size). `y` may be class indices
 * [B, T] for a cross-entropy loss; a window's `h0`/`c0` is the state at its start.
 */
export function fileSource(file: string, model: ModelDef, loss: LossSpec): DataSource {
  const f = features(model, loss);
  const probe = probeModel(model);
  const stateKeys = probe.state.map((s) => initialKey(s.name));
  const raw = readWindowsFile(file, stateKeys);
  const problems: string[] = [];
  // States are [B, ...] ([L·D, B, H] for a program): the model built at each window's B says their shapes.
  const built = new Map<number, Recurrence>();
  const windows = raw.map((w, i) => {
    const where = `${file}: windows[${i}]`;
    let y = w.y;
    if (isClassIndices(y, f.output)) {
      try {
        y = oneHotTargets(y, f.output, loss, `${where}.y`, w.lengths?.data);
      } catch (e) {
        if (!(e instanceof UnfoldError)) throw e;
        // One line for the bad label: the shape checks below would only repeat that y is not one-hot.
        problems.push(e.message);
        return { x: w.x, y, lengths: w.lengths, initial: undefined };
      }
    }
    const windowProblems = checkWindow(where, f, w.x, y, w.lengths);
    problems.push(...windowProblems);
    const initial: Record<string, Float64Array> = {};
    if (windowProblems.length === 0 && w.initial.size > 0) {
      const B = y.shape[0]!;
      if (!built.has(B)) built.set(B, buildAt(model, B));
      const rec = built.get(B)!;
      for (const s of rec.state) {
        const t = w.initial.get(initialKey(s.name));
        if (t === undefined) continue;
        if (sameShape(t.shape, stateFileShape(rec, s.node.shape)) || sameShape(t.shape, s.node.shape)) initial[s.name] = t.data;
        else problems.push(`${where}.${initialKey(s.name)} has shape ${shapeToString(t.shape)}; the state at the start of a window of B = ${B} is ${shapeToString(stateFileShape(rec, s.node.shape))}`);
      }
    }
    return { x: w.x, y, lengths: w.lengths, initial: Object.keys(initial).length > 0 ? initial : undefined };
  });
  // One problem per line, at most a screenful: the first ones are the ones to fix.
  if (problems.length > 0) throw new UnfoldError(problems.slice(0, 12).join('\n') + (problems.length > 12 ? `\n(and ${problems.length - 12} more)` : ''));
  const Ts = windows.map((w) => w.y.shape[1]!);
  const T = Math.max(...Ts);
  const batches = [...new Set(windows.map((w) => w.y.shape[0]!))];
  return {
    describe: `${file} (${windows.length} window${windows.length === 1 ? '' : 's'}${batches.length > 1 ? `, B = ${batches.join(', ')}` : ''})`,
    batch: batches[0]!, batches, seqLen: T, input: f.input, output: f.output,
    mixedLengths: Ts.some((t) => t !== T),
    lengths: windows.some((w) => w.lengths !== undefined),
    count: windows.length,
    fromTask: false,
    window: (k) => {
      const w = windows[k % windows.length]!;
      return {
        batch: w.y.shape[0]!,
        ...(f.inputName !== undefined ? { x: w.x.data } : {}),
        y: w.y.data,
        ...(w.initial !== undefined ? { initial: w.initial } : {}),
        ...(w.lengths !== undefined ? { lengths: Array.from(w.lengths.data) } : {}),
      };
    },
  };
}

/** The model's own task: window 0 fixes the shapes, every later window is checked as it is made. */
export function taskSource(model: ModelDef, task: TaskDef, source: string, loss: LossSpec): DataSource {
  const f = features(model, loss);
  const where = (k: number) => `${source}: task window ${k}`;
  const make = (k: number) => {
    try {
      return task.window(k);
    } catch (e) {
      if (e instanceof UnfoldError) throw e;
      throw new UnfoldError(`${where(k)}: the task's window(${k}) threw: ${(e as Error)?.message ?? String(e)}`);
    }
  };
  const w0 = make(0);
  const check = (k: number, w: ReturnType<TaskDef['window']>) => {
    const problems = checkWindow(where(k), f, w.x, w.y, w.lengths);
    if (k !== 0 && w.y.shape[0] !== w0.y.shape[0]) problems.push(`${where(k)}.y has shape ${shapeToString(w.y.shape)}, but ${where(0)}.y has ${shapeToString(w0.y.shape)}; a task's windows must have the same batch size B`);
    // A task's windows are made as training goes: they keep window 0's T (the trainer's τ).
    if (k !== 0 && w.y.shape[1] !== w0.y.shape[1]) problems.push(`${where(k)}.y has shape ${shapeToString(w.y.shape)}, but ${where(0)}.y has ${shapeToString(w0.y.shape)}; a task's windows must have the same T`);
    if (k !== 0 && (w.lengths !== undefined) !== (w0.lengths !== undefined)) problems.push(`${where(k)}: ${w.lengths ? 'has' : 'has no'} lengths where ${where(0)} ${w0.lengths ? 'has' : 'has none'}; a task's windows carry lengths all or none`);
    if (problems.length > 0) throw new UnfoldError(problems.join('\n'));
  };
  check(0, w0);
  const [B, T] = w0.y.shape as [number, number, number];
  // States are [B, ...]: built once at the data's B to check the task's initial states by shape.
  let states: ReadonlyMap<string, Shape> | undefined;
  const initialOf = (k: number, initial: Readonly<Record<string, Tensor>> | undefined) => {
    if (initial === undefined) return undefined;
    states ??= new Map(buildAt(model, B).state.map((s) => [s.name, s.node.shape]));
    const out: Record<string, Float64Array> = {};
    for (const [name, t] of Object.entries(initial)) {
      const shape = states.get(name);
      if (shape === undefined) throw new UnfoldError(`${where(k)}: initial state "${name}" is not a state of the model (states: ${[...states.keys()].join(', ')})`);
      if (!sameShape(t.shape, shape) && !sameShape(t.shape, [1, ...shape])) {
        throw new UnfoldError(`${where(k)}: initial state "${name}" has shape ${shapeToString(t.shape)}, expected ${shapeToString(shape)}`);
      }
      out[name] = t.data;
    }
    return out;
  };
  return {
    describe: `the task of ${source}`,
    batch: B, batches: [B], seqLen: T, input: f.input, output: f.output,
    mixedLengths: false,
    lengths: w0.lengths !== undefined,
    count: undefined,
    fromTask: true,
    window: (k) => {
      const w = k === 0 ? w0 : make(k);
      if (k !== 0) check(k, w);
      const initial = initialOf(k, w.initial);
      return {
        batch: B,
        ...(f.inputName !== undefined ? { x: w.x!.data } : {}),
        y: w.y.data,
        ...(initial !== undefined ? { initial } : {}),
        ...(w.lengths !== undefined ? { lengths: Array.from(w.lengths.data) } : {}),
      };
    },
  };
}

/** Steps [t0, t0 + K) of a flat [B, T, F] sequence: the --tbptt piece. */
function sliceSteps(seq: Float64Array, B: number, T: number, F: number, t0: number, K: number): Float64Array {
  const out = new Float64Array(B * K * F);
  for (let b = 0; b < B; b++) out.set(seq.subarray((b * T + t0) * F, (b * T + t0 + K) * F), b * K * F);
  return out;
}

/** Piece p (K steps) of a window of T steps. */
export function piece(w: TrainWindow, src: DataSource, p: number, K: number): TrainWindow {
  const { batch: B } = w;
  const T = src.seqLen;
  if (K === T) return w;
  return {
    batch: B,
    ...(w.x !== undefined ? { x: sliceSteps(w.x, B, T, src.input, p * K, K) } : {}),
    y: sliceSteps(w.y, B, T, src.output, p * K, K),
  };
}

// Checkpoint entries that hold the optimizer's step count and buffers (Adam's moments, momenta).
export { OPTIMIZER_STATE, OPTIMIZER_STEPS } from './checkpoint.ts';

/** A --params file: exactly the model's parameters, plus optional `<state>0` and optimizer entries (what --save writes). */
export interface StartValues {
  readonly params: Map<string, Tensor>;
  /** Initial states by state name, flat in the state's own shape. */
  readonly state: Record<string, Float64Array>;
  /** The optimizer's state when the file is a checkpoint, to resume exactly where it stopped. */
  readonly optimizer?: { readonly steps: number; readonly buffers: Float64Array };
  /** Where the checkpointed run stopped, to continue its data from there. */
  readonly resume?: Resume;
  /** The loss of every step the checkpointed run took (its history, for the plots and the next checkpoint). */
  readonly losses?: readonly number[];
  /** The dropout generator's state when the run stopped. */
  readonly random?: number;
}

/**
 * Reads a --params file against the model built at the data's B: every parameter present with its
 * shape, nothing unknown; `<state>0` entries as [1, ...stateShape] (as --save and `unfold grad`
 * write them) or the state's own shape. Every problem is reported at once.
 */
export function readStartValues(file: string, rec: Recurrence): StartValues {
  const all = readTensorMap(file);
  const expected = paramShapes(rec);
  const params = new Map<string, Tensor>();
  const states = new Map<string, Tensor>();
  const stateKeys = new Map(rec.state.filter((s) => !expected.has(initialKey(s.name))).map((s) => [initialKey(s.name), s]));
  const problems: string[] = [];
  let optimizer: StartValues['optimizer'];
  const steps = all.get(OPTIMIZER_STEPS), buffers = all.get(OPTIMIZER_STATE);
  if (steps !== undefined || buffers !== undefined) {
    const n = steps?.data[0];
    if (!steps || !buffers || steps.data.length !== 1 || !Number.isInteger(n) || n! < 0) {
      problems.push(`${file}: "${OPTIMIZER_STEPS}" (one non-negative integer) and "${OPTIMIZER_STATE}" go together`);
    } else optimizer = { steps: n!, buffers: buffers.data };
  }
  const resume = readResume(all, file, problems);
  const history = all.get(TRAIN_LOSSES);
  const random = all.get(TRAIN_RANDOM)?.data;
  if (random && (random.length !== 1 || !Number.isInteger(random[0]) || random[0]! < 0 || random[0]! > 0xffffffff)) problems.push(`${file}: "${TRAIN_RANDOM}" must be one integer in [0, 2^32)`);
  if (history && (history.shape.length !== 1 || (resume && history.data.length !== resume.steps))) {
    problems.push(`${file}: "${TRAIN_LOSSES}" must hold one loss per step taken (${resume?.steps ?? '?'}), found shape [${history.shape.join(', ')}]`);
  }
  for (const [name, t] of all) {
    if (isCheckpointEntry(name)) continue;
    (stateKeys.has(name) ? states : params).set(name, t);
  }
  try {
    checkTensorMap(params, expected, { file, kind: 'parameter' });
  } catch (e) {
    if (!(e instanceof UnfoldError)) throw e;
    problems.push(e.message);
  }
  const state: Record<string, Float64Array> = {};
  for (const [key, t] of states) {
    const s = stateKeys.get(key)!;
    if (sameShape(t.shape, [1, ...s.node.shape]) || sameShape(t.shape, s.node.shape)) state[s.name] = t.data;
    else problems.push(`${file}: initial state "${key}" has shape ${shapeToString(t.shape)}, expected ${shapeToString(stateFileShape(rec, s.node.shape))}`);
  }
  if (problems.length > 0) throw new UnfoldError(problems.join('\n'));
  return { params, state, ...(optimizer ? { optimizer } : {}), ...(resume ? { resume } : {}), ...(history ? { losses: Array.from(history.data) } : {}), ...(random ? { random: random[0]! } : {}) };
}
