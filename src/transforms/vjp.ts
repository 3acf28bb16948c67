// Reverse-mode differentiation as a graph transform: walks back from a scalar loss over the nodes
// that reach the targets, applies each primitive's vjp rule and sums contributions where a value
// fans out (a parameter shared by τ steps collects τ of them). The result is an ordinary graph,
// and a record of how it was formed (what was summed where, from which step), for drawing it.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, substitute, topoOrder, type Graph, type Output } from '../ir/graph.ts';
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
  /** How each cotangent was formed: the facts the gradient view draws. */
  readonly record: VjpRecord;
}

/** One contribution to a value's cotangent: what the vjp rule of a consumer of the value sent back. */
export interface Contribution {
  /** The consumer whose rule built it; undefined for the seed ∂L/∂L = 1. */
  readonly consumer: Node | undefined;
  /** The step it came from: the consumer's (undefined for a step-free consumer and for the seed). */
  readonly step: number | undefined;
  readonly node: Node;
}

/** How vjp formed the cotangent ∂L/∂value. */
export interface Cotangent {
  readonly value: Node;
  /** The step the cotangent (and the rule run on it) was built in: the value's own step. */
  readonly step: number | undefined;
  /** In the order summed: ((parts[0] + parts[1]) + parts[2]) + … */
  readonly parts: readonly Contribution[];
  /** sums[k] is the running sum after adding parts[k + 1]; the last is the total (none for one part). */
  readonly sums: readonly Node[];
  /** ∂L/∂value: the last of `sums`, or the one part. */
  readonly total: Node;
}

export interface VjpRecord {
  /** The seed ∂L/∂L. */
  readonly seed: Node;
  /** Every cotangent, in the order vjp formed them (from the loss back to the targets). */
  readonly cotangents: readonly Cotangent[];
  readonly of: ReadonlyMap<Node, Cotangent>;
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
  const rebind = (roots: readonly Node[], replace: ReadonlyMap<Node, Node>): Node[] => {
    const mapped = substitute(b.ctx, topoOrder(roots, (n) => replace.has(n)), replace);
    return roots.map((r) => mapped.get(r)!);
  };
  // Only nodes on a path from a target to the loss carry cotangents.
  const targets = new Set(wrt);
  const live = new Set<Node>();
  for (const n of order) if (targets.has(n) || n.inputs.some((x) => live.has(x))) live.add(n);

  const parts = new Map<Node, Contribution[]>();
  const total = new Map<Node, Node>();
  const seed = b.scalar(1, []);
  const cotangents: Cotangent[] = [];
  parts.set(loss, [{ consumer: undefined, step: undefined, node: seed }]);
  for (let i = order.length - 1; i >= 0; i--) {
    const n = order[i]!;
    const contributions = parts.get(n);
    if (!live.has(n) || !contributions) continue;
    parts.delete(n);
    // The cotangent of a step-t value and what its rule builds belong to step t.
    b.ctx.atStep(n.step, () => {
      const sums: Node[] = [];
      const dy = contributions.map((c) => c.node).reduce((acc, c) => {
        const sum = b.add(acc, c);
        sums.push(sum);
        return sum;
      });
      total.set(n, dy);
      cotangents.push({ value: n, step: n.step, parts: contributions, sums, total: dy });
      if (n.inputs.length === 0 || isZero(dy)) return;
      const rule = primOf(n.op);
      if (!rule) throw new UnfoldError(`vjp: unknown op "${n.op}"`);
      const cots = rule.vjp({ dy, y: n, inputs: n.inputs, attrs: n.attrs, grad: (J, wrt) => vjp(makeGraph({ J }), J, wrt, b).grads as Node[], rebind, wants: n.inputs.map((x) => live.has(x)) }, b);
      n.inputs.forEach((x, k) => {
        const c = cots[k];
        if (!c || !live.has(x) || isZero(c)) return;
        pushTo(parts, x, { consumer: n, step: n.step, node: c });
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
  const record: VjpRecord = { seed, cotangents, of: new Map(cotangents.map((c) => [c.value, c])) };
  return { graph: makeGraph(outputs), grads, unused, record };
}

/**
 * The contributions a step-free value (a parameter, or a value made of parameters such as Wᵀ)
 * received from the steps: its own parts from step-bound consumers and, through each step-free
 * consumer (W → Wᵀ → every step), that consumer's. A parameter shared by τ steps has τ or more.
 */
export function stepContributions(record: VjpRecord, value: Node): Contribution[] {
  const out: Contribution[] = [];
  const seen = new Set<Node>();
  const visit = (v: Node): void => {
    if (seen.has(v)) return;
    seen.add(v);
    for (const p of record.of.get(v)?.parts ?? []) {
      if (p.step !== undefined) out.push(p);
      else if (p.consumer !== undefined) visit(p.consumer);
    }
  };
  visit(value);
  return out;
}
