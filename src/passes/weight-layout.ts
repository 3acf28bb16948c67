// weight-layout: a product x @ W with a step-invariant W (a parameter, or computed from parameters
// only) reads W through a transposed copy made once, so the product's inner loop runs over
// contiguous rows of both operands (a dot product) instead of striding down W's columns.
//   matmul(x, W) -> matmul(x, transpose(Wᵀ)),  Wᵀ materialized once, the outer transpose a view
import type { Context, Node } from '../ir/node.ts';
import { makeGraph, rewrite, topoOrder } from '../ir/graph.ts';
import { sizeOf } from '../ir/tensor.ts';
import { createBuilder } from '../prims/builder.ts';
import { rescan } from '../prims/scan.ts';
import type { Pass } from './pass.ts';

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
        if (n.op === 'scan') return scanWithLayout(ctx, n, inputs, minElements);
        const w = inputs[1];
        // Invariance is a property of the original operand (the set was computed before rewriting).
        if (n.op !== 'matmul' || !w || w.shape.length !== 2 || !invariant.has(n.inputs[1]!) || w.op === 'transpose' || w.op === 'const') return undefined;
        if (sizeOf(w.shape) <= minElements) return undefined;
        return throughTranspose(ctx, n, inputs[0]!, transposeOf(ctx, w));
      });
    },
  };
}

/** Wᵀ, materialized (ctx.make, not the builder: the builder would fold transpose(transpose(W)) back to W). */
const transposeOf = (ctx: Context, w: Node): Node => ctx.make({ op: 'transpose', inputs: [w], shape: [w.shape[1]!, w.shape[0]!] });

/** The product `m` as x · (Wᵀ)ᵀ: B read through a view of `wt`, its rows contiguous. */
function throughTranspose(ctx: Context, m: Node, x: Node, wt: Node): Node {
  const view = ctx.make({ op: 'transpose', inputs: [wt], shape: [wt.shape[1]!, wt.shape[0]!] });
  return ctx.make({ op: 'matmul', inputs: [x, view], shape: m.shape, ...(m.step !== undefined ? { step: m.step } : {}) });
}

/**
 * A scan whose body multiplies by one of its consts (the backward step's dh = dz·W): the const is
 * the same at every step, so the scan takes its transpose as one more const, made once before the
 * loop, and the body reads it through a view — the product runs over rows of both operands, as
 * above, without a copy per step. Undefined when no such product is larger than `minElements`.
 */
function scanWithLayout(ctx: Context, n: Node, inputs: readonly Node[], minElements: number): Node | undefined {
  const body = n.body!;
  const first = (n.attrs['carries'] as number) + (n.attrs['xs'] as number);
  const consts = new Set(body.inputs.slice(first));
  const read = new Set<Node>();
  for (const m of topoOrder(body.outputs)) {
    const w = m.inputs[1];
    if (m.op === 'matmul' && w && consts.has(w) && w.shape.length === 2 && sizeOf(w.shape) > minElements) read.add(w);
  }
  if (read.size === 0) return undefined;
  const placeholders = [...read];
  const b = createBuilder(ctx);
  const transposed = placeholders.map((w) => b.placeholder(`${String(w.attrs['name'] ?? 'k')}ᵀ`, [w.shape[1]!, w.shape[0]!]));
  const rewritten = rewrite(makeGraph(body.outputs.map((o, i) => ({ name: `o${i}`, node: o }))), ctx, (m, ins) => {
    const k = m.op === 'matmul' ? placeholders.indexOf(m.inputs[1]!) : -1;
    return k >= 0 ? throughTranspose(ctx, m, ins[0]!, transposed[k]!) : undefined;
  });
  const operands = placeholders.map((w) => transposeOf(ctx, inputs[body.inputs.indexOf(w)]!));
  return rescan(ctx, n, [...inputs, ...operands], { inputs: [...body.inputs, ...transposed], outputs: rewritten.outputs.map((o) => o.node) });
}

export const weightLayout: Pass = weightLayoutAbove(L1_RESIDENT);
