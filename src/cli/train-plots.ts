// The pictures of a training run, chosen by its task and written atomically as SVG: the loss per step (log scale), and
// for cross-entropy the accuracy and the probability of the true symbol, for an input-free system its trajectory,
// else the tutorial's target/prediction/input figure with each of the last windows on its own panel.
import path from 'node:path';
import { windowTimes } from '../data/sincos.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import type { LossSpec } from '../transforms/loss.ts';
import type { DataSource, TrainWindow } from './train-data.ts';
import type { ValidationPoint } from '../plot/training.ts';

/** How many of the last windows (or --tbptt pieces) the prediction plots show. */
export const PLOTTED_STEPS = 4;

/** One trained piece as plotted: batch row 0 (its steps up to its length), flat [steps, ·]. */
interface Kept {
  /** Which window (and piece) at which training step: each is drawn on its own, under that step's parameters. */
  readonly label: string;
  readonly t: number[];
  /** Whether t is the task's time (the sin→cos task), else the step in the window. */
  readonly taskTime: boolean;
  /** Input channel 0 (undefined without input). */
  readonly input: number[] | undefined;
  /** [steps, O]: every output channel, target and model (the logits, for cross-entropy). */
  readonly target: Float64Array;
  readonly prediction: Float64Array;
}

/**
 * Whether window k is the sin→cos task's (x = sin t, y = cos t on windowTimes(k, T) in row 0,
 * channel 0): then the plot's x axis is that time t, as in the tutorial. Checked on the data
 * rather than trusted from a model name, so graphs/lstm.ts and gru.ts get it too.
 */
function sincosTimes(src: DataSource, w: TrainWindow, k: number): number[] | undefined {
  if (!src.fromTask || w.x === undefined) return undefined;
  const T = src.seqLen;
  const ts = windowTimes(k, T);
  const close = (a: number, b: number) => Math.abs(a - b) <= 1e-9;
  for (let s = 0; s < T; s++) {
    if (!close(w.x[s * src.input]!, Math.sin(ts[s]!)) || !close(w.y[s * src.output]!, Math.cos(ts[s]!))) return undefined;
  }
  return ts;
}

const argmax = (a: ArrayLike<number>, from: number, n: number): number => {
  let best = 0;
  for (let c = 1; c < n; c++) if (a[from + c]! > a[from + best]!) best = c;
  return best;
};

/** Whether a target row holds a symbol (a step the data leaves at zero, outside the loss, does not). */
const hasSymbol = (y: ArrayLike<number>, from: number, n: number): boolean => {
  for (let c = 0; c < n; c++) if (y[from + c]! > 0) return true;
  return false;
};

/** softmax(logits)[c] of the row at `from`. */
function softmaxAt(logits: ArrayLike<number>, from: number, n: number, c: number): number {
  let m = -Infinity;
  for (let j = 0; j < n; j++) m = Math.max(m, logits[from + j]!);
  let z = 0;
  for (let j = 0; j < n; j++) z += Math.exp(logits[from + j]! - m);
  return Math.exp(logits[from + c]! - m) / z;
}

/** What a run's plots need, gathered step by step: the last pieces trained, and for cross-entropy the accuracy of every step. */
export class PlotRecorder {
  private readonly kept: Kept[] = [];
  private readonly accuracy: { step: number; accuracy: number }[] = [];

  constructor(
    private readonly src: DataSource,
    private readonly loss: LossSpec,
    /** Optimizer steps in the run. */
    private readonly total: number,
    /** Whether the run may end before `total` (early stopping): then every step is kept until a later one displaces it. */
    private readonly mayStopEarly = false,
    /** `final`: one output per row (the head on h_n), at its last valid step; only that step is drawn. */
    private readonly head: 'last' | 'final' = 'last',
  ) {}

  /**
   * Optimizer step i of this run (0-based; s counts pieces over the whole run) trained piece p of
   * window k, K steps long; `outputsOf()` gives its [B, K, O] outputs, computed before its update
   * (asked for only when this step is drawn or scored). `stopping`: the run stops after this step (a signal), so it is drawn.
   */
  step(i: number, s: number, k: number, p: number, K: number, full: TrainWindow, part: TrainWindow, outputsOf: () => Float64Array, stopping = false): void {
    const drawn = stopping || this.mayStopEarly || i >= this.total - PLOTTED_STEPS;
    if (this.loss.kind !== 'xent' && !drawn) return;
    const outputs = outputsOf();
    const { seqLen: T, input: I, output: O } = this.src;
    const B = part.batch;
    // Windows may be shorter than the longest (the trainer's), and rows shorter than their window:
    // a row's steps beyond its length are padding, neither scored nor drawn.
    const steps = part.y.length / (B * O);
    const stride = outputs.length / (B * O);
    const rowLength = (b: number): number => Math.min(steps, part.lengths?.[b] ?? steps);
    const last = (p + 1) * K >= T;
    if (this.loss.kind === 'xent') {
      let right = 0, counted = 0;
      for (let b = 0; b < B; b++) {
        // The steps the loss looks at: every step of the row, or its last (in the window's last piece).
        const n = rowLength(b);
        for (let j = this.loss.over === 'last' ? (last ? n - 1 : n) : 0; j < n; j++) {
          const y = (b * steps + j) * O;
          if (!hasSymbol(part.y, y, O)) continue;
          counted++;
          if (argmax(outputs, (b * stride + j) * O, O) === argmax(part.y, y, O)) right++;
        }
      }
      if (counted > 0) this.accuracy.push({ step: s + 1, accuracy: right / counted });
    }
    if (!drawn) return;
    const n = rowLength(0);
    // The final-state head predicts once per row: its one point, at the row's last valid step.
    const from = this.head === 'final' ? n - 1 : 0;
    const times = sincosTimes(this.src, full, k)?.slice(p * K, p * K + n);
    if (this.kept.length === PLOTTED_STEPS) this.kept.shift();
    return void this.kept.push({
      label: `window ${k + 1}${T / K > 1 ? `, piece ${p + 1}` : ''} · step ${s + 1}`,
      // Elsewhere the step t = 1..T within the window.
      t: (times ?? Array.from({ length: n }, (_, j) => p * K + j + 1)).slice(from),
      taskTime: times !== undefined,
      input: part.x !== undefined && I > 0 ? Array.from({ length: n - from }, (_, j) => part.x![(from + j) * I]!) : undefined,
      target: part.y.slice(from * O, n * O),
      prediction: outputs.slice(from * O, n * O),
    });
  }

  /** Writes loss.svg and the task's plot into `dir`; returns the files written and notes on plots left out. */
  async write(dir: string, model: string, losses: readonly number[], validation: readonly ValidationPoint[] = []): Promise<{ files: string[]; notes: string[] }> {
    // Vega is loaded only when a run draws (it costs every other command nothing then).
    const { classificationPlotSvg, lossPlotSvg, predictionPlotSvg, trajectoryPlotSvg } = await import('../plot/training.ts');
    const files: string[] = [];
    const notes: string[] = [];
    const put = (name: string, svg: string): void => {
      const file = path.join(dir, name);
      writeFileAtomic(file, svg);
      files.push(file);
    };
    if (losses.some((l) => !(l > 0))) notes.push(`no ${path.join(dir, 'loss.svg')}: a loss of 0 cannot be drawn on a log scale`);
    else if (validation.some((v) => !(v.loss > 0))) notes.push(`no ${path.join(dir, 'loss.svg')}: a validation loss of 0 cannot be drawn on a log scale`);
    else put('loss.svg', await lossPlotSvg(losses, validation.length > 0 ? { title: `${model}: training loss per step, validation loss`, validation } : { title: `${model}: training loss per step` }));
    const kept = this.kept;
    if (kept.length === 0) return { files, notes };
    const O = this.src.output;
    const timeTitle = kept.every((w) => w.taskTime) ? {} : { time: 'step t in the window' };
    if (this.loss.kind === 'xent') {
      const windows = kept.map((w) => {
        const t: number[] = [], probability: number[] = [];
        for (let j = 0; j < w.t.length; j++) {
          if (!hasSymbol(w.target, j * O, O)) continue;
          t.push(w.t[j]!);
          probability.push(softmaxAt(w.prediction, j * O, O, argmax(w.target, j * O, O)));
        }
        return { label: w.label, t, probability };
      }).filter((w) => w.t.length > 0);
      if (windows.length === 0 || this.accuracy.length === 0) notes.push('no classification plot: no target in the plotted windows holds a symbol');
      else put('classification.svg', await classificationPlotSvg({ accuracy: this.accuracy, windows }, { title: `${model}: accuracy per step, and p(true symbol) in the last windows (batch row 0)`, ...timeTitle }));
      return { files, notes };
    }
    const channel = (a: Float64Array, c: number) => Array.from({ length: a.length / O }, (_, j) => a[j * O + c]!);
    if (this.src.input === 0) {
      // An input-free system: the last window's trajectory, every component.
      const w = kept[kept.length - 1]!;
      const components = Array.from({ length: O }, (_, c) => c);
      put('trajectory.svg', await trajectoryPlotSvg(
        { label: w.label, t: w.t, target: components.map((c) => channel(w.target, c)), prediction: components.map((c) => channel(w.prediction, c)) },
        { title: `${model}: trajectory of ${w.label} (batch row 0)` },
      ));
      return { files, notes };
    }
    put('prediction.svg', await predictionPlotSvg(
      kept.map((w) => ({ label: w.label, t: w.t, ...(w.input ? { input: w.input } : {}), target: channel(w.target, 0), prediction: channel(w.prediction, 0) })),
      { title: `${model}: prediction on each of the last ${kept.length} windows, before that step's update (batch row 0, channel 0)`, ...timeTitle },
    ));
    return { files, notes };
  }
}
