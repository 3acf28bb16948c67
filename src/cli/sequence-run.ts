// One window of a program (stacked or bidirectional layers) through either engine, as its graph of
// scans (sequenceModel): the interpreter evaluates the scans and their VJP node by node; the compiled
// engine runs the generated trainer (src/emit/sequence-trainer.ts). Both answer what `grad` reports
// of a recurrence: the loss, outputs, top-layer outputs, final states and every gradient by name.
import { derivedBuilder, withContext } from '../dsl/context.ts';
import type { ModelDef } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { dataInputs, finalName, HIDDEN_OUTPUT, initialName, LOSS_NORMALIZER, LOSS_WEIGHTS, sequenceModel } from '../dsl/sequence.ts';
import type { Tensor } from '../ir/tensor.ts';
import { evaluate, type Dtype } from '../interp/evaluate.ts';
import { graphTraining, type GraphTraining } from '../transforms/graph-training.ts';
import { lossNormalizer, lossOutputIndex, lossWeights, type LossSpec } from '../transforms/loss.ts';
import type { TrainerConfig } from '../emit/config.ts';
import { numericsError } from './command.ts';
import { initialKey, targetName, type RunData, type RunResult } from './run-data.ts';

/** The sequence model of `rec` over the data's T, with its loss on the data's weights. */
function modelOf(rec: Recurrence, data: RunData, loss: LossSpec) {
  return sequenceModel(rec, {
    steps: data.tau, ...(data.lengths ? { lengths: true } : {}), weighted: true, hidden: true,
    target: { name: targetName(loss), ...(loss.output !== undefined ? { output: loss.output } : {}) },
  });
}

/** The loss weights [B, T] and their normalizer: every valid step of a row, or its last. */
function lossTensors(rec: Recurrence, data: RunData, loss: LossSpec): [string, Tensor][] {
  const { batch: B, tau: T } = data;
  const over = loss.over ?? 'all';
  const lengths = data.lengths ?? Array.from({ length: B }, () => T);
  // lossWeights' rule, [T][B], laid out as the graph reads it, [B, T].
  const w = new Float64Array(B * T);
  lossWeights(over, lengths, T).forEach((row, t) => row.forEach((v, b) => (w[b * T + t] = v)));
  const out = rec.outputs[lossOutputIndex(rec, loss)]!.node;
  return [[LOSS_WEIGHTS, { shape: [B, T], data: w }], [LOSS_NORMALIZER, { shape: [], data: Float64Array.of(lossNormalizer(loss.kind, out.shape, over, lengths)) }]];
}

/** A program's window as its graph of scans: the training graph (gradients of the parameters, data inputs and initial states), its data by name, and the leaves the loss does not read. */
export function sequenceTraining(rec: Recurrence, data: RunData, loss: LossSpec): { readonly tg: GraphTraining; readonly tensors: Map<string, Tensor>; readonly unused: readonly string[] } {
  const B = data.batch;
  const inputs = dataInputs(rec);
  const states = rec.state;
  const g = modelOf(rec, data, loss);
  const wrt = [...inputs.map((x) => x.name), ...states.map((s) => initialName(s.name))].map((name) => g.inputs.find((x) => x.name === name)!.node);
  const tg = graphTraining(g, loss, derivedBuilder(), { inputs: wrt });
  const unusedNodes = new Set(tg.grad.unused);
  const unused = [
    ...rec.params.filter((p) => unusedNodes.has(p.node)).map((p) => p.name),
    ...inputs.filter((_, i) => unusedNodes.has(wrt[i]!)).map((x) => x.name),
    ...states.filter((_, i) => unusedNodes.has(wrt[inputs.length + i]!)).map((s) => initialKey(s.name)),
  ];
  const copy = (t: Tensor): Tensor => ({ shape: t.shape, data: Float64Array.from(t.data) });
  const tensors = new Map<string, Tensor>([
    ...inputs.map((x): [string, Tensor] => [x.name, copy(data.sequences.get(x.name)!)]),
    [targetName(loss), copy(data.sequences.get(targetName(loss))!)],
    ...lossTensors(rec, data, loss),
    ...states.map((s): [string, Tensor] => [initialName(s.name), copy(data.initial.get(s.name)!)]),
    ...(data.lengths ? [['lengths', { shape: [B], data: Float64Array.from(data.lengths) }] as [string, Tensor]] : []),
  ]);
  return { tg, tensors, unused };
}

export async function runSequence(
  model: ModelDef, source: string, rec: Recurrence, data: RunData, loss: LossSpec, params: ReadonlyMap<string, Tensor>,
  opts: { readonly engine: 'interpreter' | 'compiled'; readonly dtype: Dtype; readonly form: 'unrolled' | 'rolled' | 'auto'; readonly checkNumerics?: boolean },
): Promise<RunResult> {
  const inputs = dataInputs(rec);
  const states = rec.state;
  const out = rec.outputs[lossOutputIndex(rec, loss)]!;
  const { tg, tensors, unused } = sequenceTraining(rec, data, loss);
  const values = opts.engine === 'interpreter'
    ? evaluate(tg.graph, params, tensors, opts.dtype, { checkNumerics: opts.checkNumerics === true })
    : await compiledValues(model, source, rec, data, loss, params, opts);
  const get = (name: string): Tensor => values.get(name)!;
  return {
    loss: get('loss').data[0]!,
    outputs: get(out.name),
    hiddenOutputs: get(HIDDEN_OUTPUT),
    finalState: new Map(states.map((s) => [s.name, get(finalName(s.name))])),
    grads: new Map([
      ...rec.params.map((p): [string, Tensor] => [p.name, get(`grad:${p.name}`)]),
      ...inputs.map((x): [string, Tensor] => [x.name, get(`grad:${x.name}`)]),
      ...states.map((s): [string, Tensor] => [initialKey(s.name), get(`grad:${initialName(s.name)}`)]),
    ]),
    unused,
  };
}

/** The generated trainer's gradients() on the window, its values under the graph's names. */
async function compiledValues(
  model: ModelDef, source: string, rec: Recurrence, data: RunData, loss: LossSpec, params: ReadonlyMap<string, Tensor>,
  opts: { readonly dtype: Dtype; readonly form: 'unrolled' | 'rolled' | 'auto'; readonly checkNumerics?: boolean },
): Promise<Map<string, Tensor>> {
  const { batch: B, tau: T } = data;
  const { emitTrainer } = await import('../emit/trainer.ts');
  const { importTrainer } = await import('../emit/load.ts');
  const cfg: TrainerConfig = {
    model, source, batch: B, tau: T, dtype: opts.dtype, loss, inputGrads: true, optimizer: { name: 'sgd', lr: 0 }, carryState: false,
    ...(opts.form === 'unrolled' ? { form: 'unrolled' as const } : {}), ...(data.lengths ? { lengths: true } : {}), ...(opts.checkNumerics ? { checkNumerics: true } : {}),
  };
  const emitted = withContext(() => emitTrainer(cfg));
  const trainer = (await importTrainer(emitted)).createTrainer({ params: Object.fromEntries(params) });
  trainer.setState(Object.fromEntries(rec.state.map((s) => [s.name, data.initial.get(s.name)!.data])));
  let lossValue: number;
  try {
    lossValue = trainer.gradients(...dataInputs(rec).map((x) => data.sequences.get(x.name)!.data), data.sequences.get(targetName(loss))!.data, ...(data.lengths ? [data.lengths] : []));
  } catch (e) {
    numericsError(e);
  }
  const tensor = (t: { shape: number[]; data: ArrayLike<number> }): Tensor => ({ shape: t.shape, data: Float64Array.from(t.data) });
  const out = rec.outputs[lossOutputIndex(rec, loss)]!;
  const hidden = trainer.hiddenOutputs!();
  const grads = trainer.getGrads(), inputGrads = trainer.getInputGrads!(), final = trainer.finalState!();
  return new Map<string, Tensor>([
    ['loss', { shape: [], data: Float64Array.of(lossValue) }],
    [out.name, { shape: [B, T, ...out.node.shape.slice(1)], data: trainer.outputs() }],
    [HIDDEN_OUTPUT, { shape: [B, T, hidden.length / (B * T)], data: hidden }],
    ...rec.state.map((s): [string, Tensor] => [finalName(s.name), tensor(final[s.name]!)]),
    ...rec.params.map((p): [string, Tensor] => [`grad:${p.name}`, tensor(grads[p.name]!)]),
    ...dataInputs(rec).map((x): [string, Tensor] => [`grad:${x.name}`, tensor(inputGrads[x.name]!)]),
    ...rec.state.map((s): [string, Tensor] => [`grad:${initialName(s.name)}`, tensor(inputGrads[initialKey(s.name)]!)]),
  ]);
}
