// `unfold grad`: one window's loss, outputs, states and every gradient (params, inputs, initial states) as one JSON object in PyTorch's layout.
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, sizeOf, type Shape, type Tensor } from '../ir/tensor.ts';
import { derivedBuilder } from '../dsl/context.ts';
import { stackLayout } from '../dsl/sequence.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import type { TensorData, TrainerInstance } from '../emit/load.ts';
import type { TrainerConfig } from '../emit/config.ts';
import type { EmittedTrainer } from '../emit/trainer.ts';
import { evaluate, type Bindings, type Dtype } from '../interp/evaluate.ts';
import { stepOf } from '../interp/sequence.ts';
import { tensorToJson } from '../io/tensor-file.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { trainingGraph, type TrainingGraph } from '../transforms/training.ts';
import { choiceFlag, numericsError, parse, UsageError, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { bindData, collectRun, gradTargets, initialKey, lossOutput, readRunFiles, runGraph, targetName, type RunData, type RunResult } from './run-data.ts';
import { lossOptions, lossSpec, LOSS_USAGE } from './compile-options.ts';
import { withLengths } from '../transforms/lengths.ts';
import { formatGraphRun, readGraphData, readGraphParams, runGraphCompiled, runGraphModel } from './graph-model.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

export type Engine = 'interpreter' | 'compiled';
export type FormChoice = 'unrolled' | 'rolled' | 'auto';

/** What both engines answer: runGraph's output values by name, and the training graph they belong to. */
interface EngineRun {
  readonly tg: TrainingGraph;
  /** `loss`, `o@t`, `s@t` (t = 1..T), `grad:<param>`, `grad:<input>@t`, `grad:<state>@0`: what collectRun reads. */
  readonly values: ReadonlyMap<string, Tensor>;
}

/** The interpreter: the training graph with every state as an output, evaluated node by node. */
function runInterpreter(rec: Recurrence, data: RunData, loss: LossSpec, params: Bindings, dtype: Dtype, checkNumerics: boolean): EngineRun {
  const b = derivedBuilder();
  const run = data.lengths ? withLengths(rec, b) : rec;
  const tg = trainingGraph(run, data.tau, loss, b, { inputGrads: true, stateGrads: true });
  return { tg, values: evaluate(runGraph(tg), params, bindData(run, data, loss), dtype, { checkNumerics }) };
}

/**
 * The compiled engine: emits the standalone trainer for the same ModelDef at the data's B and T
 * (with input and initial-state gradients), imports it, and runs one gradients() call without an
 * update. Its values come back under the interpreter's output names, and the trainer's own
 * training graph (built from its own build of the model) stands in for the interpreter's, so both
 * engines go through collectRun and one formatter. Only the output the loss compares is read
 * back — the trainer keeps the others but exposes just that one, and collectRun needs no other.
 */
async function runCompiled(model: ModelDef, source: string, data: RunData, loss: LossSpec, params: ReadonlyMap<string, Tensor>, dtype: Dtype, form: FormChoice, checkNumerics: boolean, packed: TrainerConfig['packed']): Promise<EngineRun> {
  const { batch: B, tau: T } = data;
  const { emitted, trainer } = await evaluationTrainer({
    model, source, batch: B, tau: T, dtype, loss, inputGrads: true, form,
    ...(data.lengths ? { lengths: true } : {}), ...(checkNumerics ? { checkNumerics: true } : {}), ...(packed !== undefined ? { packed } : {}),
  }, params);
  const tg = emitted.graph;
  const { rec } = tg;
  const out = lossOutput(rec, loss);
  // The trainer's arrays are batch-first [B, T, K] over per-step values [B, ...]; a per-step leaf
  // without that leading B has no such layout.
  for (const leaf of [...rec.input, out]) {
    if (leaf.node.shape[0] !== B) {
      throw new UnfoldError(`grad --engine compiled: "${leaf.name}" has per-step shape ${shapeToString(leaf.node.shape)}, without the batch axis B = ${B} first; use --engine interpreter`);
    }
  }

  trainer.setState(Object.fromEntries(rec.state.map((s) => [s.name, data.initial.get(s.name)!.data])));
  const sequence = (name: string): Float64Array => data.sequences.get(name)!.data;
  const lengths = data.lengths ? [data.lengths] : [];
  let lossValue: number;
  try {
    lossValue = trainer.gradients(...rec.input.map((x) => sequence(x.name)), sequence(targetName(loss)), ...lengths);
  } catch (e) {
    numericsError(e);
  }

  const values = new Map<string, Tensor>();
  const f64 = (t: TensorData): Tensor => ({ shape: t.shape, data: Float64Array.from(t.data) });
  /** Per-step [B, ...] blocks of a batch-first [B, T, ...] array, as `<name>@t`. */
  const steps = (name: string, seq: ArrayLike<number>, step: Shape): void => {
    const K = sizeOf(step) / B;
    const flat = { shape: [B, T, K], data: Float64Array.from(seq) };
    for (let t = 1; t <= T; t++) values.set(`${name}@${t}`, { shape: step, data: stepOf(flat, t) });
  };

  values.set('loss', { shape: [], data: Float64Array.of(lossValue) });
  steps(out.name, trainer.outputs(), out.node.shape);
  const states = trainer.stateSequence!(); // [T + 1, ...stateShape], t-major
  for (const s of rec.state) {
    const seq = states[s.name]!.data;
    const size = sizeOf(s.node.shape);
    for (let t = 1; t <= T; t++) values.set(`${s.name}@${t}`, { shape: s.node.shape, data: Float64Array.from(seq.slice(t * size, (t + 1) * size)) });
  }
  const grads = trainer.getGrads();
  for (const p of rec.params) values.set(`grad:${p.name}`, f64(grads[p.name]!));
  const inputGrads = trainer.getInputGrads!();
  for (const x of rec.input) steps(`grad:${x.name}`, inputGrads[x.name]!.data, x.node.shape);
  for (const s of rec.state) values.set(`grad:${s.name}@0`, f64(inputGrads[initialKey(s.name)]!));
  return { tg, values };
}

/**
 * The generated trainer of `cfg`, imported, for evaluation only: its optimizer is never applied
 * (gradients() and predict() do not update) and its state is not carried. Parameters from
 * `params`, else the seeded init.
 */
export async function evaluationTrainer(cfg: Omit<TrainerConfig, 'optimizer' | 'carryState'>, params: ReadonlyMap<string, Tensor> | undefined): Promise<{ emitted: EmittedTrainer; trainer: TrainerInstance }> {
  // Loaded here, not at the top: the emitter is needed by no other grad or run (it loads no TypeScript compiler).
  const { emitTrainer } = await import('../emit/trainer.ts');
  const { importTrainer } = await import('../emit/load.ts');
  const emitted = emitTrainer({ ...cfg, optimizer: { name: 'sgd', lr: 0 }, carryState: false });
  const trainer = (await importTrainer(emitted)).createTrainer(params ? { params: Object.fromEntries(params) } : {});
  return { emitted, trainer };
}

/**
 * One window through either engine: loss, outputs, hidden outputs, final state and every gradient,
 * batch-first (what `grad` prints). `rec` is the model built at the data's B.
 */
export async function runWindow(
  model: ModelDef, source: string, rec: Recurrence, data: RunData, loss: LossSpec, params: ReadonlyMap<string, Tensor>,
  opts: { readonly engine: Engine; readonly dtype: Dtype; readonly form: FormChoice; readonly checkNumerics?: boolean; readonly packed?: TrainerConfig['packed'] },
): Promise<RunResult> {
  // Stacked and bidirectional layers run as their graph of scans.
  if (stackLayout(rec)) {
    const { runSequence } = await import('./sequence-run.ts');
    return runSequence(model, source, rec, data, loss, params, opts);
  }
  const { tg, values } = opts.engine === 'compiled'
    ? await runCompiled(model, source, data, loss, params, opts.dtype, opts.form, opts.checkNumerics === true, opts.packed)
    : runInterpreter(rec, data, loss, params, opts.dtype, opts.checkNumerics === true);
  return collectRun(tg, loss, values, data.lengths);
}

/** Parses `--wrt a,b`: every name must be one a gradient can be asked of. */
function parseWrt(value: string | undefined, valid: readonly string[]): string[] | undefined {
  if (value === undefined) return undefined;
  const names = value.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw new UsageError(`grad: --wrt needs at least one name (valid: ${valid.join(', ')})`);
  const unknown = names.filter((n) => !valid.includes(n));
  if (unknown.length > 0) {
    throw new UsageError(`grad: --wrt: no parameter, input or initial state named ${unknown.map((n) => `"${n}"`).join(', ')} (valid: ${valid.join(', ')})`);
  }
  return [...new Set(names)];
}

/** The one JSON object on stdout; non-finite values are refused by tensorToJson, naming the tensor. */
function formatResult(r: RunResult, wrt: readonly string[], loss: LossSpec): string {
  if (!Number.isFinite(r.loss)) throw new UnfoldError(`the loss is ${r.loss}; check the parameters and data for overflow`);
  const obj = {
    loss: r.loss,
    lossKind: loss.kind,
    lossOver: loss.over ?? 'all',
    outputs: tensorToJson(r.outputs, 'outputs'),
    hiddenOutputs: tensorToJson(r.hiddenOutputs, 'hiddenOutputs'),
    finalState: Object.fromEntries([...r.finalState].map(([k, t]) => [k, tensorToJson(t, `finalState.${k}`)])),
    grads: Object.fromEntries(wrt.map((k) => [k, tensorToJson(r.grads.get(k)!, `grads.${k}`)])),
  };
  return JSON.stringify(obj) + '\n';
}

export const grad: Command = {
  name: 'grad',
  summary: COMMAND_SUMMARIES.grad,
  usage: `unfold grad ${MODEL_USAGE} --params FILE --data FILE ${LOSS_USAGE} [--dtype f64|f32] [--engine interpreter|compiled [--form unrolled|rolled|auto]] [--wrt NAME,...] [--check-numerics]`,
  async run(argv) {
    const { values, positionals } = parse('grad', argv, {
      ...modelOptions,
      ...lossOptions,
      params: { type: 'string' },
      data: { type: 'string' },
      dtype: { type: 'string' },
      engine: { type: 'string' },
      form: { type: 'string' },
      wrt: { type: 'string' },
      'check-numerics': { type: 'boolean' },
    });
    const { model, source } = await resolveModel('grad', positionals, values, values.params);
    if (values.params === undefined) throw new UsageError('grad: --params FILE is required (a tensor file with the model\'s parameters)');
    if (values.data === undefined) throw new UsageError('grad: --data FILE is required (a tensor file with x [B, T, I], y [B, T, O] and optional initial states)');
    const dtype = choiceFlag<Dtype>('grad', 'dtype', values.dtype, ['f64', 'f32'], 'f64');
    const engine = choiceFlag<Engine>('grad', 'engine', values.engine, ['interpreter', 'compiled'], 'interpreter');
    const form = choiceFlag<FormChoice>('grad', 'form', values.form, ['unrolled', 'rolled', 'auto'], 'auto');
    if (values.form !== undefined && engine !== 'compiled') throw new UsageError('grad: --form applies to --engine compiled only');
    const loss = lossSpec('grad', model, values);
    const checkNumerics = values['check-numerics'] === true;
    if (model.graph) {
      const data = readGraphData(values.data, model);
      const params = readGraphParams(values.params, data.model);
      const result = engine === 'compiled'
        ? await runGraphCompiled(model, source, data, loss, params, { dtype, form: form === 'unrolled' ? 'unrolled' : 'rolled', checkNumerics })
        : runGraphModel(data, loss, params, { dtype, checkNumerics });
      const wrt = parseWrt(values.wrt, data.model.params.map((p) => p.name)) ?? data.model.params.map((p) => p.name);
      for (const name of result.unused.filter((n) => wrt.includes(n))) {
        process.stderr.write(`unfold grad: warning: the loss does not depend on "${name}"; its gradient is zero\n`);
      }
      process.stdout.write(formatGraphRun(result, wrt, loss));
      return 0;
    }

    // The data's shapes give B; the model is built at B, then its parameters are checked.
    const files = readRunFiles(model, loss, { params: values.params, data: values.data }, () => {
      throw new Error('unreachable: grad always has a data file');
    });
    const { rec, data } = files;
    const params = files.params!;
    const valid = gradTargets(rec).map((t) => t.name);
    const wrt = parseWrt(values.wrt, valid) ?? valid;

    const result = await runWindow(model, source, rec, data, loss, params, { engine, dtype, form, checkNumerics });

    for (const name of result.unused.filter((n) => wrt.includes(n))) {
      process.stderr.write(`unfold grad: warning: the loss does not depend on "${name}"; its gradient is zero\n`);
    }
    process.stdout.write(formatResult(result, wrt, loss));
    return 0;
  },
};
