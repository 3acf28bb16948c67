// `unfold generate`: a trained model in a closed loop through the inference module — the output at t becomes the input at t + 1: a cross-entropy model samples softmax(o / T) (T = 0: argmax, optionally among the top k) and feeds back the one-hot symbol, a regression model feeds back o; a text model (a `train --text` checkpoint) prints text, any other JSON like `run`.
import { UnfoldError } from '../ir/errors.ts';
import { sizeOf, type Shape, type Tensor } from '../ir/tensor.ts';
import { mulberry32 } from '../dsl/init.ts';
import { stackLayout } from '../dsl/sequence.ts';
import type { InferenceInstance } from '../emit/inference.ts';
import { intFlag, numberFlag, optionalIntFlag, parse, UsageError, type Command } from './command.ts';
import { lossOptions, lossSpec } from './compile-options.ts';
import { modelOptions, MODEL_USAGE, resolveModel } from './model-args.ts';
import { buildAt, lossOutput, readParams } from './run-data.ts';
import { forwardJson, inferenceFor, stackBlocks } from './run.ts';
import { checkpointVocabulary, checkTextModel } from './text-data.ts';
import { encode } from '../data/text.ts';
import type { ModelDef } from '../dsl/model.ts';
import { tensorToJson } from '../io/tensor-file.ts';
import { decodeGreedy } from './graph-model.ts';
import path from 'node:path';
import { makeDirectory, writeFileAtomic } from '../io/atomic-write.ts';
import { COMMAND_SUMMARIES } from './command-summaries.ts';

export interface Sampler {
  readonly temperature: number;
  readonly topK: number | undefined;
  readonly random: () => number;
}

/**
 * A symbol from logits: argmax at T = 0 (the lowest index on ties), else a draw from softmax(o / T)
 * over the k largest logits (all without top-k).
 */
export function sampleSymbol(logits: ArrayLike<number>, from: number, V: number, s: Sampler): number {
  const order = Array.from({ length: V }, (_, c) => c).sort((a, b) => logits[from + b]! - logits[from + a]! || a - b);
  const kept = order.slice(0, s.topK ?? V);
  if (s.temperature === 0) return kept[0]!;
  const m = logits[from + kept[0]!]!;
  const w = kept.map((c) => Math.exp((logits[from + c]! - m) / s.temperature));
  const z = w.reduce((a, b) => a + b, 0);
  let u = s.random() * z;
  for (let i = 0; i < kept.length; i++) {
    u -= w[i]!;
    if (u < 0) return kept[i]!;
  }
  return kept[kept.length - 1]!;
}

/**
 * A program's state block [L·D, B, ...rest] batch-first, [B, L·D, ...rest]: so that
 * its steps stack into [B, N, L·D, ...rest] as every other state's into [B, N, ...].
 */
function batchFirst(data: Float64Array, shape: Shape): Float64Array {
  const [LD, B] = shape as [number, number];
  const K = sizeOf(shape) / (LD * B);
  const out = new Float64Array(data.length);
  for (let l = 0; l < LD; l++) for (let b = 0; b < B; b++) out.set(data.subarray((l * B + b) * K, (l * B + b + 1) * K), (b * LD + l) * K);
  return out;
}

export interface ClosedLoop {
  /** Every step's outputs (the prompt's steps first) [B, N, ...] and states (a program's [B, N, L·D, ...]). */
  readonly outputs: Map<string, Tensor>;
  readonly states: Map<string, Tensor>;
  /** The symbols fed back (cross-entropy), one row per batch row. */
  readonly symbols: number[][];
}

/**
 * Runs the prompt (one-hot symbols, for a cross-entropy model) then `steps` closed-loop steps:
 * each output becomes the next input. Batch row b samples its own symbols.
 */
export function closedLoop(inf: InferenceInstance, rec: ReturnType<typeof buildAt>, opts: { readonly xent: boolean; readonly prompt: readonly number[]; readonly steps: number; readonly sampler: Sampler; readonly output: string }): ClosedLoop {
  const x = rec.input[0]!;
  const B = x.node.shape[0] ?? 1;
  const I = sizeOf(x.node.shape) / B;
  const out = rec.outputs.find((o) => o.name === opts.output)!;
  const O = sizeOf(out.node.shape) / B;
  const outs = rec.outputs.map(() => [] as Float64Array[]);
  const states = rec.state.map(() => [] as Float64Array[]);
  const symbols = Array.from({ length: B }, () => [] as number[]);
  const record = () => {
    const o = inf.outputs(), s = inf.getState();
    rec.outputs.forEach((q, k) => outs[k]!.push(Float64Array.from(o[q.name]!.data)));
    rec.state.forEach((q, k) => states[k]!.push(stackLayout(rec) ? batchFirst(Float64Array.from(s[q.name]!.data), q.node.shape) : Float64Array.from(s[q.name]!.data)));
    return Float64Array.from(o[out.name]!.data);
  };
  let input = new Float64Array(B * I);
  let o: Float64Array | undefined;
  // Without a prompt a cross-entropy model first reads no symbol (a zero input), then samples from what it says.
  if (opts.xent && opts.prompt.length === 0) {
    inf.step(input);
    o = record();
  }
  for (const c of opts.prompt) {
    input = new Float64Array(B * I);
    for (let b = 0; b < B; b++) input[b * I + c] = 1;
    inf.step(input);
    o = record();
  }
  for (let t = 0; t < opts.steps; t++) {
    if (o !== undefined) {
      input = new Float64Array(B * I);
      for (let b = 0; b < B; b++) {
        if (opts.xent) {
          const c = sampleSymbol(o, b * O, O, opts.sampler);
          symbols[b]!.push(c);
          input[b * I + c] = 1;
        } else input.set(o.subarray(b * O, (b + 1) * O), b * I);
      }
    }
    // The last sampled symbol is printed, not fed: the loop ends after it is drawn.
    if (t === opts.steps - 1 && opts.xent && o !== undefined) break;
    inf.step(input);
    o = record();
  }
  return {
    outputs: new Map(rec.outputs.map((q, k) => [q.name, stackBlocks(outs[k]!, q.node.shape)])),
    states: new Map(rec.state.map((q, k) => [q.name, stackBlocks(states[k]!, stackLayout(rec) ? [q.node.shape[1]!, q.node.shape[0]!, ...q.node.shape.slice(2)] : q.node.shape)])),
    symbols,
  };
}

/**
 * A graph model's greedy decoding (each step's argmax fed back): one line of symbols per row, or with
 * --json one object { symbols [B][T], and every other greedy output such as attention [B, Ty, Tx] }.
 */
async function generateGraph(model: ModelDef, v: { params?: string | undefined; data?: string | undefined; json?: boolean | undefined; out?: string | undefined; 'no-plots'?: boolean | undefined } & Record<string, unknown>): Promise<number> {
  for (const flag of ['prompt', 'steps', 'temperature', 'top-k', 'seed', 'loss']) {
    if (v[flag] !== undefined) throw new UsageError(`generate: --${flag} is for a recurrence run in a closed loop; model ${model.name} decodes greedily (its argmax fed back)`);
  }
  if (v.data === undefined) throw new UsageError(`generate: --data FILE is required for model ${model.name} (the inputs its greedy decoding reads)`);
  const r = decodeGreedy(model, v.data, v.params!);
  const attention = r.outputs.get('attention');
  // attention.svg: the weights each decoder step gave the encoder steps (the first rows of the batch).
  let drawn: string | undefined;
  if (attention && !v['no-plots']) {
    const { attentionHeatmapSvg } = await import('../plot/attention.ts');
    const dir = v.out ?? path.join('out', model.name);
    makeDirectory(dir);
    drawn = path.join(dir, 'attention.svg');
    const target = r.vocabulary ? r.symbols.map((row) => row.map((c) => r.vocabulary![c] ?? '?')) : undefined;
    writeFileAtomic(drawn, await attentionHeatmapSvg(attention, { ...(r.source ? { source: r.source } : {}), ...(target ? { target } : {}), title: `${model.name}: attention of the greedy decoding` }));
  }
  if (v.json) {
    process.stdout.write(JSON.stringify({ symbols: r.symbols, ...Object.fromEntries([...r.outputs].map(([k, t]) => [k, tensorToJson(t, k)])) }) + '\n');
  } else {
    const text = (row: number[]) => (r.vocabulary ? row.map((c) => r.vocabulary![c] ?? '?').join('') : row.join(' '));
    process.stdout.write(r.symbols.map(text).join('\n') + '\n');
    if (drawn) process.stderr.write(`wrote ${drawn}\n`);
  }
  return 0;
}

export const generate: Command = {
  name: 'generate',
  summary: COMMAND_SUMMARIES.generate,
  usage: `unfold generate ${MODEL_USAGE} --params FILE [--prompt TEXT] [--steps N] [--temperature T] [--top-k K] [--seed S] [--loss mse|sse|xent]\n       unfold generate <graph.ts with greedy decoding> --params FILE --data FILE [--json] [--out DIR | --no-plots]`,
  async run(argv) {
    const { values: parsed, positionals } = parse('generate', argv, {
      ...modelOptions,
      ...lossOptions,
      params: { type: 'string' },
      prompt: { type: 'string' },
      steps: { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      data: { type: 'string' },
      json: { type: 'boolean' },
      out: { type: 'string' },
      'no-plots': { type: 'boolean' },
    });
    if (parsed.params === undefined) throw new UsageError('generate: --params FILE is required (a train --save checkpoint or a parameter file)');
    const steps = optionalIntFlag('generate', 'steps', parsed.steps);
    const temperature = numberFlag('generate', 'temperature', parsed.temperature, 1, (x) => x >= 0, 'a number ≥ 0 (0 picks the most likely symbol)')!;
    const topK = optionalIntFlag('generate', 'top-k', parsed['top-k']);
    const seed = intFlag('generate', 'seed', parsed.seed, 1, 0);
    if (parsed['loss-over'] !== undefined) throw new UsageError('generate: --loss-over has no meaning here; --loss says whether the model is cross-entropy (it samples) or regression (it feeds back its output)');
    // A text checkpoint carries its vocabulary: a cell's --input/--output come from it.
    const vocabulary = checkpointVocabulary(parsed.params);
    const values = { ...parsed };
    if (vocabulary && parsed.cell !== undefined) {
      for (const f of ['input', 'output'] as const) {
        if (parsed[f] !== undefined && parsed[f] !== String(vocabulary.length)) throw new UnfoldError(`--${f} ${parsed[f]}: ${parsed.params} was trained on a vocabulary of ${vocabulary.length} symbols, so --${f} is ${vocabulary.length} (or leave it out)`);
        values[f] = String(vocabulary.length);
      }
    }
    if (vocabulary && parsed.loss !== undefined && parsed.loss !== 'xent') throw new UsageError(`generate: ${parsed.params} is a text model (cross-entropy); --loss ${parsed.loss} does not apply`);
    const { model, source } = await resolveModel('generate', positionals, values, parsed.params);
    if (model.graph) return generateGraph(model, parsed);
    if (parsed.data !== undefined || parsed.json !== undefined || parsed.out !== undefined || parsed['no-plots'] !== undefined) throw new UsageError(`generate: --data, --json, --out and --no-plots are for a graph model's greedy decoding; ${source} is one recurrence, run in a closed loop`);
    const loss = vocabulary ? { ...lossSpec('generate', model, {}), kind: 'xent' as const } : lossSpec('generate', model, values);
    const rec = buildAt(model, 1);
    if (rec.input.length !== 1) throw new UnfoldError(`model "${model.name}" (${source}) has ${rec.input.length === 0 ? 'no input to feed its output back into; use unfold run' : `${rec.input.length} inputs; generate feeds the output back into one`}`);
    const out = lossOutput(rec, loss);
    const I = sizeOf(rec.input[0]!.node.shape) / (rec.input[0]!.node.shape[0] ?? 1);
    const O = sizeOf(out.node.shape) / (out.node.shape[0] ?? 1);
    if (vocabulary) checkTextModel({ input: vocabulary.length, output: vocabulary.length }, model, loss, parsed.params);
    else if (I !== O) throw new UnfoldError(`model "${model.name}": output "${out.name}" has ${O} features per row but input "${rec.input[0]!.name}" takes ${I}; a closed loop feeds one into the other`);
    if (topK !== undefined && topK > O) throw new UsageError(`generate: --top-k ${topK} is more than the ${O} symbols the model chooses from`);
    if (topK !== undefined && loss.kind !== 'xent') throw new UsageError('generate: --top-k applies to a cross-entropy model (one that samples symbols)');
    if (parsed.prompt !== undefined && !vocabulary) throw new UsageError(`generate: --prompt TEXT needs a text model (a train --text checkpoint with its vocabulary); ${parsed.params} has none`);
    const prompt = vocabulary && parsed.prompt !== undefined ? Array.from(encode(Array.from(parsed.prompt), vocabulary, `--prompt`)) : [];
    const params = readParams(parsed.params, rec);
    const inf = await inferenceFor(model, source, 1, 'f64', params);
    const n = steps ?? (vocabulary ? 200 : 20);
    const r = closedLoop(inf, rec, { xent: loss.kind === 'xent', prompt, steps: n, sampler: { temperature, topK, random: mulberry32(seed) }, output: out.name });
    if (vocabulary) {
      process.stdout.write((parsed.prompt ?? '') + r.symbols[0]!.map((c) => vocabulary[c]).join('') + '\n');
      return 0;
    }
    const json = JSON.parse(forwardJson(r)) as Record<string, unknown>;
    process.stdout.write(JSON.stringify(loss.kind === 'xent' ? { ...json, symbols: r.symbols } : json) + '\n');
    return 0;
  },
};
