// unroll(recurrence, τ): one DAG with τ copies of the step body; every parameter is one node
// shared by all steps, and every node knows its step. Time and memory linear in τ.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, substitute, topoOrder, type Graph } from '../ir/graph.ts';
import { originSpec, type Context, type Node } from '../ir/node.ts';
import type { Named, Recurrence } from '../dsl/recurrence.ts';
import { createBuilder } from '../prims/builder.ts';
import { joinSlots, stageSlot, topStages } from '../dsl/program.ts';

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
  /**
   * A program's per-step layer output at t: the top layer's, both directions concatenated [B, D·H]
   * (PyTorch's `output`). Absent for a single recurrence, whose layer output is its first state.
   * A program's states[t] are its states after t iterations of every scan (a reverse scan's
   * iteration t has seen steps τ … τ − t + 1), so states[τ] is the final state, as PyTorch's h_n.
   */
  readonly hidden?: readonly Node[];
  /**
   * A program's stages as unrolled, aligned with `rec.program.stages` (absent for a single
   * recurrence): `states[i]` are the stage's own states after i iterations (states[0] its slot of
   * the initial states; a reverse stage's iteration i is at step t = τ − i + 1), `outputs[t − 1]`
   * its outputs at step t (time, not iteration).
   */
  readonly stages?: readonly UnrolledStage[];
}

/** One stage of an unrolled program (see `Unrolled.stages`). */
export interface UnrolledStage {
  readonly states: readonly (readonly Node[])[];
  readonly outputs: readonly (readonly Node[])[];
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
  if (rec.program) return unrollProgram(rec, tau, ctx);
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

/**
 * A program unrolled scan by scan: each stage's step body instantiated τ times in its own
 * direction, reading the data leaves or the earlier stages' outputs at the same t.
 */
function unrollProgram(rec: Recurrence, tau: number, ctx: Context): Unrolled {
  const b = createBuilder(ctx);
  const { stages } = rec.program!;
  const init = rec.state.map((s) => stepLeaf(ctx, s.name, s.node, 0, 'state'));
  const inputs: Node[][] = [];
  const valid: Node[] = [];
  for (let t = 1; t <= tau; t++) {
    ctx.atStep(t, () => {
      inputs.push(rec.input.map((x) => stepLeaf(ctx, x.name, x.node, t, 'input')));
      if (rec.valid) valid.push(stepLeaf(ctx, String(rec.valid.attrs['name']), rec.valid, t, 'mask'));
    });
  }
  // outs[j][t - 1][k]: output k of stage j at step t; iter[j][i]: stage j's states after i iterations.
  const outs: Node[][][] = [];
  const iter: Node[][][] = [];
  stages.forEach((stage, j) => {
    const r = stage.rec;
    const order = topoOrder([...r.next, ...r.outputs.map((o) => o.node)]);
    const own = r.state.map((s, i) => stageSlot(b, init[i]!, stage, s.node.shape));
    const states: Node[][] = [own];
    const stepOuts: Node[][] = new Array(tau);
    for (let i = 1; i <= tau; i++) {
      const t = stage.reverse ? tau - i + 1 : i;
      ctx.atStep(t, () => {
        const prev = states[i - 1]!;
        const subst = new Map<Node, Node>([
          ...r.state.map((s, k): [Node, Node] => [s.node, prev[k]!]),
          ...r.input.map((x, k): [Node, Node] => {
            const src = stage.sources[k]!;
            return [x.node, 'data' in src ? inputs[t - 1]![src.data]! : outs[src.stage]![t - 1]![src.output]!];
          }),
        ]);
        if (r.valid) subst.set(r.valid, valid[t - 1]!);
        const mapped = substitute(ctx, order, subst);
        states.push(r.next.map((n) => mapped.get(n)!));
        stepOuts[t - 1] = r.outputs.map((o) => mapped.get(o.node)!);
      });
    }
    outs.push(stepOuts);
    iter.push(states);
  });
  // The program's states after i iterations: every stage's slot, stacked in slot (= stage) order.
  const states: Node[][] = [init];
  for (let i = 1; i <= tau; i++) {
    states.push(rec.state.map((_, k) => joinSlots(b, stages.map((_, j) => iter[j]![i]![k]!))));
  }
  const lastIndex = stages.length - 1;
  const last = stages[lastIndex]!;
  const outputs = outs[lastIndex]!.map((row) => row.slice(0, last.layerOutput));
  const top = topStages(rec.program!);
  const hidden = Array.from({ length: tau }, (_, t) => {
    const parts = top.map(({ stage, index }) => outs[index]![t]![stage.layerOutput]!);
    return parts.length === 1 ? parts[0]! : b.concat(parts, 1);
  });
  const named: Named[] = [];
  for (let t = 1; t <= tau; t++) rec.outputs.forEach((o, k) => named.push({ name: `${o.name}@${t}`, node: outputs[t - 1]![k]! }));
  rec.state.forEach((s, i) => named.push({ name: `${s.name}@${tau}`, node: states[tau]![i]! }));
  const unrolledStages = stages.map((_, j): UnrolledStage => ({ states: iter[j]!, outputs: outs[j]! }));
  return { rec, tau, graph: makeGraph(named), states, inputs, outputs, valid, hidden, stages: unrolledStages };
}
