// Training figures as SVG, each drawn by Vega-Lite from a spec: the loss curve; for a prediction
// task each window on its own panel; for an input-free system its trajectory; for cross-entropy the
// accuracy and the probability of the true symbol. A line never joins values of different windows.

import type { TopLevelSpec } from 'vega-lite';
import { check } from '../ir/errors.ts';
import { vegaLiteToSvg } from './vega.ts';

export interface PlotOptions {
  readonly title?: string;
}

export interface PredictionSeries {
  readonly t: readonly number[];
  /** Absent for an input-free model: the plot then has no input line (and no legend entry). */
  readonly input?: readonly number[];
  readonly target: readonly number[];
  readonly prediction: readonly number[];
}

const SIZE = { width: 600, height: 320 } as const;

// Log-axis labels: plain numbers near 1, exponent notation (1e-6) far from it.
const LOG_LABEL = "abs(datum.value) >= 1e-3 && abs(datum.value) < 1e4 ? format(datum.value, '~g') : format(datum.value, '~e')";

function checkFinite(plot: string, name: string, values: readonly number[]): void {
  check(values.length > 0, () => `${plot}: ${name} is empty, nothing to plot`);
  values.forEach((v, i) => check(Number.isFinite(v), () => `${plot}: ${name}[${i}] is ${v}, not a finite number`));
}

/** A validation run: the loss on held-out data after training step `step`. */
export interface ValidationPoint {
  readonly step: number;
  readonly loss: number;
}

/**
 * Loss per training step (steps 1..N) on a log-scale y axis, as a line with points; with
 * `validation`, the validation loss after the steps it was measured at, as a second line.
 */
export async function lossPlotSvg(losses: readonly number[], opts: PlotOptions & { readonly validation?: readonly ValidationPoint[] } = {}): Promise<string> {
  checkFinite('loss plot', 'losses', losses);
  losses.forEach((v, i) => check(v > 0, () => `loss plot: losses[${i}] is ${v}, but a log scale needs positive values`));
  const validation = opts.validation ?? [];
  validation.forEach((v, i) => check(Number.isFinite(v.loss) && v.loss > 0, () => `loss plot: validation[${i}] is ${v.loss}, but a log scale needs positive values`));
  const x = {
    field: 'step', type: 'quantitative', title: 'training step',
    scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' },
  } as const;
  const y = {
    field: 'loss', type: 'quantitative', title: 'loss (log scale)',
    scale: { type: 'log' }, axis: { labelExpr: LOG_LABEL, tickCount: 6 },
  } as const;
  const spec: TopLevelSpec = validation.length === 0
    ? {
        title: opts.title ?? 'Training loss',
        ...SIZE,
        data: { values: losses.map((loss, i) => ({ step: i + 1, loss })) },
        mark: { type: 'line', point: { filled: true, size: 16 }, strokeWidth: 1.5 },
        encoding: { x, y },
      }
    : {
        title: opts.title ?? 'Training and validation loss',
        ...SIZE,
        data: { values: [...losses.map((loss, i) => ({ step: i + 1, loss, series: 'training' })), ...validation.map((v) => ({ ...v, series: 'validation' }))] },
        mark: { type: 'line', point: { filled: true, size: 16 }, strokeWidth: 1.5 },
        encoding: {
          x, y,
          color: { field: 'series', type: 'nominal', title: null, scale: { domain: ['training', 'validation'], range: ['#1f77b4', '#d62728'] } },
        },
      };
  return vegaLiteToSvg(spec);
}

// Legend order, colours and dashes: input behind in dashed grey, target red, prediction blue.
const SERIES = ['input', 'target', 'prediction'] as const;
const COLOURS = ['#aaaaaa', '#d62728', '#1f77b4'];
const DASHES = [[5, 4], [1, 0], [1, 0]];

/** One trained window as the model predicted it, under the parameters of that training step. */
export interface PredictionWindow {
  /** Its panel's title: which window, at which training step. */
  readonly label: string;
  readonly t: readonly number[];
  /** Absent for a model without input: no input line then (and no legend entry). */
  readonly input?: readonly number[];
  readonly target: readonly number[];
  readonly prediction: readonly number[];
}

export interface PredictionPlotOptions extends PlotOptions {
  /** The x axis title (default `time t`). */
  readonly time?: string;
}

/**
 * Input (when given), target and prediction against time, one panel per window. Windows trained
 * under different parameters are never joined into one line: each has its own panel and x range.
 */
export async function predictionPlotSvg(windows: readonly PredictionWindow[], opts: PredictionPlotOptions = {}): Promise<string> {
  const plot = 'prediction plot';
  check(windows.length > 0, () => `${plot}: no window to plot`);
  // Colours and dashes stay tied to their series when the input is left out.
  const shown = SERIES.filter((name) => windows.every((w) => w[name] !== undefined));
  const values = windows.flatMap((w, k) => {
    checkFinite(plot, `window ${k} t`, w.t);
    for (const name of shown) {
      const v = w[name]!;
      checkFinite(plot, `window ${k} ${name}`, v);
      check(v.length === w.t.length, () => `${plot}: window ${k} ${name} has ${v.length} values but t has ${w.t.length}`);
    }
    return shown.flatMap((name) => w[name]!.map((value, i) => ({ window: w.label, order: k, t: w.t[i], value, series: name })));
  });
  const pick = <T>(all: readonly T[]) => shown.map((name) => all[SERIES.indexOf(name)]!);
  const spec: TopLevelSpec = {
    title: opts.title ?? 'Prediction vs target',
    data: { values },
    facet: { column: { field: 'window', type: 'nominal', title: null, sort: { field: 'order' } } },
    spec: {
      width: Math.max(140, Math.round(SIZE.width / windows.length)),
      height: SIZE.height,
      mark: { type: 'line', strokeWidth: 2 },
      encoding: {
        x: { field: 't', type: 'quantitative', title: opts.time ?? 'time t', scale: { zero: false, nice: false } },
        y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
        color: { field: 'series', type: 'nominal', title: null, scale: { domain: [...shown], range: pick(COLOURS) } },
        strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: [...shown], range: pick(DASHES) } },
      },
    },
    resolve: { scale: { x: 'independent' } },
  };
  return vegaLiteToSvg(spec);
}

/** One window of an input-free system: its trajectory, component by component, as observed and as the model ran it. */
export interface TrajectoryWindow {
  readonly label: string;
  /** Steps t = 1..T of the window. */
  readonly t: readonly number[];
  /** target[c][j], prediction[c][j]: component c at step t[j]. */
  readonly target: readonly (readonly number[])[];
  readonly prediction: readonly (readonly number[])[];
}

/** Components drawn as lines (one small panel each); above this many, as a heat map. */
export const TRAJECTORY_LINES_MAX = 4;

/**
 * The trajectory of an input-free system s(t) = f(s(t−1)): each component against t, target and
 * model; for two components also the orbit in the plane (component 2 against component 1, in
 * order of t); for many components (a Hopfield net's units) a heat map of target and model.
 */
export async function trajectoryPlotSvg(w: TrajectoryWindow, opts: PlotOptions = {}): Promise<string> {
  const plot = 'trajectory plot';
  const C = w.target.length;
  check(C > 0 && w.prediction.length === C, () => `${plot}: target has ${C} components, prediction ${w.prediction.length}`);
  checkFinite(plot, 't', w.t);
  const series = ['target', 'prediction'] as const;
  for (const name of series) {
    w[name].forEach((v, c) => {
      checkFinite(plot, `${name}[${c}]`, v);
      check(v.length === w.t.length, () => `${plot}: ${name}[${c}] has ${v.length} values but t has ${w.t.length}`);
    });
  }
  const values = series.flatMap((name) => w[name].flatMap((v, c) => v.map((value, j) => ({ t: w.t[j], component: `component ${c + 1}`, c, value, series: name }))));
  const title = opts.title ?? `Trajectory (${w.label})`;
  const colour = { field: 'series', type: 'nominal', title: null, scale: { domain: [...series], range: COLOURS.slice(1) } } as const;
  // The target wide and pale under the model's line, so a close fit still shows both.
  const width = { field: 'series', type: 'ordinal', sort: [...series], title: null, scale: { domain: [...series], range: [5, 1.5] } } as const;
  const opacity = { field: 'series', type: 'ordinal', sort: [...series], title: null, scale: { domain: [...series], range: [0.45, 1] } } as const;
  if (C > TRAJECTORY_LINES_MAX) {
    const bound = Math.max(...values.map((v) => Math.abs(v.value)), 1e-12);
    const spec: TopLevelSpec = {
      title,
      data: { values },
      facet: { column: { field: 'series', type: 'nominal', title: null, sort: [...series] } },
      spec: {
        width: 300,
        height: Math.min(320, 16 * C),
        mark: 'rect',
        encoding: {
          x: { field: 't', type: 'ordinal', title: 'step t' },
          y: { field: 'c', type: 'ordinal', title: 'component' },
          color: { field: 'value', type: 'quantitative', title: 'value', scale: { scheme: 'blueorange', domain: [-bound, bound] } },
        },
      },
    };
    return vegaLiteToSvg(spec);
  }
  const lines = {
    data: { values },
    facet: { row: { field: 'component', type: 'nominal', title: null, sort: { field: 'c' } } },
    spec: {
      width: 360,
      height: Math.round(SIZE.height / C),
      mark: { type: 'line', point: { size: 14 } },
      encoding: {
        x: { field: 't', type: 'quantitative', title: 'step t', scale: { zero: false, nice: false } },
        y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
        color: colour,
        strokeWidth: width,
        opacity,
      },
    },
  } as const;
  if (C !== 2) return vegaLiteToSvg({ title, ...lines } as TopLevelSpec);
  // The orbit: one point per step with both components, joined in order of t.
  const orbit = series.flatMap((name) => w.t.map((t, j) => ({ t, series: name, s1: w[name][0]![j], s2: w[name][1]![j] })));
  const spec: TopLevelSpec = {
    title,
    hconcat: [
      lines,
      {
        data: { values: orbit },
        width: SIZE.height,
        height: SIZE.height,
        mark: { type: 'line', point: { size: 14 } },
        encoding: {
          x: { field: 's1', type: 'quantitative', title: 'component 1', scale: { zero: false } },
          y: { field: 's2', type: 'quantitative', title: 'component 2', scale: { zero: false } },
          order: { field: 't', type: 'quantitative' },
          color: colour,
          strokeWidth: width,
          opacity,
        },
      },
    ],
  } as TopLevelSpec;
  return vegaLiteToSvg(spec);
}

/** A cross-entropy run: accuracy at every training step, and the last windows' probabilities of the true symbol. */
export interface ClassificationRun {
  /** At a training step, the fraction of predicted symbols (argmax of the logits) equal to the target's. */
  readonly accuracy: readonly { readonly step: number; readonly accuracy: number }[];
  readonly windows: readonly { readonly label: string; readonly t: readonly number[]; readonly probability: readonly number[] }[];
}

/** Two panels: accuracy per training step, and p(true symbol) per step t of the last windows, one line each. */
export async function classificationPlotSvg(run: ClassificationRun, opts: PredictionPlotOptions = {}): Promise<string> {
  const plot = 'classification plot';
  const accuracy = run.accuracy.map((a) => a.accuracy);
  checkFinite(plot, 'accuracy', accuracy);
  check(run.windows.length > 0, () => `${plot}: no window to plot`);
  const inUnit = (name: string, v: readonly number[]) => v.forEach((p, i) => check(p >= 0 && p <= 1, () => `${plot}: ${name}[${i}] is ${p}, not in [0, 1]`));
  inUnit('accuracy', accuracy);
  const probabilities = run.windows.flatMap((w, k) => {
    checkFinite(plot, `window ${k} probability`, w.probability);
    inUnit(`window ${k} probability`, w.probability);
    check(w.probability.length === w.t.length, () => `${plot}: window ${k} probability has ${w.probability.length} values but t has ${w.t.length}`);
    return w.probability.map((p, i) => ({ t: w.t[i], p, window: w.label, order: k }));
  });
  const unit = { domain: [0, 1] };
  const spec: TopLevelSpec = {
    title: opts.title ?? 'Accuracy and probability of the true symbol',
    vconcat: [
      {
        data: { values: run.accuracy.map((a) => ({ ...a })) },
        ...SIZE,
        height: 200,
        mark: { type: 'line', point: { filled: true, size: 16 }, strokeWidth: 1.5, color: COLOURS[2] },
        encoding: {
          x: { field: 'step', type: 'quantitative', title: 'training step', scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'accuracy', type: 'quantitative', title: 'accuracy', scale: unit },
        },
      },
      {
        data: { values: probabilities },
        ...SIZE,
        height: 200,
        mark: { type: 'line', strokeWidth: 2, point: { size: 14 } },
        encoding: {
          x: { field: 't', type: 'quantitative', title: opts.time ?? 'time t', scale: { zero: false, nice: false } },
          y: { field: 'p', type: 'quantitative', title: 'p(true symbol)', scale: unit },
          color: { field: 'window', type: 'nominal', title: null, sort: { field: 'order' } },
        },
      },
    ],
  };
  return vegaLiteToSvg(spec);
}
