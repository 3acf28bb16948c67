// `unfold show`: the model's step graph as IR text, and the size of its unrolled form.
import { nodesOf, printGraph, verify } from '../ir/graph.ts';
import { opRule } from '../prims/index.ts';
import { derivedBuilder } from '../dsl/context.ts';
import { stepGraph } from '../dsl/recurrence.ts';
import { trainingGraph } from '../transforms/training.ts';
import { intFlag, parse, type Command } from './command.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { lossOf } from './run-data.ts';

export const show: Command = {
  name: 'show',
  summary: 'print a model\'s step graph as IR and the size of its unrolled and gradient graphs',
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
    const rec = model.build(batch);
    const step = verify(stepGraph(rec), opRule);
    const { trainable, grad } = trainingGraph(rec, tau, lossOf(model), derivedBuilder());
    verify(grad.graph, opRule);
    const out: string[] = [`# ${model.name} (${source}), batch ${batch}: step graph`, printGraph(step).trimEnd()];
    if (values.unrolled) out.push(`# unrolled, τ = ${tau}`, printGraph(trainable.graph, { steps: true }).trimEnd());
    if (values.grad) out.push(`# loss and gradients, τ = ${tau}`, printGraph(grad.graph, { steps: true }).trimEnd());
    out.push(
      `# step graph: ${nodesOf(step).length} nodes; parameters: ${rec.params.map((p) => `${p.name} [${p.node.shape.join(', ')}]`).join(', ')}`,
      `# unrolled τ = ${tau}: ${nodesOf(trainable.graph).length} nodes (loss included); with gradients: ${nodesOf(grad.graph).length} nodes`,
    );
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
