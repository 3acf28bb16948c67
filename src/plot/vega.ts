// Headless Vega-Lite to SVG: compile, run a renderer-less Vega view, and serialise it, deterministically.

import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

// Vega measures text with the `canvas` package when it happens to be installed and estimates
// widths otherwise; always estimating keeps the layout, and so the bytes, the same on every machine.
const textMetrics = (vega as unknown as { textMetrics: { canvas(use: boolean): void } }).textMetrics;
textMetrics.canvas(false);

/** Anything Vega or Vega-Lite warns about is a bug in our spec, not something to print and go on. */
const strict = vega.logger(vega.Warn, undefined, (_method, level, args) => {
  if (args.length === 1 && args[0] instanceof Error) throw args[0]; // our own warning, re-logged
  throw new Error(`vega ${level}: ${args.map(String).join(' ')}`);
});

/** Renders a Vega-Lite spec (with inline data) to a standalone SVG document. */
export async function vegaLiteToSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec, { logger: strict }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger: strict });
  try {
    vega.resetSVGDefIds(); // clip-path and gradient ids come from process-wide counters
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
