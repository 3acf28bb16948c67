// Losses over an unrolled graph: targets y(t) become per-step leaves `y@t`, the loss a scalar
// output. mse = mean over all elements (nn.MSELoss), sse = sum, xent = cross-entropy with logits.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { LossSpec } from '../dsl/model.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { stepLeaf, type Unrolled } from './unroll.ts';

// The spec is part of a model file's task, so the DSL declares it (dsl must not import transforms).
export type { LossKind, LossSpec } from '../dsl/model.ts';

export interface Trainable {
  readonly unrolled: Unrolled;
  /** `loss`, the unrolled outputs and final states. */
  readonly graph: Graph;
  readonly loss: Node;
  /** targets[t - 1]: the target leaf of step t (undefined for steps the loss skips). */
  readonly targets: readonly (Node | undefined)[];
}

/** log-softmax over the last axis, shifted by the detached max for stability. */
function logSoftmax(b: NodeBuilder, z: Node): Node {
  const last = z.shape.length - 1;
  const m = b.broadcast(b.detach(b.max(z, [last])), z.shape, [last]);
  const shifted = b.sub(z, m);
  const lse = b.broadcast(b.log(b.sum(b.exp(shifted), [last])), z.shape, [last]);
  return b.sub(shifted, lse);
}

/** The loss of one step, before averaging: Σ (o − y)² for mse/sse, −Σ y·log softmax(o) for xent. */
export function stepLossTerm(b: NodeBuilder, kind: LossSpec['kind'], o: Node, y: Node): Node {
  const all = o.shape.map((_, i) => i);
  if (kind === 'xent') return b.neg(b.sum(b.mul(y, logSoftmax(b, o)), all));
  const d = b.sub(o, y);
  return b.sum(b.mul(d, d), all);
}

/** What the summed step terms are divided by: mse averages every element; xent the rows (batch × steps), as PyTorch. */
export function lossDenominator(kind: LossSpec['kind'], outShape: readonly number[], steps: number): number {
  return kind === 'mse' ? steps * sizeOf(outShape) : kind === 'xent' ? steps * sizeOf(outShape.slice(0, -1)) : 1;
}

/** The index of the output the loss compares with its target. */
export function lossOutputIndex(rec: Recurrence, spec: LossSpec): number {
  const outs = rec.outputs;
  if (outs.length === 0) throw new UnfoldError(`loss: recurrence "${rec.name}" has no output to compare with a target`);
  const k = spec.output === undefined ? 0 : outs.findIndex((o) => o.name === spec.output);
  if (k < 0) throw new UnfoldError(`loss: no output "${spec.output}" (outputs: ${outs.map((o) => o.name).join(', ')})`);
  return k;
}

export function withLoss(u: Unrolled, spec: LossSpec, b: NodeBuilder): Trainable {
  const k = lossOutputIndex(u.rec, spec);
  const template = u.rec.outputs[k]!.node;
  const targetName = spec.target ?? 'y';
  const steps = spec.over === 'last' ? [u.tau] : Array.from({ length: u.tau }, (_, i) => i + 1);
  const targets: (Node | undefined)[] = new Array(u.tau).fill(undefined);
  const ctx = b.ctx;
  let total: Node | undefined;
  for (const t of steps) {
    const o = u.outputs[t - 1]![k]!;
    const y = stepLeaf(ctx, targetName, template, t, 'target');
    targets[t - 1] = y;
    const term = ctx.atStep(t, () => stepLossTerm(b, spec.kind, o, y));
    total = total ? b.add(total, term) : term;
  }
  const loss = b.div(total!, b.scalar(lossDenominator(spec.kind, template.shape, steps.length), []));
  return {
    unrolled: u,
    graph: makeGraph([{ name: 'loss', node: loss }, ...u.graph.outputs]),
    loss,
    targets,
  };
}
