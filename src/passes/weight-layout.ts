// weight-layout: a product x @ W with a step-invariant W (a parameter, or computed from parameters
// only) reads W through a transposed copy made once, so the product's inner loop runs over
// contiguous rows of both operands (a dot product) instead of striding down W's columns.
//   matmul(x, W) -> matmul(x, transpose(Wᵀ)),  Wᵀ materialized once, the outer transpose a view
import type { Node } from '../ir/node.ts';
import { topoOrder } from '../ir/graph.ts';
import { sizeOf } from '../ir/tensor.ts';
import { rewrite, type Pass } from './pass.ts';

/**
 * Below this many elements (16 KiB of float32) W stays in L1 while a product strides down its
 * columns, and copying it costs more than the stride: the seed model's 32×32 W_hh copy was 4% of
 * its step, the strided product no slower.
 */
export const L1_RESIDENT = 4096;

/** Values that depend on no data leaf (only parameters and constants): the same at every step. */
export function invariantNodes(roots: readonly Node[]): Set<Node> {
  const out = new Set<Node>();
  for (const n of topoOrder(roots)) {
    if (n.op === 'input') continue;
    if (n.inputs.every((x) => out.has(x))) out.add(n);
  }
  return out;
}

/** The pass for matrices larger than `minElements` (smaller ones are read strided, in place). */
export function weightLayoutAbove(minElements: number): Pass {
  return {
    name: 'weight-layout',
    run(g, { ctx }) {
      const invariant = invariantNodes(g.outputs.map((o) => o.node));
      return rewrite(g, ctx, (n, inputs) => {
        const w = inputs[1];
        // Invariance is a property of the original operand (the set was computed before rewriting).
        if (n.op !== 'matmul' || !w || w.shape.length !== 2 || !invariant.has(n.inputs[1]!) || w.op === 'transpose' || w.op === 'const') return undefined;
        if (sizeOf(w.shape) <= minElements) return undefined;
        // ctx.make, not the builder: the builder would fold transpose(transpose(W)) back to W.
        const wt = ctx.make({ op: 'transpose', inputs: [w], shape: [w.shape[1]!, w.shape[0]!] });
        const view = ctx.make({ op: 'transpose', inputs: [wt], shape: w.shape });
        return ctx.make({ op: 'matmul', inputs: [inputs[0]!, view], shape: n.shape, ...(n.step !== undefined ? { step: n.step } : {}) });
      });
    },
  };
}

export const weightLayout: Pass = weightLayoutAbove(L1_RESIDENT);
