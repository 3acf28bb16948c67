// simplify: re-makes every node through the builder, whose rule table (src/prims/builder.ts)
// applies the algebra as nodes are built:
//   x + 0 -> x,  x * 1 -> x,  x * 0 -> 0,  --x -> x,  (xᵀ)ᵀ -> x,  (pq)ᵀ -> qᵀpᵀ,  reshape∘reshape -> reshape,
//   Σ over no axes -> x,  broadcast/reshape/slice of a fill -> a fill,  where(c, x, x) -> x, …
// Graphs built by the DSL and by vjp are already simplified; this pass serves graphs from elsewhere
// (JSON, hand-made, other passes), and returns the very same graph when no rule applies.
import { createBuilder } from '../prims/builder.ts';
import { isPrimName } from '../prims/index.ts';
import { rewrite, type Pass } from './pass.ts';

export const simplify: Pass = {
  name: 'simplify',
  run(g, { ctx }) {
    const b = createBuilder(ctx);
    return rewrite(g, ctx, (n, inputs) => {
      if (n.inputs.length === 0 || !isPrimName(n.op)) return undefined;
      const [x, y, z] = inputs;
      switch (n.op) {
        case 'add': return b.add(x!, y!);
        case 'sub': return b.sub(x!, y!);
        case 'mul': return b.mul(x!, y!);
        case 'div': return b.div(x!, y!);
        case 'neg': return b.neg(x!);
        case 'transpose': return b.transpose(x!);
        case 'sum': return b.sum(x!, n.attrs['axes'] as number[]);
        case 'broadcast': return b.broadcast(x!, n.attrs['shape'] as number[], n.attrs['axes'] as number[]);
        case 'reshape': return b.reshape(x!, n.attrs['shape'] as number[]);
        case 'slice': return b.slice(x!, n.attrs['axis'] as number, n.attrs['start'] as number, n.attrs['end'] as number);
        case 'pad': return b.pad(x!, n.attrs['axis'] as number, n.attrs['before'] as number, n.attrs['after'] as number);
        case 'matmul': return b.matmul(x!, y!);
        case 'where': return b.where(x!, y!, z!);
        case 'detach': return b.detach(x!);
        default: return undefined;
      }
    });
  },
};
