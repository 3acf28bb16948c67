// Reverse-mode differentiation as a graph transform: walks back from a scalar loss over the nodes
// that reach the targets, applies each primitive's vjp rule and sums contributions where a value
// fans out (a parameter shared by τ steps collects τ of them). The result is an ordinary graph.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, topoOrder, type Graph, type Output } from '../ir/graph.ts';
import { leafKey } from '../ir/leaf.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import { isZero, type NodeBuilder } from '../prims/builder.ts';
import { primOf } from '../prims/index.ts';

export interface VjpResult {
  /** The input graph's outputs, then `grad:<name>` for each target. */
  readonly graph: Graph;
  /** Gradient nodes aligned with `wrt` (an explicit zero where the loss does not depend on it). */
  readonly grads: readonly Node[];
  /** Targets the loss does not depend on. */
  readonly unused: readonly Node[];
}

/** Gradient output name of a target: `grad:W`, `grad:x@3`, or `grad:%k` for an inner node. */
export function gradName(n: Node, index: number): string {
  return n.op === 'param' || n.op === 'input' ? `grad:${leafKey(n)}` : `grad:%${index}`;
}

export function vjp(g: Graph, loss: Node, wrt: readonly Node[], b: NodeBuilder): VjpResult {
  if (loss.shape.length !== 0) {
    throw new UnfoldError(`vjp: the loss must be a scalar, got shape ${shapeToString(loss.shape)}`);
  }
  const order = topoOrder([loss]);
  // Only nodes on a path from a target to the loss carry cotangents.
  const targets = new Set(wrt);
  const live = new Set<Node>();
  for (const n of order) if (targets.has(n) || n.inputs.some((x) => live.has(x))) live.add(n);

  const parts = new Map<Node, Node[]>();
  const total = new Map<Node, Node>();
  parts.set(loss, [b.scalar(1, [])]);
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    const contributions = parts.get(n);
    if (!live.has(n) || !contributions) continue;
    parts.delete(n);
    // The cotangent of a step-t value and what its rule builds belong to step t.
    b.ctx.atStep(n.step, () => {
      const dy = contributions.reduce((acc, c) => b.add(acc, c));
      total.set(n, dy);
      if (n.inputs.length === 0 || isZero(dy)) return;
      const rule = primOf(n.op);
      if (!rule) throw new UnfoldError(`vjp: unknown op "${n.op}"`);
      const cots = rule.vjp({ dy, y: n, inputs: n.inputs, attrs: n.attrs }, b);
      n.inputs.forEach((x, k) => {
        const c = cots[k];
        if (!c || !live.has(x) || isZero(c)) return;
        pushTo(parts, x, c);
      });
    });
  }
  const unused: Node[] = [];
  const grads = wrt.map((w) => {
    const d = total.get(w);
    if (d) return d;
    unused.push(w);
    return b.scalar(0, w.shape);
  });
  const outputs: Output[] = [...g.outputs];
  const names = new Set(outputs.map((o) => o.name));
  wrt.forEach((w, i) => {
    const name = gradName(w, i);
    if (!names.has(name)) outputs.push({ name, node: grads[i]! });
    names.add(name);
  });
  return { graph: makeGraph(outputs), grads, unused };
}
