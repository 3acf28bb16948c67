// `unfold evaluate`: a trained model's loss (and for cross-entropy its accuracy, for text its perplexity) on held-out data, forward only — any number of windows of any batch size, with lengths, class-index or one-hot targets.
import { UnfoldError } from '../ir/errors.ts';
import type { Dtype } from '../ir/tensor.ts';
import { encode, readText } from '../data/text.ts';
import { choiceFlag, intFlag, parse, UsageError, type Command } from './command.ts';
import { lossOptions, lossSpec } from './compile-options.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { probeModel, readParams } from './run-data.ts';
import { fileSource, type DataSource } from './train-data.ts';
import { checkpointVocabulary, checkTextModel, heldOutTextSource } from './text-data.ts';
import { Evaluator } from './evaluator.ts';
import { headOption, HEADS, type Head } from './head-option.ts';
import { metricsOf, type Metrics } from './metrics.ts';
import { evaluateGraphModel } from './graph-model.ts';
import { formatLoss } from './train-report.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

export const EVALUATE_USAGE = `unfold evaluate ${MODEL_USAGE} --params CK (--data FILE | --text FILE [--seq-len T] [--batch B]) [--loss mse|sse|xent] [--loss-over all|last] [--head last|final] [--dtype f64|f32] [--json]`;

/** The people's summary: the loss, and what applies of accuracy and perplexity. */
export function metricsText(m: Metrics, kind: string): string {
  const lines = [`loss ${formatLoss(m.loss)} (${kind} over ${m.items} item${m.items === 1 ? '' : 's'} in ${m.windows} window${m.windows === 1 ? '' : 's'})`];
  if (m.accuracy !== undefined) lines.push(`accuracy ${(100 * m.accuracy).toFixed(2)}% (${Math.round(m.accuracy * m.items)} of ${m.items})`);
  if (m.perplexity !== undefined) lines.push(`perplexity ${formatLoss(m.perplexity)}`);
  return lines.join('\n') + '\n';
}

export const evaluate: Command = {
  name: 'evaluate',
  summary: COMMAND_SUMMARIES.evaluate,
  usage: EVALUATE_USAGE,
  async run(argv) {
    const { values: parsed, positionals } = parse('evaluate', argv, {
      ...modelOptions,
      ...lossOptions,
      params: { type: 'string' },
      data: { type: 'string' },
      text: { type: 'string' },
      'seq-len': { type: 'string' },
      batch: { type: 'string' },
      head: { type: 'string' },
      dtype: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (parsed.params === undefined) throw new UsageError('evaluate: --params CK is required (the parameters to evaluate: a params file or a train --save checkpoint)');
    if ((parsed.data === undefined) === (parsed.text === undefined)) throw new UsageError('evaluate: give --data FILE (a windows file) or --text FILE, one of them');
    if (parsed.text === undefined) for (const f of ['seq-len', 'batch'] as const) if (parsed[f] !== undefined) throw new UsageError(`evaluate: --${f} goes with --text FILE (a windows file fixes B and T itself)`);
    if (parsed.head !== undefined) choiceFlag<Head>('evaluate', 'head', parsed.head, HEADS, 'last');
    const dtype = choiceFlag<Dtype>('evaluate', 'dtype', parsed.dtype, ['f64', 'f32'], 'f64');

    // --text: the checkpoint's vocabulary (not the file's: held-out text may lack some symbols) sizes a cell and the classes.
    let vocabulary: string[] | undefined;
    const values: Record<string, string | boolean | undefined> = { ...parsed };
    if (parsed.text !== undefined) {
      if (parsed.loss !== undefined && parsed.loss !== 'xent') throw new UsageError(`evaluate: --text scores next-character classes with cross-entropy; --loss ${parsed.loss} does not apply`);
      vocabulary = checkpointVocabulary(parsed.params);
      if (vocabulary === undefined) throw new UnfoldError(`--params ${parsed.params} holds no vocabulary ("text.vocabulary"); --text evaluates a model trained with train --text`);
      values['loss'] = 'xent';
      if (parsed.cell !== undefined) {
        for (const f of ['input', 'output'] as const) {
          if (parsed[f] !== undefined && parsed[f] !== String(vocabulary.length)) throw new UnfoldError(`--${f} ${parsed[f]}: the vocabulary of ${parsed.params} has ${vocabulary.length} symbols, so --${f} is ${vocabulary.length} (or leave it out)`);
          values[f] = String(vocabulary.length);
        }
      }
    }
    const { model, source, record } = await resolveModel('evaluate', positionals, values, parsed.params);
    const head = headOption('evaluate', parsed.head, record, parsed['loss-over']);
    const spec = lossSpec('evaluate', model, values);
    if (model.graph) {
      if (parsed.text !== undefined || parsed.head !== undefined) throw new UsageError(`evaluate: --${parsed.text !== undefined ? 'text' : 'head'} is for a recurrence; model ${model.name} is a graph of scans (give --data windows.json)`);
      const m = evaluateGraphModel(model, parsed.data!, parsed.params, spec);
      if (!Number.isFinite(m.loss)) throw new UnfoldError(`the loss over ${parsed.data} is ${m.loss}; check the parameters and data for overflow`);
      process.stdout.write(parsed.json ? JSON.stringify(m) + '\n' : `${model.name} on ${parsed.data}:\n${metricsText(m, spec.kind)}`);
      return 0;
    }
    const loss = head === 'final' ? { ...spec, over: 'last' as const } : spec;
    const params = readParams(parsed.params, probeModel(model));

    let src: DataSource;
    if (vocabulary !== undefined) {
      const file = parsed.text!;
      const indices = encode(readText(file).chars, vocabulary, `--text ${file}`);
      src = heldOutTextSource({ file, vocabulary, indices }, intFlag('evaluate', 'seq-len', parsed['seq-len'], 32), intFlag('evaluate', 'batch', parsed.batch, 16));
      checkTextModel(src, model, loss, file);
    } else {
      src = fileSource(parsed.data!, model, loss);
    }
    const evaluator = new Evaluator({ model, source, loss, dtype, head }, src);
    const tally = await evaluator.evaluate(Object.fromEntries(params), src.count ?? 1, vocabulary !== undefined);
    const m = metricsOf(tally, loss.kind, src.output, vocabulary !== undefined);
    if (!Number.isFinite(m.loss)) throw new UnfoldError(`the loss over ${src.describe} is ${m.loss}; check the parameters and data for overflow`);
    process.stdout.write(parsed.json ? JSON.stringify(m) + '\n' : `${model.name} on ${src.describe}:\n${metricsText(m, loss.kind)}`);
    return 0;
  },
};
