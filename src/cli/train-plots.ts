// The pictures of a training run: loss per step (log scale) and the PyTorch tutorial's target/prediction/input figure over the last few windows, written atomically as SVG.
import path from 'node:path';
import { windowTimes } from '../data/sincos.ts';
import { writeFileAtomic } from '../io/atomic-write.ts';
import type { DataSource, TrainWindow } from './train-data.ts';

/** How many of the last windows (or --tbptt pieces) the prediction plot shows. */
export const PLOTTED_STEPS = 4;

/** One trained piece as plotted: batch row 0, first input and output channel. */
export interface PlotRecord {
  readonly t: number[];
  readonly input: number[] | undefined;
  readonly target: number[];
  readonly prediction: number[];
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

/**
 * The record of optimizer step s (0-based): piece p of window k, K steps long. `outputs` are the
 * trainer's [B, K, O] outputs of that step (computed before its update, as the tutorial plots).
 */
export function plotRecord(src: DataSource, full: TrainWindow, part: TrainWindow, outputs: Float64Array, s: number, k: number, p: number, K: number): PlotRecord {
  const times = sincosTimes(src, full, k)?.slice(p * K, (p + 1) * K);
  const { input: I, output: O } = src;
  const pick = (a: ArrayLike<number>, F: number) => Array.from({ length: K }, (_, j) => a[j * F]!);
  return {
    // Elsewhere the position in the whole sequence trained on: step s covers s·K ... s·K + K − 1.
    t: times ?? Array.from({ length: K }, (_, j) => s * K + j),
    input: part.x !== undefined && I > 0 ? pick(part.x, I) : undefined,
    target: pick(part.y, O),
    prediction: pick(outputs, O),
  };
}

/** Writes loss.svg and prediction.svg into `dir`; returns the files written and notes on plots left out. */
export async function writePlots(dir: string, model: string, losses: readonly number[], records: readonly PlotRecord[]): Promise<{ files: string[]; notes: string[] }> {
  // Vega is loaded only when a run draws (it costs every other command nothing then).
  const { lossPlotSvg, predictionPlotSvg } = await import('../plot/training.ts');
  const files: string[] = [];
  const notes: string[] = [];
  const lossFile = path.join(dir, 'loss.svg');
  if (losses.some((l) => !(l > 0))) {
    notes.push(`no ${lossFile}: a loss of 0 cannot be drawn on a log scale`);
  } else {
    writeFileAtomic(lossFile, await lossPlotSvg(losses, { title: `${model}: training loss per step` }));
    files.push(lossFile);
  }
  if (records.length > 0) {
    const cat = (f: (r: PlotRecord) => number[]) => records.flatMap(f);
    const hasInput = records.every((r) => r.input !== undefined);
    const svg = await predictionPlotSvg(
      {
        t: cat((r) => r.t),
        ...(hasInput ? { input: cat((r) => r.input!) } : {}),
        target: cat((r) => r.target),
        prediction: cat((r) => r.prediction),
      },
      { title: `${model}: prediction over the last ${records.length} window${records.length === 1 ? '' : 's'} (batch row 0)` },
    );
    const file = path.join(dir, 'prediction.svg');
    writeFileAtomic(file, svg);
    files.push(file);
  }
  return { files, notes };
}
