// simplify: re-makes every node through the builder, whose rule table (src/prims/builder.ts)
// applies the algebra as nodes are built:
//   x + 0 -> x,  x * 1 -> x,  x * 0 -> 0,  --x -> x,  (xᵀ)ᵀ -> x,  (pq)ᵀ -> qᵀpᵀ,  reshape∘reshape -> reshape,
//   Σ over no axes -> x,  broadcast/reshape/slice of a fill -> a fill,  where(c, x, x) -> x,  |−x| -> |x|, …
// Graphs built by the DSL and by vjp are already simplified; this pass serves graphs from elsewhere
// (JSON, hand-made, other passes), and returns the very same graph when no rule applies.
import type { Attrs, Node } from '../ir/node.ts';
import { createBuilder, type NodeBuilder } from '../prims/builder.ts';
import { isPrimName, unaryTable, type ElementwiseUnaryName, type PrimName } from '../prims/index.ts';
import { rewrite } from '../ir/graph.ts';
import type { Pass } from './pass.ts';

/** A node re-made through the builder from its (rewritten) inputs and its attrs. */
type Remake = (b: NodeBuilder, inputs: readonly Node[], attrs: Attrs) => Node;

/**
 * Each primitive's re-making through the builder, whose table holds its algebra; `null` where the
 * builder has no rule for it (the node is kept as it is). Typed over the registry: a new primitive
 * says which, or does not compile; an element-wise unary one is re-made by the builder's method of
 * its name (every one has one), so it needs no line here.
 */
const REMAKE_OTHERS: { readonly [K in Exclude<PrimName, ElementwiseUnaryName>]: Remake | null } = {
  param: null, input: null, const: null,
  add: (b, [x, y]) => b.add(x!, y!),
  sub: (b, [x, y]) => b.sub(x!, y!),
  mul: (b, [x, y]) => b.mul(x!, y!),
  div: (b, [x, y]) => b.div(x!, y!),
  where: (b, [c, x, y]) => b.where(c!, x!, y!),
  compare: null,
  matmul: (b, [x, y]) => b.matmul(x!, y!),
  transpose: (b, [x]) => b.transpose(x!),
  sum: (b, [x], a) => b.sum(x!, a['axes'] as number[]),
  max: null,
  broadcast: (b, [x], a) => b.broadcast(x!, a['shape'] as number[], a['axes'] as number[]),
  reshape: (b, [x], a) => b.reshape(x!, a['shape'] as number[]),
  slice: (b, [x], a) => b.slice(x!, a['axis'] as number, a['start'] as number, a['end'] as number),
  pad: (b, [x], a) => b.pad(x!, a['axis'] as number, a['before'] as number, a['after'] as number),
  concat: null, gather: null, scatter: null,
  scan: null,
};

const REMAKE: { readonly [K in PrimName]: Remake | null } = {
  ...REMAKE_OTHERS,
  ...unaryTable((op): Remake => (b, [x]) => b[op](x!)),
};

export const simplify: Pass = {
  name: 'simplify',
  run(g, { ctx }) {
    const b = createBuilder(ctx);
    return rewrite(g, ctx, (n, inputs) => {
      if (n.inputs.length === 0 || !isPrimName(n.op)) return undefined;
      return REMAKE[n.op]?.(b, inputs, n.attrs);
    });
  },
};
