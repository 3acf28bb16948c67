// The gradient flow through time as a heat map: log10 ‖∂L/∂s(t)‖ over training step × t, the
// picture of vanishing (or exploding) gradients that `train --grad-flow` writes.
import type { TopLevelSpec } from 'vega-lite';
import { vegaLiteToSvg } from './vega.ts';

export interface GradFlowPlotOptions {
  readonly title?: string;
  /** The training steps before rows[0] (a resumed run): its steps are numbered on from there. */
  readonly stepsBefore?: number;
}

/** At most this many cells along each axis: a longer run or window is shown in bins (geometric means). */
export const GRAD_FLOW_BINS = { steps: 50, t: 100 } as const;

/** Consecutive indices 0..n−1 in at most `max` bins of equal width: [first, last] of each (1-based). */
function bins(n: number, max: number): [number, number][] {
  const w = Math.ceil(n / max);
  return Array.from({ length: Math.ceil(n / w) }, (_, i) => [i * w + 1, Math.min(n, (i + 1) * w)]);
}

/**
 * rows[k][t] = ‖∂L/∂s(t + 1)‖ after training step k + 1. A norm that is not finite and positive (past
 * a shorter window's end, or a step the loss never reaches) has no logarithm and is left out; a
 * bin of several steps or times shows the geometric mean of the norms it holds.
 */
export async function gradFlowPlotSvg(rows: readonly (readonly number[])[], opts: GradFlowPlotOptions = {}): Promise<string> {
  const T = Math.max(0, ...rows.map((r) => r.length));
  const values: { step: string; t: string; log10: number }[] = [];
  const label = ([a, b]: [number, number]) => (a === b ? String(a) : `${a}–${b}`);
  const before = opts.stepsBefore ?? 0;
  const stepLabel = ([a, b]: [number, number]) => label([a + before, b + before]);
  for (const sb of bins(rows.length, GRAD_FLOW_BINS.steps)) {
    for (const tb of bins(T, GRAD_FLOW_BINS.t)) {
      let sum = 0, n = 0;
      for (let k = sb[0] - 1; k < sb[1]; k++) {
        for (let t = tb[0] - 1; t < tb[1]; t++) {
          const v = rows[k]![t];
          if (v !== undefined && Number.isFinite(v) && v > 0) (sum += Math.log10(v)), n++;
        }
      }
      if (n > 0) values.push({ step: stepLabel(sb), t: label(tb), log10: sum / n });
    }
  }
  const order = (xs: [number, number][], f = label) => xs.map(f);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title ?? 'gradient flow through time: log10 ‖∂L/∂s(t)‖',
    width: 480,
    height: 300,
    data: { values },
    mark: { type: 'rect' },
    encoding: {
      x: { field: 't', type: 'ordinal', title: 't (step within the window)', sort: order(bins(T, GRAD_FLOW_BINS.t)), axis: { labelOverlap: true, labelAngle: 0 } },
      y: { field: 'step', type: 'ordinal', title: 'training step', sort: order(bins(rows.length, GRAD_FLOW_BINS.steps), stepLabel).reverse(), axis: { labelOverlap: true } },
      color: { field: 'log10', type: 'quantitative', title: 'log10 ‖∂L/∂s(t)‖', scale: { scheme: 'viridis' } },
    },
    config: { view: { stroke: null } },
  };
  return vegaLiteToSvg(spec);
}
