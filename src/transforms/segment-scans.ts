// Checkpointed BPTT for graphs of scans: a scan over T steps rewritten as a scan over T/K segments
// whose body is a scan over the K steps of one segment — the same values, in the same order, in the
// same flat result. Its VJP (src/prims/scan.ts) then keeps each segment's starting carries only and
// runs the segment again in the backward step (a nested scan is recomputed, never stored), so the
// residuals held at once are K steps' rather than T's: Gruslys et al. 2016's segments, as JAX's
// checkpoint of a nested scan.
import { rewrite, type Graph } from '../ir/graph.ts';
import type { Context, Node } from '../ir/node.ts';
import { createBuilder } from '../prims/builder.ts';
import { rescan, scanResults, stackedShape } from '../prims/scan.ts';

/** The segment length chosen for a scan over `length` steps: a divisor of it, or undefined to leave the scan whole. */
export type SegmentChoice = (scan: Node, length: number) => number | undefined;

/** Can `n` be cut into segments: every per-step value it reads or yields has an axis before time (a scalar step stacks as [T]). */
export function segmentable(n: Node): boolean {
  const body = n.body!;
  const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
  return [...body.inputs.slice(nc, nc + nx), ...body.outputs.slice(nc)].every((v) => v.shape.length >= 1);
}

/** The divisors of T, largest first. */
export function divisorsOf(T: number): number[] {
  const small: number[] = [], large: number[] = [];
  for (let d = 1; d * d <= T; d++) {
    if (T % d) continue;
    small.push(d);
    if (d * d !== T) large.push(T / d);
  }
  return [...large, ...small.reverse()];
}

/** `g` with each outermost scan that `choose` gives a segment length K (K < T, K | T) cut into T/K segments of K steps. */
export function segmentScans(g: Graph, choose: SegmentChoice, ctx: Context): Graph {
  const b = createBuilder(ctx);
  return rewrite(g, ctx, (n, inputs) => {
    const T = n.attrs['length'] as number;
    const K = n.body && segmentable(n) ? choose(n, T) : undefined;
    return K !== undefined && K >= 1 && K < T && T % K === 0 ? segmented(b, n, inputs, K) : undefined;
  });
}

/**
 * scan(body; init, xs, consts) over T = S·K steps as scan over S segments of scan(body) over K: each
 * xs [s0, T, …] read as [s0, S, K, …] (the same elements), each ys stacked back the same way, so the
 * flat result is the original's element for element.
 */
function segmented(b: ReturnType<typeof createBuilder>, n: Node, inputs: readonly Node[], K: number): Node {
  const body = n.body!;
  const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
  const S = (n.attrs['length'] as number) / K;
  const init = inputs.slice(0, nc), xs = inputs.slice(nc, nc + nx), consts = inputs.slice(nc + nx);
  const name = (p: Node) => String(p.attrs['name'] ?? 'v');
  const carryPh = body.inputs.slice(0, nc).map((p) => b.placeholder(name(p), p.shape));
  const segmentPh = body.inputs.slice(nc, nc + nx).map((p) => b.placeholder(`${name(p)}[segment]`, stackedShape(p.shape, K)));
  const constPh = body.inputs.slice(nc + nx).map((p) => b.placeholder(name(p), p.shape));
  // Both scans keep the user's line: the inner one runs its step, the outer one stands for its scan.
  const inner = rescan(b.ctx, n, [...carryPh, ...segmentPh, ...constPh], body, K);
  const operands = [...init, ...xs.map((x, j) => b.reshape(x, stackedShape(segmentPh[j]!.shape, S))), ...consts];
  return rescan(b.ctx, n, operands, { inputs: [...carryPh, ...segmentPh, ...constPh], outputs: scanResults(b, inner) }, S);
}
