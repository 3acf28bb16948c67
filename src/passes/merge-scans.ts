// merge-scans: a scan whose results are a prefix of another's is read from the other, so its steps
// run once. The VJP of a scan builds such a twin — the same body and operands, also yielding the
// carry each step reads — and without this pass a training step would run the forward scan twice.
//   scan(body{c, x, k} -> [c', y]) beside scan(body{c, x, k} -> [c', y, c]) -> slice of the second
import { nodesOf, rewrite } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { createBuilder } from '../prims/builder.ts';
import type { Pass } from './pass.ts';

/** Whether `a`'s results are the first results of `b`: same operands, attrs (but the outputs') and placeholders, a's body outputs a prefix of b's. */
function isPrefixOf(a: Node, b: Node): boolean {
  if (a === b || !a.body || !b.body || a.op !== 'scan' || b.op !== 'scan') return false;
  if (a.inputs.length !== b.inputs.length || a.inputs.some((x, i) => x !== b.inputs[i])) return false;
  if (Object.keys(a.attrs).some((k) => a.attrs[k] !== b.attrs[k])) return false;
  const [pa, pb] = [a.body, b.body];
  return pa.inputs.length === pb.inputs.length && pa.inputs.every((p, i) => p === pb.inputs[i])
    && pa.outputs.length < pb.outputs.length && pa.outputs.every((o, i) => o === pb.outputs[i]);
}

export const mergeScans: Pass = {
  name: 'merge-scans',
  run(g, { ctx }) {
    const scans = nodesOf(g).filter((n) => n.op === 'scan');
    const host = new Map<Node, Node>();
    for (const a of scans) {
      const b = scans.find((s) => isPrefixOf(a, s) && !scans.some((t) => isPrefixOf(s, t)));
      if (b) host.set(a, b);
    }
    if (host.size === 0) return g;
    const builder = createBuilder(ctx);
    return rewrite(g, ctx, (n, inputs) => {
      const b = host.get(n);
      if (!b) return undefined;
      // The host's operands are the same nodes (rewrite re-made them alike): its tuple starts with n's.
      return builder.slice(ctx.remake(b, inputs), 0, 0, sizeOf(n.shape));
    });
  },
};
