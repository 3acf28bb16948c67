// Training figures as SVG: the loss curve and the PyTorch-tutorial prediction plot, drawn with Vega-Lite.

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

/** Loss per training step (steps 1..N) on a log-scale y axis, as a line with points. */
export async function lossPlotSvg(losses: readonly number[], opts: PlotOptions = {}): Promise<string> {
  checkFinite('loss plot', 'losses', losses);
  losses.forEach((v, i) => check(v > 0, () => `loss plot: losses[${i}] is ${v}, but a log scale needs positive values`));
  const spec: TopLevelSpec = {
    title: opts.title ?? 'Training loss',
    ...SIZE,
    data: { values: losses.map((loss, i) => ({ step: i + 1, loss })) },
    mark: { type: 'line', point: { filled: true, size: 16 }, strokeWidth: 1.5 },
    encoding: {
      x: {
        field: 'step', type: 'quantitative', title: 'training step',
        scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' },
      },
      y: {
        field: 'loss', type: 'quantitative', title: 'loss (log scale)',
        scale: { type: 'log' }, axis: { labelExpr: LOG_LABEL, tickCount: 6 },
      },
    },
  };
  return vegaLiteToSvg(spec);
}

// Legend order, colours and dashes: input behind in dashed grey, target red, prediction blue.
const SERIES = ['input', 'target', 'prediction'] as const;
const COLOURS = ['#aaaaaa', '#d62728', '#1f77b4'];
const DASHES = [[5, 4], [1, 0], [1, 0]];

/** Input (when given), target and prediction against time t, one line each, with a legend. */
export async function predictionPlotSvg(series: PredictionSeries, opts: PlotOptions = {}): Promise<string> {
  const plot = 'prediction plot';
  // Colours and dashes stay tied to their series when the input is left out.
  const shown = SERIES.filter((name) => series[name] !== undefined);
  checkFinite(plot, 't', series.t);
  for (const name of shown) {
    const values = series[name]!;
    checkFinite(plot, name, values);
    check(values.length === series.t.length, () =>
      `${plot}: ${name} has ${values.length} values but t has ${series.t.length}`);
  }
  const values = shown.flatMap((name) =>
    series[name]!.map((value, i) => ({ t: series.t[i], value, series: name })));
  const pick = <T>(all: readonly T[]) => shown.map((name) => all[SERIES.indexOf(name)]!);
  const spec: TopLevelSpec = {
    title: opts.title ?? 'Prediction vs target',
    ...SIZE,
    data: { values },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 't', type: 'quantitative', title: 'time t', scale: { zero: false, nice: false } },
      y: { field: 'value', type: 'quantitative', title: 'value', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, scale: { domain: [...shown], range: pick(COLOURS) } },
      strokeDash: { field: 'series', type: 'nominal', title: null, scale: { domain: [...shown], range: pick(DASHES) } },
    },
  };
  return vegaLiteToSvg(spec);
}
