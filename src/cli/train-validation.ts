// Validation while training: held-out data (`--val FILE`, or for text `--val-text FILE` / `--val-split F`) scored every `--val-every N` steps with the current parameters, forward only, and `--early-stop P`: stop after P validations without a lower validation loss.
import type { ModelDef } from '../dsl/model.ts';
import type { TrainerConfig } from '../emit/trainer.ts';
import { encode, readText } from '../data/text.ts';
import type { ValidationPoint } from '../plot/training.ts';
import { intFlag, numberFlag, UsageError, type Options } from './command.ts';
import { Evaluator } from './evaluator.ts';
import type { Head } from './head-option.ts';
import { metricsOf, type Metrics } from './metrics.ts';
import { readWindowsFile } from '../io/tensor-file.ts';
import type { LossSpec } from '../transforms/loss.ts';
import { fileSource, type DataSource } from './train-data.ts';
import { heldOutTextSource, type TextData } from './text-data.ts';
import type { TextRun } from './text-options.ts';

export const validationOptions = {
  val: { type: 'string' },
  'val-text': { type: 'string' },
  'val-split': { type: 'string' },
  'val-every': { type: 'string' },
  'early-stop': { type: 'string' },
} as const satisfies Options;

export const VALIDATION_FLAGS = '[--val FILE | --val-text FILE | --val-split F] [--val-every N] [--early-stop P]';

type Flags = { readonly [k: string]: string | boolean | undefined };

/** The flags, checked before any file is read: which held-out data, how often, and the patience. */
export interface ValidationFlags {
  readonly file?: string;
  readonly textFile?: string;
  /** The last fraction of the --text held out. */
  readonly split?: number;
  readonly every?: number;
  readonly patience?: number;
}

export function validationFlags(command: string, v: Flags): ValidationFlags | undefined {
  const text = v['text'] !== undefined;
  const file = v['val'] as string | undefined, textFile = v['val-text'] as string | undefined, split = v['val-split'] as string | undefined;
  if (text && file !== undefined) throw new UsageError(`${command}: with --text, hold text out with --val-text FILE or --val-split F (--val takes a windows file)`);
  if (!text && (textFile !== undefined || split !== undefined)) throw new UsageError(`${command}: --${textFile !== undefined ? 'val-text' : 'val-split'} goes with --text FILE; for windows give --val FILE`);
  if (textFile !== undefined && split !== undefined) throw new UsageError(`${command}: give --val-text FILE or --val-split F, not both`);
  const every = v['val-every'] === undefined ? undefined : intFlag(command, 'val-every', v['val-every'] as string);
  const patience = v['early-stop'] === undefined ? undefined : intFlag(command, 'early-stop', v['early-stop'] as string);
  if (file === undefined && textFile === undefined && split === undefined) {
    if (every !== undefined || patience !== undefined) throw new UsageError(`${command}: --${every !== undefined ? 'val-every' : 'early-stop'} needs held-out data: --val FILE (or with --text, --val-text FILE or --val-split F)`);
    return undefined;
  }
  const fraction = numberFlag(command, 'val-split', split, undefined, (x) => x > 0 && x < 1, 'a fraction in (0, 1)');
  return {
    ...(file !== undefined ? { file } : {}),
    ...(textFile !== undefined ? { textFile } : {}),
    ...(fraction !== undefined ? { split: fraction } : {}),
    ...(every !== undefined ? { every } : {}),
    ...(patience !== undefined ? { patience } : {}),
  };
}

/** The training text without its held-out last fraction, and that fraction as its own text. */
export function splitText(data: TextData, fraction: number): { train: TextData; val: TextData } {
  const cut = Math.round(data.indices.length * (1 - fraction));
  const pct = `${+(fraction * 100).toFixed(2)}%`;
  return {
    train: { ...data, file: `${data.file} (the first ${+(100 - fraction * 100).toFixed(2)}%)`, indices: data.indices.subarray(0, cut) },
    val: { ...data, file: `${data.file} (the last ${pct})`, indices: data.indices.subarray(cut) },
  };
}

/** The held-out data scored during a run, the validations so far, and the early-stopping count. */
export class Validation {
  readonly history: ValidationPoint[] = [];
  /** The lowest validation loss so far, and the step (of this run) it was measured after. */
  best: { loss: number; step: number } | undefined;
  private since = 0;

  private constructor(
    /** The loss (and accuracy, perplexity) of parameters over every held-out window. */
    private readonly score: (params: Record<string, { data: ArrayLike<number> }>) => Promise<Metrics>,
    readonly every: number,
    readonly patience: number | undefined,
  ) {}

  /**
   * The held-out data as a source: a windows file checked like --data, or text in the training
   * vocabulary. Scored every `every` steps (default: one pass over the training data, else a tenth of the run).
   */
  static create(flags: ValidationFlags, model: ModelDef, source: string, cfg: TrainerConfig, text: TextRun | undefined, heldOut: TextData | undefined, stepsPerPass: number | undefined, total: number, head: Head = 'last'): Validation {
    let src: DataSource;
    if (text) {
      const data = heldOut ?? { file: flags.textFile!, vocabulary: text.data.vocabulary, indices: encode(readText(flags.textFile!, '--val-text').chars, text.data.vocabulary, `--val-text ${flags.textFile}`) };
      src = heldOutTextSource(data, text.seqLen, text.batch);
    } else {
      src = fileSource(flags.file!, model, cfg.loss);
    }
    const evaluator = new Evaluator({ model, source, loss: cfg.loss, dtype: cfg.dtype, ...(cfg.target !== undefined ? { target: cfg.target } : {}), head }, src);
    const carry = text !== undefined;
    const score = async (params: Record<string, { data: ArrayLike<number> }>) => metricsOf(await evaluator.evaluate(params, src.count ?? 1, carry), cfg.loss.kind, src.output, carry);
    return new Validation(score, everyOf(flags, stepsPerPass, total), flags.patience);
  }

  /** A graph model's held-out windows file (its own inputs by name), scored forward through the interpreter. */
  static forGraph(flags: ValidationFlags, model: ModelDef, loss: LossSpec, stepsPerPass: number | undefined, total: number): Validation {
    const file = flags.file!;
    const windows = readWindowsFile(file);
    const score = async (params: Record<string, { shape?: readonly number[]; data: ArrayLike<number> }>) => {
      const values = new Map(Object.entries(params).map(([k, t]) => [k, Float64Array.from(t.data)]));
      // The trainer's parameters, shaped as the model declares them (graph-model.ts, with the interpreter, loaded to score).
      const { graphMetrics } = await import('./graph-model.ts');
      return graphMetrics(model, file, windows, (m) => new Map(m.params.map((p) => [p.name, { shape: [...p.node.shape], data: values.get(p.name)! }])), loss);
    };
    return new Validation(score, everyOf(flags, stepsPerPass, total), flags.patience);
  }

  /** Whether to validate after step k (1-based, of this run): every `every` steps and after the last. */
  due(k: number, total: number): boolean {
    return k % this.every === 0 || k === total;
  }

  /** Scores the parameters on every held-out window (text: the state carried from window to window, as in training). */
  async run(params: Record<string, { data: ArrayLike<number> }>, k: number): Promise<Metrics> {
    const m = await this.score(params);
    this.history.push({ step: k, loss: m.loss });
    return m;
  }

  /** Records a validation loss: whether it is the best so far, and whether early stopping ends the run here. */
  record(loss: number, k: number): { improved: boolean; stop: boolean } {
    if (this.best === undefined || loss < this.best.loss) {
      this.best = { loss, step: k };
      this.since = 0;
      return { improved: true, stop: false };
    }
    this.since++;
    return { improved: false, stop: this.patience !== undefined && this.since >= this.patience };
  }
}

/** Validation every `--val-every N` steps; by default once a pass over the training data, else a tenth of the run. */
function everyOf(flags: ValidationFlags, stepsPerPass: number | undefined, total: number): number {
  return flags.every ?? Math.max(1, stepsPerPass ?? Math.round(total / 10));
}

/** Where `--save FILE` puts the last parameters when --early-stop keeps the best ones in FILE: `ck.json` → `ck.last.json`. */
export function lastCheckpointPath(save: string): string {
  return /\.json$/i.test(save) ? save.replace(/\.json$/i, '.last.json') : `${save}.last`;
}
