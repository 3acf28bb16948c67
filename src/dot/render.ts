// Graphviz DOT to SVG, in-process, through the WebAssembly Graphviz of `@viz-js/viz`.

// Why not graphviz-cli: its only engine, @aduh95/viz.js 3.7.0 (Graphviz 5.0.0), silently replaces
// every HTML-like label (`<h<sup>(t)</sup>>`) by the node's name (aduh95/viz.js#21, #29, open).
// @viz-js/viz runs a current Graphviz on the main thread, needs no worker and no shell, and
// reports Graphviz's messages as a list, which we turn into an UnfoldError.

import { instance, type Viz } from '@viz-js/viz';
import { UnfoldError } from '../ir/errors.ts';

// One Graphviz instance per process (~40 ms to start); dropped if Graphviz itself crashes.
let cached: Promise<Viz> | undefined;

/**
 * Renders DOT source to an SVG document with the `dot` layout engine.
 * The same DOT gives the same bytes. Throws UnfoldError with Graphviz's own messages when the DOT
 * is rejected, including errors Graphviz recovers from (a bad HTML label it would draw as the
 * node's name); Graphviz's warnings (say, an unknown shape drawn as a box) are not errors.
 */
export async function renderSvg(dot: string): Promise<string> {
  if (dot.trim() === '') throw new UnfoldError('Graphviz: the DOT source is empty');
  cached ??= instance().catch((e: unknown) => {
    cached = undefined;
    throw e;
  });
  const viz = await cached;
  let result: ReturnType<Viz['render']>;
  try {
    result = viz.render(dot, { format: 'svg', engine: 'dot' });
  } catch (e) {
    cached = undefined; // the WebAssembly state may be broken: start afresh next time
    throw new UnfoldError(`Graphviz crashed: ${e instanceof Error ? e.message : String(e)}`);
  }
  const errors = result.errors.filter((e) => e.level === 'error');
  if (result.status === 'failure' || errors.length > 0) {
    const messages = (errors.length > 0 ? errors : result.errors).map((e) => e.message);
    const what = messages.length > 0 ? messages.join('; ') : 'no output and no message';
    throw new UnfoldError(`Graphviz rejected the DOT: ${what}`);
  }
  return result.output;
}
