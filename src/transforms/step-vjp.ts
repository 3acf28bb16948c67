// The step body's own VJP, for the rolled (looped) form of BPTT: with a cotangent placeholder ds
// for s(t), J = Σ_b w_b(t) ℓ_b(t) / N + Σ ⟨ds, s(t)⟩ (or ℓ(t) / N, unweighted) is differentiated
// once, symbolically, and gives
// ds(t−1), the step's parameter contributions and dx(t). No BPTT is written by hand: the reverse
// loop just applies this graph from t = τ down to 1.
import { makeGraph, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { LossSpec } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { isWeighted, LOSS_NORM, LOSS_WEIGHT, lossOutputIndex, stepLossTerm, weightedStepLoss, weightShape } from './loss.ts';
import { vjp } from './vjp.ts';

export interface StepVjp {
  readonly rec: Recurrence;
  /** The target placeholder y(t) (an input leaf with role 'target'). */
  readonly target: Node;
  /** Σ_b w_b(t) ℓ_b(t) (weighted) or ℓ(t), before averaging; the loss is (Σ_t lossTerm) / N. */
  readonly lossTerm: Node;
  /** The per-row weights w(t) [rows] of a weighted loss (see transforms/loss.ts), a per-step placeholder. */
  readonly weight: Node | undefined;
  /** N, a placeholder: it depends on the window's length and lengths, known only when the data is. */
  readonly normalizer: Node;
  /** Cotangent placeholders ds, aligned with rec.state. */
  readonly cotangents: readonly Node[];
  /** ds(t−1) per state, the step's contribution per parameter, dx(t) per input (when asked). */
  readonly stateGrads: readonly Node[];
  readonly paramGrads: readonly Node[];
  readonly inputGrads: readonly Node[];
  /** ‖∂L/∂s(t)‖² over every state together (Frobenius), when asked for (gradient flow through time). */
  readonly flowSquares: Node | undefined;
  /** All of the above as one graph (outputs `ds:<state>`, `grad:<param>`, `grad:<input>`). */
  readonly graph: Graph;
}

export function stepVjp(rec: Recurrence, loss: LossSpec, b: NodeBuilder, opts: { inputGrads?: boolean; gradFlow?: boolean } = {}): StepVjp {
  const k = lossOutputIndex(rec, loss);
  const o = rec.outputs[k]!.node;
  const target = b.input(loss.target ?? 'y', o.shape, { role: 'target' });
  const weight = isWeighted(loss, rec.valid !== undefined) ? b.input(LOSS_WEIGHT, weightShape(o.shape), { role: 'weight' }) : undefined;
  const lossTerm = weight ? weightedStepLoss(b, loss.kind, o, target, weight) : stepLossTerm(b, loss.kind, o, target);
  const normalizer = b.input(LOSS_NORM, [], { role: 'normalizer' });
  const cotangents = rec.state.map((s) => b.input(`d${s.name}`, s.node.shape, { role: 'cotangent' }));
  let J = b.div(lossTerm, normalizer);
  rec.next.forEach((n, i) => {
    J = b.add(J, b.sum(b.mul(cotangents[i]!, n), n.shape.map((_, d) => d)));
  });
  const states = rec.state.map((s) => s.node);
  const params = rec.params.map((p) => p.node);
  const inputs = opts.inputGrads ? rec.input.map((x) => x.node) : [];
  // The new state s(t) is an inner node: its cotangent is the total ∂L/∂s(t), through o(t) and every later step.
  const flowTargets = opts.gradFlow ? rec.next : [];
  const { grads } = vjp(makeGraph({ J }), J, [...states, ...params, ...inputs, ...flowTargets], b);
  const stateGrads = grads.slice(0, states.length);
  const paramGrads = grads.slice(states.length, states.length + params.length);
  const inputGrads = grads.slice(states.length + params.length, states.length + params.length + inputs.length);
  const flow = grads.slice(states.length + params.length + inputs.length);
  const flowSquares = opts.gradFlow ? flow.map((g) => b.sum(b.mul(g, g), g.shape.map((_, d) => d))).reduce((a, c) => b.add(a, c)) : undefined;
  const graph = makeGraph([
    ...rec.state.map((s, i) => ({ name: `ds:${s.name}`, node: stateGrads[i]! })),
    ...rec.params.map((p, i) => ({ name: `grad:${p.name}`, node: paramGrads[i]! })),
    ...inputs.map((_, i) => ({ name: `grad:${rec.input[i]!.name}`, node: inputGrads[i]! })),
  ]);
  return { rec, target, lossTerm, weight, normalizer, cotangents, stateGrads, paramGrads, inputGrads, flowSquares, graph };
}
