// The graph a training step needs: unroll τ steps, add the loss, differentiate with respect to
// the parameters (and, on request, the inputs x(t) and the initial state s(0)).
import type { Node } from '../ir/node.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { withLoss, type LossSpec, type Trainable } from './loss.ts';
import { unroll, type Unrolled } from './unroll.ts';
import { vjp, type VjpResult } from './vjp.ts';

export interface TrainingGraph {
  readonly rec: Recurrence;
  readonly unrolled: Unrolled;
  readonly trainable: Trainable;
  /** Outputs: `loss`, `o@t`, `s@τ`, then `grad:<param>`, and `grad:x@t`, `grad:s@0` when asked. */
  readonly grad: VjpResult;
}

export interface TrainingOptions {
  /** Differentiate with respect to every input x(t) too. */
  readonly inputGrads?: boolean;
  /** Differentiate with respect to the initial state s(0) (false: it is a detached constant). */
  readonly stateGrads?: boolean;
}

/** Builds the unrolled, loss-carrying, differentiated graph of one training window. */
export function trainingGraph(rec: Recurrence, tau: number, loss: LossSpec, b: NodeBuilder, opts: TrainingOptions = {}): TrainingGraph {
  const unrolled = unroll(rec, tau, b.ctx);
  const trainable = withLoss(unrolled, loss, b);
  const wrt: Node[] = rec.params.map((p) => p.node);
  if (opts.inputGrads) for (const xs of unrolled.inputs) wrt.push(...xs);
  if (opts.stateGrads) wrt.push(...unrolled.states[0]!);
  return { rec, unrolled, trainable, grad: vjp(trainable.graph, trainable.loss, wrt, b) };
}
