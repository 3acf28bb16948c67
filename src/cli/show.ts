// `unfold show`: the model's step graph as IR text, and the size of its unrolled form.
import { nodesOf, printGraph, verify } from '../ir/graph.ts';
import { opRule } from '../prims/index.ts';
import { derivedBuilder } from '../dsl/context.ts';
import { stepGraph } from '../dsl/recurrence.ts';
import { trainingGraph } from '../transforms/training.ts';
import { intFlag, parse, UsageError, type Command } from './command.ts';
import { showGraphModel } from './graph-model.ts';
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
    const out: string[] = [];
    let stepNodes: number;
    if (rec.program) {
      // A program has no step graph of its own: each stage (one scan, one layer and direction) has.
      const { stages, layers, directions } = rec.program;
      out.push(`# ${model.name} (${source}), batch ${batch}: a program of ${stages.length} scans (${layers} layer${layers === 1 ? '' : 's'}${directions === 2 ? ', bidirectional' : ''}), one step graph each`);
      stepNodes = 0;
      stages.forEach((stage, j) => {
        const step = verify(stepGraph(stage.rec), opRule);
        stepNodes += nodesOf(step).length;
        const reads = stage.sources.map((src, i) => `${stage.rec.input[i]!.name} ← ${'data' in src ? rec.input[src.data]!.name : `stage ${src.stage} (${stages[src.stage]!.rec.name}) ${stages[src.stage]!.rec.outputs[src.output]!.name}`}`);
        out.push(
          `# stage ${j}: ${stage.rec.name}, layer ${stage.layer}, ${stage.reverse ? 'reverse (t = T … 1)' : 'forward (t = 1 … T)'}, state slot ${stage.slot}; reads ${reads.join(', ')}`,
          printGraph(step).trimEnd(),
        );
      });
    } else {
      const step = verify(stepGraph(rec), opRule);
      stepNodes = nodesOf(step).length;
      out.push(`# ${model.name} (${source}), batch ${batch}: step graph`, printGraph(step).trimEnd());
    }
    const { trainable, grad } = trainingGraph(rec, tau, lossOf(model), derivedBuilder());
    verify(grad.graph, opRule);
    if (values.unrolled) out.push(`# unrolled, τ = ${tau}`, printGraph(trainable.graph, { steps: true }).trimEnd());
    if (values.grad) out.push(`# loss and gradients, τ = ${tau}`, printGraph(grad.graph, { steps: true }).trimEnd());
    out.push(
      `# step graph${rec.program ? 's (all stages)' : ''}: ${stepNodes} nodes; parameters: ${rec.params.map((p) => `${p.name} [${p.node.shape.join(', ')}]`).join(', ')}`,
      `# unrolled τ = ${tau}: ${nodesOf(trainable.graph).length} nodes (loss included); with gradients: ${nodesOf(grad.graph).length} nodes`,
    );
    process.stdout.write(out.join('\n') + '\n');
    return 0;
  },
};
