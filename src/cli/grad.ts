// `unfold grad`: one window's loss, outputs, states and every gradient (params, inputs, initial states) as one JSON object in PyTorch's layout.
import type { Graph } from '../ir/graph.ts';
import { UnfoldError } from '../ir/errors.ts';
import type { Tensor } from '../ir/tensor.ts';
import { dslBuilder } from '../dsl/context.ts';
import { evaluate, type Bindings, type Dtype } from '../interp/evaluate.ts';
import { tensorToJson } from '../io/tensor-file.ts';
import { trainingGraph } from '../transforms/training.ts';
import { choiceFlag, parse, UsageError, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { bindData, collectRun, gradTargets, lossOf, readRunFiles, runGraph, type RunResult } from './run-data.ts';

export type Engine = 'interpreter' | 'compiled';

/**
 * The compiled engine's entry, kept to this one signature so it can be wired in without touching
 * the rest: evaluate `graph` (runGraph's outputs: `loss`, `o@t`, `s@t`, `grad:...`) with generated
 * kernels, exactly as the interpreter's evaluate does, and return every output by name.
 */
export function runCompiled(_graph: Graph, _params: Bindings, _inputs: Bindings, _dtype: Dtype): Map<string, Tensor> {
  throw new UsageError('grad: --engine compiled is not available yet (the code generator in src/emit/ does not export a graph runner); use --engine interpreter');
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
function formatResult(r: RunResult, wrt: readonly string[]): string {
  if (!Number.isFinite(r.loss)) throw new UnfoldError(`the loss is ${r.loss}; check the parameters and data for overflow`);
  const obj = {
    loss: r.loss,
    outputs: tensorToJson(r.outputs, 'outputs'),
    hiddenOutputs: tensorToJson(r.hiddenOutputs, 'hiddenOutputs'),
    finalState: Object.fromEntries([...r.finalState].map(([k, t]) => [k, tensorToJson(t, `finalState.${k}`)])),
    grads: Object.fromEntries(wrt.map((k) => [k, tensorToJson(r.grads.get(k)!, `grads.${k}`)])),
  };
  return JSON.stringify(obj) + '\n';
}

export const grad: Command = {
  name: 'grad',
  summary: "one window's loss, outputs, final state and gradients (parameters, inputs, initial states) as JSON",
  usage: `unfold grad ${MODEL_USAGE} --params FILE --data FILE [--dtype f64|f32] [--engine interpreter|compiled] [--wrt NAME,...]`,
  async run(argv) {
    const { values, positionals } = parse('grad', argv, {
      ...modelOptions,
      params: { type: 'string' },
      data: { type: 'string' },
      dtype: { type: 'string' },
      engine: { type: 'string' },
      wrt: { type: 'string' },
    });
    const { model } = await resolveModel('grad', positionals, values);
    if (values.params === undefined) throw new UsageError('grad: --params FILE is required (a tensor file with the model\'s parameters)');
    if (values.data === undefined) throw new UsageError('grad: --data FILE is required (a tensor file with x [B, T, I], y [B, T, O] and optional initial states)');
    const dtype = choiceFlag<Dtype>('grad', 'dtype', values.dtype, ['f64', 'f32'], 'f64');
    const engine = choiceFlag<Engine>('grad', 'engine', values.engine, ['interpreter', 'compiled'], 'interpreter');
    const loss = lossOf(model);

    // The data's shapes give B; the model is built at B, then its parameters are checked.
    const files = readRunFiles(model, loss, { params: values.params, data: values.data }, () => {
      throw new Error('unreachable: grad always has a data file');
    });
    const { rec, data } = files;
    const params = files.params!;
    const valid = gradTargets(rec).map((t) => t.name);
    const wrt = parseWrt(values.wrt, valid) ?? valid;

    const tg = trainingGraph(rec, data.tau, loss, dslBuilder(), { inputGrads: true, stateGrads: true });
    const graph = runGraph(tg);
    const inputs = bindData(rec, data);
    const outputs = engine === 'compiled' ? runCompiled(graph, params, inputs, dtype) : evaluate(graph, params, inputs, dtype);
    const result = collectRun(tg, loss, outputs);

    for (const name of result.unused.filter((n) => wrt.includes(n))) {
      process.stderr.write(`unfold grad: warning: the loss does not depend on "${name}"; its gradient is zero\n`);
    }
    process.stdout.write(formatResult(result, wrt));
    return 0;
  },
};
