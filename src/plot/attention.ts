// Attention weights as a heat map: for each row b of a batch (up to ATTENTION_PANELS of them), the
// weight decoder step t gave encoder step s — the picture `unfold generate` writes as attention.svg.
import type { TopLevelSpec } from 'vega-lite';
import type { Tensor } from '../ir/tensor.ts';
import { UnfoldError } from '../ir/errors.ts';
import { vegaLiteToSvg } from './vega.ts';

/** Panels drawn: the first rows of the batch. */
export const ATTENTION_PANELS = 4;

export interface AttentionPlotOptions {
  /** source[b][s]: the symbol read at encoder step s of row b (shown on the x axis beside s). */
  readonly source?: readonly (readonly string[])[];
  /** target[b][t]: the symbol produced at decoder step t of row b (shown on the y axis beside t). */
  readonly target?: readonly (readonly string[])[];
  readonly title?: string;
}

/** `3 · a`: a step with its symbol, unique within its panel (a symbol may repeat, its step does not). */
function stepLabel(k: number, symbols: readonly string[] | undefined): string {
  const s = symbols?.[k];
  return s === undefined || s === '' ? String(k + 1) : `${k + 1} · ${s}`;
}

/**
 * weights [B, Ty, Tx] (each row of a panel sums to 1 over the Tx encoder steps): one panel per row
 * b < ATTENTION_PANELS, encoder steps across, decoder steps down, weight as colour (0 … 1).
 */
export async function attentionHeatmapSvg(weights: Tensor, opts: AttentionPlotOptions = {}): Promise<string> {
  if (weights.shape.length !== 3) throw new UnfoldError(`attention plot: weights must be [B, Ty, Tx], got [${weights.shape.join(', ')}]`);
  const [B, Ty, Tx] = weights.shape as [number, number, number];
  const rows = Math.min(B, ATTENTION_PANELS);
  const values: { row: string; source: string; target: string; weight: number }[] = [];
  for (let b = 0; b < rows; b++) {
    for (let t = 0; t < Ty; t++) {
      for (let s = 0; s < Tx; s++) {
        const w = weights.data[(b * Ty + t) * Tx + s]!;
        if (!Number.isFinite(w)) throw new UnfoldError(`attention plot: weight [${b}, ${t}, ${s}] is ${w}`);
        values.push({ row: `row ${b + 1}`, source: stepLabel(s, opts.source?.[b]), target: stepLabel(t, opts.target?.[b]), weight: w });
      }
    }
  }
  const cell = 22;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title ?? `attention weights (decoder step × encoder step)${B > rows ? `, rows 1–${rows} of ${B}` : ''}`,
    data: { values },
    facet: { field: 'row', type: 'ordinal', title: null, sort: Array.from({ length: rows }, (_, b) => `row ${b + 1}`) },
    columns: 2,
    spec: {
      width: cell * Tx,
      height: cell * Ty,
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'source', type: 'ordinal', title: 'encoder step (source)', sort: null, axis: { labelAngle: -45 } },
        y: { field: 'target', type: 'ordinal', title: 'decoder step (output)', sort: null },
        color: { field: 'weight', type: 'quantitative', title: 'weight', scale: { scheme: 'greys', domain: [0, 1] } },
      },
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
    config: { view: { stroke: null } },
  };
  return vegaLiteToSvg(spec);
}
