// The vjp check (JAX's check_vjp, PyTensor's verify_grad): for a function built on input leaves,
// <t, vjp(c)> against the central difference of <f(x), c> along a random direction t, in float64.
import { makeGraph } from '../../src/ir/graph.ts';
import { Context, type Node } from '../../src/ir/node.ts';
import { sizeOf, type Shape } from '../../src/ir/tensor.ts';
import { createBuilder, type NodeBuilder } from '../../src/prims/builder.ts';
import { evaluate } from '../../src/interp/evaluate.ts';
import { vjp } from '../../src/transforms/vjp.ts';
import { axpy, dot } from './numeric.ts';
import type { Rng } from './rng.ts';

export interface VjpCheck {
  /** <t, vjp(c)> from the symbolic gradient graph. */
  readonly analytic: number;
  /** (L(x + εt) − L(x − εt)) / 2ε with L = <f(x), c>. */
  readonly numeric: number;
  /** |analytic − numeric| / max(|analytic|, |numeric|, 1e-3): the figure the tolerance bounds. */
  readonly error: number;
  /** Gradient values by input index (zero-filled for inputs not differentiated). */
  readonly grads: readonly Float64Array[];
  /** Inputs the loss does not depend on, as vjp reported them. */
  readonly unused: readonly number[];
}

export interface CheckOptions {
  /** Indices of the inputs to differentiate and perturb (default: all). */
  readonly wrt?: readonly number[];
  readonly eps?: number;
}

/**
 * Builds `f` over input leaves `x0, x1, …` (fresh context), takes L = Σ f(x)·c for a random c,
 * differentiates L symbolically and compares with central differences along a random t.
 */
export function checkVjp(
  f: (b: NodeBuilder, xs: readonly Node[]) => Node,
  shapes: readonly Shape[],
  values: readonly Float64Array[],
  r: Rng,
  opts: CheckOptions = {},
): VjpCheck {
  const eps = opts.eps ?? 1e-6;
  const b = createBuilder(new Context());
  const xs = shapes.map((s, i) => b.input(`x${i}`, s));
  const y = f(b, xs);
  const c = b.const(Array.from({ length: sizeOf(y.shape) }, () => r.uniform(0.5, 1.5) * (r.next() < 0.5 ? -1 : 1)), y.shape);
  const loss = b.sum(b.mul(y, c), y.shape.map((_, i) => i));
  const wrt = opts.wrt ?? shapes.map((_, i) => i);
  const res = vjp(makeGraph({ loss }), loss, wrt.map((i) => xs[i]!), b);
  const bind = (vals: readonly Float64Array[]) => new Map(vals.map((v, i) => [`x${i}`, v]));
  const out = evaluate(res.graph, new Map(), bind(values));
  const grads = shapes.map((s, i) => (wrt.includes(i) ? out.get(`grad:x${i}`)!.data : new Float64Array(sizeOf(s))));
  const t = shapes.map((s, i) => (wrt.includes(i) ? Float64Array.from({ length: sizeOf(s) }, () => r.normal()) : new Float64Array(sizeOf(s))));
  const lossGraph = makeGraph({ loss });
  const L = (s: number) => evaluate(lossGraph, new Map(), bind(values.map((v, i) => axpy(v, s, t[i]!)))).get('loss')!.data[0]!;
  const numeric = (L(eps) - L(-eps)) / (2 * eps);
  const analytic = grads.reduce((acc, g, i) => acc + dot(g, t[i]!), 0);
  const error = Math.abs(analytic - numeric) / Math.max(Math.abs(analytic), Math.abs(numeric), 1e-3);
  const unused = res.unused.map((n) => xs.indexOf(n));
  return { analytic, numeric, error, grads, unused };
}

/** The second-order form: g = ∇<f(x), c> built symbolically, then the scalar Σ <g_i, d_i> to differentiate again. */
export function gradientDot(f: (b: NodeBuilder, xs: readonly Node[]) => Node, wrt: readonly number[], r: Rng) {
  return (b: NodeBuilder, xs: readonly Node[]): Node => {
    const y = f(b, xs);
    const c = b.const(Array.from({ length: sizeOf(y.shape) }, () => r.uniform(-1, 1)), y.shape);
    const l1 = b.sum(b.mul(y, c), y.shape.map((_, i) => i));
    const { grads } = vjp(makeGraph({ l1 }), l1, wrt.map((i) => xs[i]!), b);
    let acc: Node = b.scalar(0, []);
    for (const g of grads) {
      const d = b.const(Array.from({ length: sizeOf(g.shape) }, () => r.uniform(-1, 1)), g.shape);
      acc = b.add(acc, b.sum(b.mul(g, d), g.shape.map((_, i) => i)));
    }
    return acc;
  };
}
