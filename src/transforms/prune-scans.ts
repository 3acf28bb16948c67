// Unread per-step outputs of a scan dropped: a per-step output nothing reads (an LSTM layer's c
// sequence, or every sequence of a layer whose final state alone feeds the head) is neither stacked
// in the forward pass nor given a cotangent sequence in the backward pass — a [B, T, H] buffer and a
// copy per step each, with the values that are read unchanged.
import { nodesOf, rewrite, type Graph } from '../ir/graph.ts';
import type { Context, Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { createBuilder } from '../prims/builder.ts';
import { rescan, scanParts } from '../prims/scan.ts';

/** `g` with every outermost scan's unread per-step outputs removed (a scan whose flat result is read other than by slices of its parts is kept whole). */
export function pruneScans(g: Graph, ctx: Context): Graph {
  const readers = new Map<Node, Node[]>();
  for (const n of nodesOf(g)) for (const x of n.inputs) readers.set(x, [...(readers.get(x) ?? []), n]);
  const outputs = new Set(g.outputs.map((o) => o.node));
  const b = createBuilder(ctx);
  // Each scan pruned (by its original node): the new scan, and where each of its read parts now is.
  const pruned = new Map<Node, { scan: Node; parts: Map<number, { offset: number; size: number }> }>();
  return rewrite(g, ctx, (n, inputs) => {
    if (n.body) {
      const p = outputs.has(n) ? undefined : prunedScan(b, n, inputs, readers.get(n) ?? []);
      if (p) pruned.set(n, p);
      return p?.scan;
    }
    const p = n.op === 'slice' ? pruned.get(n.inputs[0]!) : undefined;
    const part = p?.parts.get(n.attrs['start'] as number);
    return p && part ? b.slice(p.scan, 0, part.offset, part.offset + part.size) : undefined;
  });
}

/** Parts of a flat scan result a slice reads whole: its index, or −1. */
function partRead(parts: ReturnType<typeof scanParts>, r: Node): number {
  return parts.findIndex((p) => r.op === 'slice' && r.attrs['axis'] === 0 && r.attrs['start'] === p.offset && r.attrs['end'] === p.offset + sizeOf(p.shape));
}

/**
 * `n` without its unread ys, and where each read part is in the new result (by its old offset);
 * undefined when every part is read or a reader is no slice of a part.
 */
function prunedScan(b: ReturnType<typeof createBuilder>, n: Node, inputs: readonly Node[], readers: readonly Node[]): { scan: Node; parts: Map<number, { offset: number; size: number }> } | undefined {
  const parts = scanParts(n);
  const read = readers.map((r) => partRead(parts, r));
  if (read.some((i) => i < 0)) return undefined;
  const nc = n.attrs['carries'] as number;
  const keptYs = parts.map((_, i) => i).filter((i) => i >= nc && read.includes(i));
  if (keptYs.length === parts.length - nc) return undefined;
  const body = n.body!;
  const scan = rescan(b.ctx, n, inputs, { inputs: body.inputs, outputs: [...body.outputs.slice(0, nc), ...keptYs.map((i) => body.outputs[i]!)] });
  const newParts = scanParts(scan);
  const kept = [...parts.keys()].filter((i) => i < nc || keptYs.includes(i));
  return { scan, parts: new Map(kept.map((i, k) => [parts[i]!.offset, { offset: newParts[k]!.offset, size: sizeOf(newParts[k]!.shape) }])) };
}
