// Figures of a forward run (`unfold run`), as SVG through Vega-Lite: each output over t, and a state's trajectory — components over t (a heat map for many), the orbit in the plane for a 2-D state.
import type { TopLevelSpec } from 'vega-lite';
import { check } from '../ir/errors.ts';
import { vegaLiteToSvg } from './vega.ts';

/** One sequence of batch row 0: `values[c][j]` is component c at step t[j]. */
export interface RunSeries {
  readonly name: string;
  readonly t: readonly number[];
  readonly values: readonly (readonly number[])[];
}

/** Components drawn as lines; above this many, a heat map (a Hopfield net's units). */
export const RUN_LINES_MAX = 8;

function checkSeries(plot: string, s: RunSeries): void {
  check(s.values.length > 0 && s.t.length > 0, () => `${plot}: ${s.name} is empty, nothing to plot`);
  s.values.forEach((v, c) => {
    check(v.length === s.t.length, () => `${plot}: ${s.name}[${c}] has ${v.length} values but t has ${s.t.length}`);
    v.forEach((x, j) => check(Number.isFinite(x), () => `${plot}: ${s.name}[${c}] at t = ${s.t[j]} is ${x}, not a finite number`));
  });
}

/** A sequence over t: one line per component (at most RUN_LINES_MAX), else a heat map of component × t. */
export async function seriesPlotSvg(s: RunSeries, opts: { readonly title: string }): Promise<string> {
  checkSeries('run plot', s);
  const C = s.values.length;
  const rows = s.values.flatMap((v, c) => v.map((value, j) => ({ t: s.t[j], component: c, value })));
  const spec: TopLevelSpec = C <= RUN_LINES_MAX
    ? {
        title: opts.title, width: 600, height: 300,
        data: { values: rows.map((r) => ({ ...r, component: C === 1 ? s.name : `${s.name}[${r.component}]` })) },
        mark: { type: 'line', point: s.t.length <= 60 ? { filled: true, size: 14 } : false, strokeWidth: 1.5 },
        encoding: {
          x: { field: 't', type: 'quantitative', title: 'step t', scale: { zero: false, nice: false }, axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'value', type: 'quantitative', title: s.name, scale: { zero: false } },
          color: { field: 'component', type: 'nominal', title: null },
        },
      }
    : {
        title: opts.title, width: 600, height: Math.min(400, 12 * C),
        data: { values: rows },
        mark: { type: 'rect' },
        encoding: {
          x: { field: 't', type: 'ordinal', title: 'step t', axis: { labelOverlap: true } },
          y: { field: 'component', type: 'ordinal', title: `${s.name} component` },
          color: { field: 'value', type: 'quantitative', title: s.name, scale: { scheme: 'blueorange', domainMid: 0 } },
        },
      };
  return vegaLiteToSvg(spec);
}

/** The orbit of a 2-D state: component 1 against component 0, in order of t, the start marked. */
export async function phasePortraitSvg(s: RunSeries, opts: { readonly title: string }): Promise<string> {
  checkSeries('phase portrait', s);
  check(s.values.length === 2, () => `phase portrait: ${s.name} has ${s.values.length} components, not 2`);
  const points = s.t.map((t, j) => ({ t, x: s.values[0]![j], y: s.values[1]![j], start: j === 0 ? 'start' : 'step' }));
  const spec: TopLevelSpec = {
    title: opts.title, width: 420, height: 420,
    data: { values: points },
    layer: [
      { mark: { type: 'line', strokeWidth: 1.5, color: '#1f77b4' }, encoding: { order: { field: 't', type: 'quantitative' } } },
      { mark: { type: 'point', filled: true, size: 16, color: '#1f77b4' } },
      // Where the orbit starts.
      { transform: [{ filter: "datum.start == 'start'" }], mark: { type: 'point', filled: true, size: 90, color: '#d62728' } },
    ],
    encoding: {
      x: { field: 'x', type: 'quantitative', title: `${s.name}[0]`, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: `${s.name}[1]`, scale: { zero: false } },
    },
  };
  return vegaLiteToSvg(spec);
}
