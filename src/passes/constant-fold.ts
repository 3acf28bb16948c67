// constant-fold: a node whose inputs are all constants is evaluated now and becomes a constant
// (a fill when every element is equal):  f(c₁, c₂) -> c.  Parameters and inputs are never folded.
import { sizeOf } from '../ir/tensor.ts';
import { constValues } from '../prims/leaves.ts';
import { createBuilder } from '../prims/builder.ts';
import { primOf } from '../prims/index.ts';
import { rewrite } from '../ir/graph.ts';
import type { Pass } from './pass.ts';

export const constantFold: Pass = {
  name: 'constant-fold',
  run(g, { ctx }) {
    const b = createBuilder(ctx);
    return rewrite(g, ctx, (n, inputs) => {
      // A scan over constants stays a scan: folding it would need its body run here.
      if (n.inputs.length === 0 || n.body || !inputs.every((x) => x.op === 'const')) return undefined;
      const prim = primOf(n.op);
      if (!prim) return undefined;
      const values = prim.evaluate(inputs.map((x) => constValues(x.attrs, sizeOf(x.shape))), inputs.map((x) => x.shape), n.attrs, n.shape);
      if (!values.every(Number.isFinite)) return undefined; // keep the op: folding must not hide a NaN
      return b.const([...values], n.shape);
    });
  },
};
