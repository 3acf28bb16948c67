// `unfold show`: the model's step graph as IR text, and the size of its unrolled form; a program's
// and a graph model's graph of scans over whole tensors (each scan's body under it).
import { nodesOf, printGraph, verify } from '../ir/graph.ts';
import { opRule } from '../prims/index.ts';
import { derivedBuilder } from '../dsl/context.ts';
import { stepGraph } from '../dsl/recurrence.ts';
import { trainingGraph } from '../transforms/training.ts';
import { intFlag, parse, UsageError, type Command } from './command.ts';
import { showGraph, showGraphModel } from './graph-model.ts';
import { programModel, programSummary } from '../dot/export.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { lossOf } from './run-data.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

export const show: Command = {
  name: 'show',
  summary: COMMAND_SUMMARIES.show,
  usage: `unfold show ${MODEL_USAGE} [--tau N] [--batch B] [--unrolled] [--grad]`,
  async run(argv) {
    const { values, positionals } = parse('show', argv, {
      ...modelOptions,
      tau: { type: 'string' },
      batch: { type: 'string' },
      unrolled: { type: 'boolean' },
      grad: { type: 'boolean' },
    });
    const { model, source } = await resolveModel('show', positionals, values);
    const batch = intFlag('show', 'batch', values.batch, model.task?.batch ?? 1);
    const tau = intFlag('show', 'tau', values.tau, model.task?.seqLen ?? 10);
    if (model.graph) {
      if (values.tau !== undefined) throw new UsageError(`show: --tau sets the steps of one recurrence; model ${model.name} is a graph whose scans take their lengths from its inputs`);
      process.stdout.write(showGraphModel(model, source, batch, lossOf(model), { unrolled: values.unrolled === true, grad: values.grad === true }));
      return 0;
    }
    const rec = model.build(batch);
    if (rec.stack) {
      // A program runs as its graph of scans over τ steps (as it trains): shown as a graph model is.
      const head = `# ${model.name} (${source}), batch ${batch}, τ = ${tau}: ${programSummary(rec)}, as `;
      const loss = lossOf(model);
      process.stdout.write(showGraph(programModel(rec, tau, loss), head, loss, { unrolled: values.unrolled === true, grad: values.grad === true }));
      return 0;
    }
    const out: string[] = [];
    const step = verify(stepGraph(rec), opRule);
    const stepNodes = nodesOf(step).length;
    out.push(`# ${model.name} (${source}), batch ${batch}: step graph`, printGraph(step).trimEnd());
    const { trainable, grad } = trainingGraph(rec, tau, lossOf(model), derivedBuilder());
    verify(grad.graph, opRule);
    if (values.unrolled) out.push(`# unrolled, τ = ${tau}`, printGraph(trainable.graph, { steps: true }).trimEnd());
    if (values.grad) out.push(`# loss and gradients, τ = ${tau}`, printGraph(grad.graph, { steps: true }).trimEnd());
    out.push(
      `# step graph: ${stepNodes} nodes; parameters: ${rec.params.map((p) => `${p.name} [${p.node.shape.join(', ')}]`).join(', ')}`,
      `# unrolled τ = ${tau}: ${nodesOf(trainable.graph).length} nodes (loss included); with gradients: ${nodesOf(grad.graph).length} nodes`,
    );
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
