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

/** The loss part of a step VJP: present for the scan that carries the loss. */
export interface StepLoss {
  /** The target placeholder y(t) (an input leaf with role 'target'). */
  readonly target: Node;
  /** Σ_b w_b(t) ℓ_b(t) (weighted) or ℓ(t), before averaging; the loss is (Σ_t lossTerm) / N. */
  readonly lossTerm: Node;
  /** The per-row weights w(t) [rows] of a weighted loss (see transforms/loss.ts), a per-step placeholder. */
  readonly weight: Node | undefined;
  /** N, a placeholder: it depends on the window's length and lengths, known only when the data is. */
  readonly normalizer: Node;
}

export interface StepVjp {
  readonly rec: Recurrence;
  readonly loss: StepLoss | undefined;
  /** Cotangent placeholders ds, aligned with rec.state. */
  readonly cotangents: readonly Node[];
  /** ds(t−1) per state, the step's contribution per parameter, dx(t) per input asked for (aligned with rec.input, undefined where not asked). */
  readonly stateGrads: readonly Node[];
  readonly paramGrads: readonly Node[];
  readonly inputGrads: readonly (Node | undefined)[];
  /** ‖∂L/∂s(t)‖² over every state together (Frobenius), when asked for (gradient flow through time). */
  readonly flowSquares: Node | undefined;
  /** All of the above as one graph (outputs `ds:<state>`, `grad:<param>`, `grad:<input>`). */
  readonly graph: Graph;
}

export interface StepVjpOptions {
  /** dx(t) for every input (true), none (false), or those marked. */
  readonly inputGrads?: boolean | readonly boolean[];
  readonly gradFlow?: boolean;
}

/**
 * J = [Σ_b w_b(t) ℓ_b(t) / N] + Σ ⟨ds, s(t)⟩, differentiated once (`loss` undefined: the state
 * cotangents alone).
 */
export function stepVjp(rec: Recurrence, loss: LossSpec | undefined, b: NodeBuilder, opts: StepVjpOptions = {}): StepVjp {
  let J: Node | undefined;
  const plus = (term: Node) => {
    J = J ? b.add(J, term) : term;
  };
  const inner = (a: Node, c: Node) => b.sum(b.mul(a, c), c.shape.map((_, d) => d));
  let stepLoss: StepLoss | undefined;
  if (loss) {
    const o = rec.outputs[lossOutputIndex(rec, loss)]!.node;
    const target = b.input(loss.target ?? 'y', o.shape, { role: 'target' });
    const weight = isWeighted(loss, rec.valid !== undefined) ? b.input(LOSS_WEIGHT, weightShape(o.shape), { role: 'weight' }) : undefined;
    const lossTerm = weight ? weightedStepLoss(b, loss.kind, o, target, weight) : stepLossTerm(b, loss.kind, o, target);
    const normalizer = b.input(LOSS_NORM, [], { role: 'normalizer' });
    stepLoss = { target, lossTerm, weight, normalizer };
    plus(b.div(lossTerm, normalizer));
  }
  const cotangents = rec.state.map((s) => b.input(`d${s.name}`, s.node.shape, { role: 'cotangent' }));
  rec.next.forEach((n, i) => plus(inner(cotangents[i]!, n)));
  const states = rec.state.map((s) => s.node);
  const params = rec.params.map((p) => p.node);
  const asked = rec.input.map((_, i) => (Array.isArray(opts.inputGrads) ? opts.inputGrads[i] === true : opts.inputGrads === true));
  const inputs = rec.input.filter((_, i) => asked[i]).map((x) => x.node);
  // The new state s(t) is an inner node: its cotangent is the total ∂L/∂s(t), through o(t) and every later step.
  const flowTargets = opts.gradFlow ? rec.next : [];
  const { grads } = vjp(makeGraph({ J: J! }), J!, [...states, ...params, ...inputs, ...flowTargets], b);
  const stateGrads = grads.slice(0, states.length);
  const paramGrads = grads.slice(states.length, states.length + params.length);
  const askedGrads = grads.slice(states.length + params.length, states.length + params.length + inputs.length);
  let next = 0;
  const inputGrads = asked.map((a) => (a ? askedGrads[next++]! : undefined));
  const flow = grads.slice(states.length + params.length + inputs.length);
  const flowSquares = opts.gradFlow ? flow.map((g) => inner(g, g)).reduce((a, c) => b.add(a, c)) : undefined;
  const graph = makeGraph([
    ...rec.state.map((s, i) => ({ name: `ds:${s.name}`, node: stateGrads[i]! })),
    ...rec.params.map((p, i) => ({ name: `grad:${p.name}`, node: paramGrads[i]! })),
    ...rec.input.flatMap((x, i) => (inputGrads[i] ? [{ name: `grad:${x.name}`, node: inputGrads[i] }] : [])),
  ]);
  return { rec, loss: stepLoss, cotangents, stateGrads, paramGrads, inputGrads, flowSquares, graph };
}
