// unroll(recurrence, τ): one DAG with τ copies of the step body; every parameter is one node
// shared by all steps, and every node knows its step. Time and memory linear in τ.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, substitute, topoOrder, type Graph } from '../ir/graph.ts';
import { originSpec, type Context, type Node } from '../ir/node.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';

export interface Unrolled {
  readonly rec: Recurrence;
  readonly tau: number;
  /** Outputs `o@t` for every output o and step t = 1..τ, then the final states `s@τ`. */
  readonly graph: Graph;
  /** states[t][i]: state i after step t; states[0] are the initial-state leaves `s@0`. */
  readonly states: readonly (readonly Node[])[];
  /** inputs[t - 1][i]: input i of step t (leaves `x@t`). */
  readonly inputs: readonly (readonly Node[])[];
  /** outputs[t - 1][k]: output k of step t. */
  readonly outputs: readonly (readonly Node[])[];
  /** valid[t - 1]: the validity leaf `valid@t` of step t, under per-row lengths (else empty). */
  readonly valid: readonly Node[];
}

export function checkTau(tau: unknown, what = 'τ'): number {
  if (typeof tau !== 'number' || !Number.isInteger(tau) || tau < 1) {
    // String(NaN) is "NaN" where JSON.stringify would print "null".
    throw new UnfoldError(`${what} must be a positive integer, got ${typeof tau === 'number' ? String(tau) : JSON.stringify(tau) ?? String(tau)}`);
  }
  return tau;
}

/** A leaf bound per step: `name@t`, made in the image of `like` (its shape and origin). */
export function stepLeaf(ctx: Context, name: string, like: Node, t: number, role: string): Node {
  return ctx.make({
    op: 'input',
    inputs: [],
    shape: like.shape,
    attrs: { name, role, t },
    step: t,
    ...originSpec(like),
  });
}

export function unroll(rec: Recurrence, tau: number, ctx: Context): Unrolled {
  checkTau(tau);
  // A stack is several scans: its unrolled form is its graph of scans inlined (sequenceModel, inlineScans).
  if (rec.stack) throw new UnfoldError(`unroll: "${rec.name}" is a stack of ${rec.stack.scans} scans, not one step; its unrolled form is its graph of scans with every scan inlined`);
  const order = topoOrder([...rec.next, ...rec.outputs.map((o) => o.node)]);
  const states: Node[][] = [rec.state.map((s) => stepLeaf(ctx, s.name, s.node, 0, 'state'))];
  const inputs: Node[][] = [];
  const outputs: Node[][] = [];
  const valid: Node[] = [];
  for (let t = 1; t <= tau; t++) {
    ctx.atStep(t, () => {
      const xs = rec.input.map((x) => stepLeaf(ctx, x.name, x.node, t, 'input'));
      const prev = states[t - 1]!;
      const subst = new Map<Node, Node>([
        ...rec.state.map((s, i): [Node, Node] => [s.node, prev[i]!]),
        ...rec.input.map((x, i): [Node, Node] => [x.node, xs[i]!]),
      ]);
      if (rec.valid) {
        const v = stepLeaf(ctx, String(rec.valid.attrs['name']), rec.valid, t, 'mask');
        subst.set(rec.valid, v);
        valid.push(v);
      }
      const mapped = substitute(ctx, order, subst);
      inputs.push(xs);
      states.push(rec.next.map((n) => mapped.get(n)!));
      outputs.push(rec.outputs.map((o) => mapped.get(o.node)!));
    });
  }
  const named: Named[] = [];
  for (let t = 1; t <= tau; t++) rec.outputs.forEach((o, k) => named.push({ name: `${o.name}@${t}`, node: outputs[t - 1]![k]! }));
  rec.state.forEach((s, i) => named.push({ name: `${s.name}@${tau}`, node: states[tau]![i]! }));
  return { rec, tau, graph: makeGraph(named), states, inputs, outputs, valid };
}
