// The commands' side of graph models (a model file's `graph`): its data and parameters read and
// checked against the model built at the data's batch size, and one window's loss, outputs and
// gradients — the same JSON `grad` prints for any model, outputs keyed by name.
import { UnfoldError } from '../ir/errors.ts';
import { nodesOf, printGraph, verify } from '../ir/graph.ts';
import { shapeToString, type Tensor } from '../ir/tensor.ts';
import { derivedBuilder } from '../dsl/context.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import type { ModelDef, Window } from '../dsl/model.ts';
import { evaluate, type Dtype } from '../interp/evaluate.ts';
import { checkTensorMap, readTensorMap, readWindowsFile, tensorToJson } from '../io/tensor-file.ts';
import { emptyTally, metricsOf, tallyWindow, type Metrics } from './metrics.ts';
import { readParamsOnly } from './checkpoint.ts';
import { opRule } from '../prims/index.ts';
import { graphTraining, type GraphTraining } from '../transforms/graph-training.ts';
import { inlineScans } from '../transforms/inline-scans.ts';
import { checkLengths } from '../transforms/lengths.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { currentContext } from '../dsl/context.ts';
import type { GraphTrainerInstance } from '../emit/graph-trainer.ts';
import { numericsError } from './command.ts';
import { LENGTHS } from './run-data.ts';


/** A window's tensors by the inputs they bind: x, y and the per-row lengths when it has them. */
export function windowTensors(w: Pick<Window, 'x' | 'y' | 'lengths'>): Map<string, Tensor> {
  return new Map<string, Tensor>([...(w.x ? [['x', w.x] as const] : []), ['y', w.y], ...(w.lengths ? [[LENGTHS, w.lengths] as const] : [])]);
}

/** A graph model's data, read from a tensor file: B from its first input, lengths when present. */
export interface GraphData {
  readonly model: GraphModel;
  readonly batch: number;
  readonly tensors: ReadonlyMap<string, Tensor>;
}

/** The model at B = 1, for what does not depend on B (parameter names and shapes). */
export function probeGraph(def: ModelDef): GraphModel {
  return def.graph!(1);
}

/** Reads `file`, builds the model at its batch size, and checks every input the model reads. */
export function readGraphData(file: string, def: ModelDef, inputs: 'train' | 'greedy' = 'train'): GraphData {
  const tensors = readTensorMap(file);
  const probe = probeGraph(def);
  const first = (inputs === 'greedy' ? probe.greedy?.inputs : probe.inputs)?.[0];
  if (!first) throw new UnfoldError(`model ${def.name} has no ${inputs === 'greedy' ? 'greedy decoding' : 'inputs'}`);
  const lead = tensors.get(first.name);
  if (!lead) throw new UnfoldError(`${file}: missing data tensor "${first.name}" (model ${def.name} reads ${probe.inputs.map((x) => `${x.name} ${shapeToString(x.node.shape)}`).join(', ')} at B = 1)`);
  const batch = lead.shape[0];
  if (batch === undefined || batch < 1) throw new UnfoldError(`${file}: data tensor "${first.name}" has shape ${shapeToString(lead.shape)}, without a batch axis first`);
  const model = def.graph!(batch, { lengths: tensors.has(LENGTHS) });
  const reads = inputs === 'greedy' ? model.greedy!.inputs : model.inputs;
  checkTensorMap(new Map(tensors), new Map(reads.map((x) => [x.name, x.node.shape])), { file, kind: 'data tensor', optional: inputs === 'greedy' ? model.inputs.map((x) => x.name) : [] });
  const lengths = tensors.get(LENGTHS);
  if (lengths) checkLengths(lengths, batch, model.inputs.find((x) => x.name === first.name)!.node.shape[1] ?? 1, file);
  return { model, batch, tensors };
}

/** The parameters of a params file or a `train --save` checkpoint (its optimizer state set aside). */
export function readGraphParams(file: string, model: GraphModel): Map<string, Tensor> {
  return readParamsOnly(file, new Map(model.params.map((p) => [p.name, p.node.shape])), []);
}

export interface GraphRun {
  readonly loss: number;
  readonly outputs: ReadonlyMap<string, Tensor>;
  readonly grads: ReadonlyMap<string, Tensor>;
  /** Parameters the loss does not depend on. */
  readonly unused: readonly string[];
}

/** One window through the interpreter (every scan run by its own rule) or through the inlined graph. */
export function runGraphModel(data: GraphData, loss: LossSpec, params: ReadonlyMap<string, Tensor>, opts: { dtype: Dtype; inlined?: boolean; checkNumerics?: boolean }): GraphRun {
  const tg = graphTraining(data.model, loss, derivedBuilder());
  verify(tg.graph, opRule);
  const graph = opts.inlined ? inlineScans(tg.graph, currentContext()).graph : tg.graph;
  const values = evaluate(graph, params, data.tensors, opts.dtype, { checkNumerics: opts.checkNumerics === true });
  return {
    loss: values.get('loss')!.data[0]!,
    outputs: new Map(data.model.outputs.map((o) => [o.name, values.get(o.name)!])),
    grads: new Map(data.model.params.map((p) => [p.name, values.get(`grad:${p.name}`)!])),
    unused: tg.grad.unused.map((n) => String(n.attrs['name'])),
  };
}

/**
 * One window through the generated trainer (rolled: a loop per scan; unrolled: scans inlined),
 * gradients() without an update: what `grad --engine compiled` reports.
 */
export async function runGraphCompiled(def: ModelDef, source: string, data: GraphData, loss: LossSpec, params: ReadonlyMap<string, Tensor>, opts: { dtype: Dtype; form: 'rolled' | 'unrolled'; checkNumerics?: boolean }): Promise<GraphRun> {
  const { emitGraphTrainer } = await import('../emit/graph-trainer.ts');
  const { importTrainer } = await import('../emit/load.ts');
  const emitted = emitGraphTrainer({ model: def, source, batch: data.batch, lengths: data.tensors.has(LENGTHS), dtype: opts.dtype, loss, optimizer: { name: 'sgd', lr: 0 }, form: opts.form, ...(opts.checkNumerics ? { checkNumerics: true } : {}) });
  const trainer = (await importTrainer(emitted.source)).createTrainer({ params: Object.fromEntries([...params].map(([k, t]) => [k, t.data])) }) as unknown as GraphTrainerInstance;
  let value: number;
  try {
    value = trainer.gradients(Object.fromEntries(data.model.inputs.map((x) => [x.name, data.tensors.get(x.name)!.data])));
  } catch (e) {
    numericsError(e);
  }
  const tensor = (t: { shape: number[]; data: number[] }): Tensor => ({ shape: t.shape, data: Float64Array.from(t.data) });
  const outputs = trainer.outputs(), grads = trainer.getGrads();
  return {
    loss: value,
    outputs: new Map(data.model.outputs.map((o) => [o.name, tensor(outputs[o.name]!)])),
    grads: new Map(data.model.params.map((p) => [p.name, tensor(grads[p.name]!)])),
    unused: emitted.unused,
  };
}

/** `grad`'s JSON for a graph model: the loss, its kind, every output and every gradient asked for. */
export function formatGraphRun(r: GraphRun, wrt: readonly string[], loss: LossSpec): string {
  if (!Number.isFinite(r.loss)) throw new UnfoldError(`the loss is ${r.loss}; check the parameters and data for overflow`);
  return JSON.stringify({
    loss: r.loss,
    lossKind: loss.kind,
    outputs: Object.fromEntries([...r.outputs].map(([k, t]) => [k, tensorToJson(t, `outputs.${k}`)])),
    grads: Object.fromEntries(wrt.map((k) => [k, tensorToJson(r.grads.get(k)!, `grads.${k}`)])),
  }) + '\n';
}

/** `show` for a graph model: the graph over whole tensors (each scan's body under it) and the sizes of its inlined and gradient forms. */
export function showGraphModel(def: ModelDef, source: string, batch: number, loss: LossSpec, opts: { unrolled?: boolean; grad?: boolean }): string {
  return showGraph(def.graph!(batch), `# ${def.name} (${source}), batch ${batch}: `, loss, opts);
}

/**
 * `show` of a graph of scans, its first line `head` and what it is (`a graph of 3 scans over whole
 * tensors`); --unrolled: every scan inlined; --grad: the loss and gradient graph (a reverse scan per scan).
 */
export function showGraph(model: GraphModel, head: string, loss: LossSpec, opts: { unrolled?: boolean; grad?: boolean }): string {
  const tg: GraphTraining = graphTraining(model, loss, derivedBuilder());
  verify(tg.graph, opRule);
  const forward = tg.graph.outputs.filter((o) => !o.name.startsWith('grad:'));
  const modelGraph = { outputs: forward };
  const scans = nodesOf(modelGraph).filter((n) => n.op === 'scan');
  const inlined = inlineScans(modelGraph, currentContext()).graph;
  const out = [
    `${head}a graph of ${scans.length} scan${scans.length === 1 ? '' : 's'} over whole tensors`,
    printGraph(modelGraph).trimEnd(),
  ];
  if (opts.unrolled) out.push('# unrolled (every scan inlined)', printGraph(inlined, { steps: true }).trimEnd());
  if (opts.grad) out.push('# loss and gradients', printGraph(tg.graph).trimEnd());
  out.push(
    `# parameters: ${model.params.map((p) => `${p.name} [${p.node.shape.join(', ')}]`).join(', ')}`,
    `# graph: ${nodesOf(modelGraph).length} nodes (loss included); with gradients: ${nodesOf(tg.graph).length} nodes; unrolled: ${nodesOf(inlined).length} nodes`,
  );
  return out.join('\n') + '\n';
}

export interface Decoded {
  /** The decoded symbol indices, [B][T]. */
  readonly symbols: number[][];
  /** Every other greedy output (e.g. the attention weights [B, Ty, Tx]), by name. */
  readonly outputs: ReadonlyMap<string, Tensor>;
  readonly vocabulary: readonly string[] | undefined;
  /** The first input's symbols per row, printed, when the model gives their vocabulary (for picture labels). */
  readonly source: string[][] | undefined;
}

/** Greedy decoding of a batch: the model's greedy outputs through the interpreter (each scan by its rule). */
export function decodeGreedy(def: ModelDef, dataFile: string, paramsFile: string): Decoded {
  const probe = probeGraph(def);
  if (!probe.greedy) throw new UnfoldError(`model ${def.name} declares no greedy decoding (graphModel({ greedy: { inputs, outputs: { symbols } } })) to generate with`);
  const data = readGraphData(dataFile, def, 'greedy');
  const params = readGraphParams(paramsFile, data.model);
  const greedy = data.model.greedy!;
  const values = evaluate({ outputs: greedy.outputs }, params, data.tensors);
  const symbols = values.get('symbols')!;
  const [B, T, V] = symbols.shape as [number, number, number];
  const rows = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => symbols.data.subarray((b * T + t) * V, (b * T + t + 1) * V).indexOf(1)));
  const first = data.tensors.get(greedy.inputs[0]!.name);
  const vocab = greedy.sourceVocabulary;
  const source = vocab && first && first.shape.length === 3
    ? Array.from({ length: first.shape[0]! }, (_, b) => Array.from({ length: first.shape[1]! }, (_, s) => {
      const K = first.shape[2]!, at = (b * first.shape[1]! + s) * K;
      return vocab[first.data.subarray(at, at + K).indexOf(1)] ?? '';
    }))
    : undefined;
  return { symbols: rows, outputs: new Map([...values].filter(([k]) => k !== 'symbols')), vocabulary: greedy.vocabulary, source };
}

/**
 * A graph model's loss (and for cross-entropy its accuracy) over every window of a windows file,
 * forward only through the interpreter: the output the loss reads against its target, item by
 * item (each (row, step) of a [B, T, O] output), so windows of any batch size combine.
 */
export function evaluateGraphModel(def: ModelDef, file: string, paramsFile: string, loss: LossSpec): Metrics {
  let params: Map<string, Tensor> | undefined;
  return graphMetrics(def, file, readWindowsFile(file), (model) => (params ??= readGraphParams(paramsFile, model)), loss);
}

/**
 * The loss (and for cross-entropy the accuracy) of a graph model over windows (forward only, through
 * the interpreter): the item-weighted mean over every window, whatever its batch size. `paramsFor`
 * gives the parameters, checked against the model built at the first window's batch size.
 */
export function graphMetrics(def: ModelDef, file: string, windows: readonly Pick<Window, 'x' | 'y' | 'lengths'>[], paramsFor: (model: GraphModel) => ReadonlyMap<string, Tensor>, loss: LossSpec): Metrics {
  if ((loss.over ?? 'all') !== 'all') throw new UnfoldError(`evaluate: --loss-over ${loss.over} compares each row's last step of one recurrence; model ${def.name} is a graph of scans, whose loss reads its whole outputs`);
  const tally = emptyTally();
  let features = 1;
  windows.forEach((w, k) => {
    const tensors = windowTensors(w);
    const batch = (w.x ?? w.y).shape[0]!;
    const model = def.graph!(batch, { lengths: w.lengths !== undefined });
    checkTensorMap(tensors, new Map(model.inputs.map((x) => [x.name, x.node.shape])), { file: `${file}: window ${k}`, kind: 'data tensor' });
    const params = paramsFor(model);
    const out = loss.output === undefined ? model.outputs[0]! : model.outputs.find((o) => o.name === loss.output);
    if (!out) throw new UnfoldError(`loss: no output "${loss.output}" (outputs: ${model.outputs.map((o) => o.name).join(', ')})`);
    const o = evaluate({ outputs: [out] }, params, tensors).get(out.name)!;
    const target = tensors.get(loss.target ?? 'y')!;
    const steps = o.shape.length >= 3 ? o.shape[1]! : 1;
    features = o.shape[o.shape.length - 1]!;
    tallyWindow(tally, loss.kind, 'all', { outputs: o.data, stride: steps, target: target.data, batch, steps, features });
  });
  return metricsOf(tally, loss.kind, features);
}

/** A graph model's outputs for the data in `dataFile`, forward only through the interpreter. */
export function runGraphForward(def: ModelDef, dataFile: string, paramsFile: string, dtype: Dtype, checkNumerics = false): Map<string, Tensor> {
  const data = readGraphData(dataFile, def);
  const params = readGraphParams(paramsFile, data.model);
  return evaluate({ outputs: data.model.outputs }, params, data.tensors, dtype, { checkNumerics });
}
