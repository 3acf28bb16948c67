// unroll for scan nodes: every scan inlined, its body instantiated once per step in its own
// direction, parameters (consts) shared by all steps. Each new node is tagged with its step, and
// the record says which scan and step every inlined value belongs to, so views group by tags.
import { makeGraph, nodesOf, topoOrder, type Graph } from '../ir/graph.ts';
import type { Body, Context, Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { createBuilder } from '../prims/builder.ts';
import { stackSteps, stepSlice } from '../prims/scan.ts';

/** Where an inlined value came from: the scan (its index in the graph's order of scans) and the step t (1-based, time order). */
export interface ScanTag {
  readonly scan: number;
  readonly t: number;
}

export interface Inlined {
  /** The graph with no scan left: the same outputs, in terms of per-step values. */
  readonly graph: Graph;
  /** The scans inlined, outermost first in graph order (nested scans after the scan holding them). */
  readonly scans: readonly Node[];
  /** The tag of every value an inlined step computed. */
  readonly tags: ReadonlyMap<Node, ScanTag>;
}

/** Inlines every scan of `g` (nested ones too). A graph without scans is returned as it is. */
export function inlineScans(g: Graph, ctx: Context): Inlined {
  const order = nodesOf(g);
  if (!order.some((n) => n.body)) return { graph: g, scans: [], tags: new Map() };
  const b = createBuilder(ctx);
  const scans: Node[] = [];
  const tags = new Map<Node, ScanTag>();

  // The values of the nodes of `order` (a topological order) with every scan among them inlined, given values for some.
  const inline = (order: readonly Node[], known: ReadonlyMap<Node, Node>): Map<Node, Node> => {
    const mapped = new Map(known);
    for (const n of order) {
      if (mapped.has(n)) continue;
      const inputs = n.inputs.map((x) => mapped.get(x)!);
      mapped.set(n, n.body ? inlineScan(n, n.body, inputs) : n.inputs.length === 0 ? n : ctx.remake(n, inputs));
    }
    return mapped;
  };

  const inlineScan = (n: Node, body: Body, inputs: readonly Node[]): Node => {
    const index = scans.length;
    scans.push(n);
    const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
    const T = n.attrs['length'] as number, reverse = n.attrs['reverse'] === true;
    // The body in order, once for all steps; the values that change from step to step: what depends on a carry or an x.
    const placeholders = new Set(body.inputs);
    const bodyOrder = topoOrder(body.outputs, (x) => placeholders.has(x));
    const stepPh = new Set(body.inputs.slice(0, nc + nx));
    const perStep = new Set<Node>();
    for (const v of bodyOrder) if (stepPh.has(v) || v.inputs.some((x) => perStep.has(x))) perStep.add(v);
    let carry = inputs.slice(0, nc);
    const xs = inputs.slice(nc, nc + nx), consts = inputs.slice(nc + nx);
    const ys: Node[][] = body.outputs.slice(nc).map(() => new Array<Node>(T));
    for (let i = 0; i < T; i++) {
      const t = reverse ? T - 1 - i : i;
      const step = ctx.atStep(t + 1, () => {
        const known = new Map<Node, Node>(body.inputs.map((p, k) => [p, k < nc ? carry[k]! : k < nc + nx ? stepSlice(b, xs[k - nc]!, t) : consts[k - nc - nx]!]));
        const values = inline(bodyOrder, known);
        for (const [from, to] of values) if (perStep.has(from) && !stepPh.has(from) && !tags.has(to)) tags.set(to, { scan: index, t: t + 1 });
        return body.outputs.map((o) => values.get(o)!);
      });
      carry = step.slice(0, nc);
      step.slice(nc).forEach((y, j) => (ys[j]![t] = y));
    }
    // The scan's flat tuple, made of its parts: slicing it back (scanResults) gives the parts themselves.
    const parts = [...carry, ...ys.map((steps) => stackSteps(b, steps))];
    return b.concat(parts.map((p) => b.reshape(p, [sizeOf(p.shape)])), 0);
  };

  const values = inline(order, new Map());
  return { graph: makeGraph(g.outputs.map((o) => ({ name: o.name, node: values.get(o.node)! }))), scans, tags };
}
