// Unread per-step outputs of a scan dropped: a per-step output nothing reads (an LSTM layer's c
// sequence, or every sequence of a layer whose final state alone feeds the head) is neither stacked
// in the forward pass nor given a cotangent sequence in the backward pass — a [B, T, H] buffer and a
// copy per step each, with the values that are read unchanged.
import { makeGraph, nodesOf, type Graph } from '../ir/graph.ts';
import type { Context, Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { createBuilder } from '../prims/builder.ts';
import { scanParts } from '../prims/scan.ts';

/** `g` with every outermost scan's unread per-step outputs removed (a scan whose flat result is read other than by slices of its parts is kept whole). */
export function pruneScans(g: Graph, ctx: Context): Graph {
  const order = nodesOf(g);
  const readers = new Map<Node, Node[]>();
  for (const n of order) for (const x of n.inputs) readers.set(x, [...(readers.get(x) ?? []), n]);
  for (const o of g.outputs) readers.set(o.node, [...(readers.get(o.node) ?? []), o.node]);
  const b = createBuilder(ctx);
  const mapped = new Map<Node, Node>();
  let changed = false;
  for (const n of order) {
    const inputs = n.inputs.map((x) => mapped.get(x) ?? x);
    const pruned = n.body ? prunedScan(b, n, inputs, readers.get(n) ?? [], g.outputs.some((o) => o.node === n)) : undefined;
    if (pruned) {
      changed = true;
      for (const [slice, replacement] of pruned) mapped.set(slice, replacement);
    } else if (inputs.some((x, i) => x !== n.inputs[i])) {
      mapped.set(n, ctx.remake(n, inputs));
    }
  }
  if (!changed) return g;
  return makeGraph(g.outputs.map((o) => ({ name: o.name, node: mapped.get(o.node) ?? o.node })));
}

/** The slices of `n`'s parts rebuilt over a scan without its unread ys; undefined when every part is read or a reader is no slice of a part. */
function prunedScan(b: ReturnType<typeof createBuilder>, n: Node, inputs: readonly Node[], readers: readonly Node[], isOutput: boolean): Map<Node, Node> | undefined {
  if (isOutput) return undefined;
  const parts = scanParts(n);
  const partOf = (r: Node) => parts.findIndex((p) => r.op === 'slice' && r.attrs['axis'] === 0 && r.attrs['start'] === p.offset && r.attrs['end'] === p.offset + sizeOf(p.shape));
  const read = readers.map(partOf);
  if (read.some((i) => i < 0)) return undefined;
  const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
  const keptYs = parts.map((_, i) => i).filter((i) => i >= nc && read.includes(i));
  if (keptYs.length === parts.length - nc) return undefined;
  const body = n.body!;
  const scan = b.scan({
    init: inputs.slice(0, nc), xs: inputs.slice(nc, nc + nx), consts: inputs.slice(nc + nx),
    length: n.attrs['length'] as number, reverse: n.attrs['reverse'] === true,
    body: { inputs: body.inputs, outputs: [...body.outputs.slice(0, nc), ...keptYs.map((i) => body.outputs[i]!)] },
  });
  const newParts = scanParts(scan);
  const at = (i: number) => (i < nc ? i : nc + keptYs.indexOf(i));
  return new Map(readers.map((r, k) => {
    const p = newParts[at(read[k]!)]!;
    return [r, b.slice(scan, 0, p.offset, p.offset + sizeOf(p.shape))];
  }));
}
