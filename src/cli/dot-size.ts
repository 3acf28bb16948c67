// How big `dot --full` will be, known before it is drawn: every step adds the same nodes and edges, so drawings at τ = 2 and τ = 3 give the size at any τ; a large one is announced on stderr, one no string can hold is refused.
import { UnfoldError } from '../ir/errors.ts';
import type { ModelDef } from '../dsl/model.ts';
import { DEFAULT_TAU, modelDot, type DotRequest } from '../dot/export.ts';
import { formatBytes } from './arena-limit.ts';

/** Above this much DOT, `--full` warns before drawing. */
export const FULL_WARN_BYTES = 1_000_000;
/** V8's longest string (2^29 − 24 characters): DOT beyond it cannot be made at all. */
export const MAX_DOT_CHARS = 2 ** 29 - 24;

export interface DotSize {
  readonly tau: number;
  readonly chars: number;
  readonly nodes: number;
  readonly edges: number;
}

const count = (dot: string, re: RegExp): number => dot.match(re)?.length ?? 0;
const NODE = /^\s*"[^"]*" \[/gm;
const EDGE = /^\s*"[^"]*" -> /gm;

/** The size of the full drawing at the request's τ (the model's window, else DEFAULT_TAU), from two small ones. */
export function estimateFullDot(model: ModelDef, req: DotRequest): DotSize {
  const tau = req.tau ?? model.task?.seqLen ?? DEFAULT_TAU;
  const at2 = modelDot(model, { ...req, tau: 2, full: true });
  const at3 = modelDot(model, { ...req, tau: 3, full: true });
  const grow = (f: (d: string) => number) => f(at2) + (tau - 2) * (f(at3) - f(at2));
  return { tau, chars: grow((d) => d.length), nodes: grow((d) => count(d, NODE)), edges: grow((d) => count(d, EDGE)) };
}

/**
 * Before a --full drawing of many steps: a warning on stderr saying how big it will be (and that
 * SVG layout of it is slower still), or an error when no string could hold it.
 */
export function checkFullDot(model: ModelDef, req: DotRequest, svg: boolean, warn: (line: string) => void): void {
  // A graph model's scans have the lengths its inputs give them: every step is always drawn.
  if (!req.full || req.view === 'folded' || model.graph) return;
  const size = estimateFullDot(model, req);
  const what = `--full draws all ${size.tau} steps: about ${formatBytes(size.chars)} of DOT, ${size.nodes} nodes and ${size.edges} edges`;
  if (size.chars > MAX_DOT_CHARS) {
    throw new UnfoldError(`${what}, more than one string can hold (${formatBytes(MAX_DOT_CHARS)}); lower --tau, or leave out --full to elide the middle steps`);
  }
  if (size.chars > FULL_WARN_BYTES) {
    warn(`unfold dot: warning: ${what}${svg ? '; laying that out as SVG takes much longer still' : ''}. Without --full the middle steps are elided.`);
  }
}
