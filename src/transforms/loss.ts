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
import { LOSS_NORMALIZER, LOSS_WEIGHTS } from '../dsl/sequence.ts';

// The spec is part of a model file's task, so the DSL declares it (dsl must not import transforms).
export type { LossKind, LossSpec } from '../dsl/model.ts';

export interface Trainable {
  readonly unrolled: Unrolled;
  /** `loss`, the unrolled outputs and final states. */
  readonly graph: Graph;
  readonly loss: Node;
  /** targets[t - 1]: the target leaf of step t. */
  readonly targets: readonly Node[];
  /** weights[t - 1]: the weight leaf `loss.w@t` of step t (a weighted loss only, else empty). */
  readonly weights: readonly Node[];
  /** The normalizer leaf `loss.N` of a weighted loss (else N is a constant in the graph). */
  readonly normalizer: Node | undefined;
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
  return b.sum(elementLoss(b, kind, o, y), o.shape.map((_, i) => i));
}

/** (o − y)² element by element, or −y·log softmax(o). */
export function elementLoss(b: NodeBuilder, kind: LossSpec['kind'], o: Node, y: Node): Node {
  if (kind === 'xent') return b.neg(b.mul(y, logSoftmax(b, o)));
  const d = b.sub(o, y);
  return b.mul(d, d);
}

/**
 * The rows a step's output is compared in, which lengths and per-row loss weights address: its
 * leading (batch) axis when it has two or more axes; otherwise the whole output is one row.
 */
export function lossRows(outShape: readonly number[]): number {
  return outShape.length >= 2 ? outShape[0]! : 1;
}

/** The shape of one step's per-row loss weights: [rows], or [] for a one-row output. */
export function weightShape(outShape: readonly number[]): number[] {
  return outShape.length >= 2 ? [outShape[0]!] : [];
}

/** Σ_b w_b ℓ_b(t): one step's loss, each row's term (summed over its other axes) weighted by w [rows]. */
export function weightedStepLoss(b: NodeBuilder, kind: LossSpec['kind'], o: Node, y: Node, w: Node): Node {
  const all = o.shape.map((_, i) => i);
  const rows = b.sum(elementLoss(b, kind, o, y), o.shape.length >= 2 ? all.slice(1) : all);
  return b.sum(b.mul(w, rows), w.shape.map((_, i) => i));
}

/** What the summed step terms are divided by: mse averages every element; xent the rows (batch × steps), as PyTorch. */
export function lossDenominator(kind: LossSpec['kind'], outShape: readonly number[], steps: number): number {
  return kind === 'mse' ? steps * sizeOf(outShape) : kind === 'xent' ? steps * sizeOf(outShape.slice(0, -1)) : 1;
}

/**
 * What one compared row-step adds to the denominator N: mse its elements, xent its positions
 * (elements without the class axis), sse 0 (a plain sum, N = 1).
 */
export function lossUnit(kind: LossSpec['kind'], outShape: readonly number[]): number {
  const perRow = sizeOf(outShape) / lossRows(outShape);
  return kind === 'mse' ? perRow : kind === 'xent' ? perRow / outShape[outShape.length - 1]! : 0;
}

/** Which steps of a row the loss compares: every valid one, or the row's own last. */
export type LossOver = NonNullable<LossSpec['over']>;
export const LOSS_OVER = ['all', 'last'] as const satisfies readonly LossOver[];

/**
 * The per-row loss weights w_b(t) of a window, [T][rows]: 1 where the loss compares row b at step t
 * (t 0-based; 'all': t < lengths[b]; 'last': t = lengths[b] − 1), else 0. The emitted trainer
 * computes the same table (setWindow, src/emit/trainer.ts): the parity tests hold them equal.
 */
export function lossWeights(over: LossOver, lengths: readonly number[], T: number): Float64Array[] {
  return Array.from({ length: T }, (_, t) => Float64Array.from(lengths, (n) => (over === 'last' ? (t === n - 1 ? 1 : 0) : t < n ? 1 : 0)));
}

/** N of J = Σ_t Σ_b w_b(t) ℓ_b(t) / N: the compared row-steps times the unit (1 for sse). */
export function lossNormalizer(kind: LossSpec['kind'], outShape: readonly number[], over: LossOver, lengths: readonly number[]): number {
  const unit = lossUnit(kind, outShape);
  if (unit === 0) return 1;
  return unit * (over === 'last' ? lengths.length : lengths.reduce((a, n) => a + n, 0));
}

/** Whether a loss needs per-row weights: under lengths, or compared on other steps than all. */
export function isWeighted(spec: LossSpec, lengths: boolean): boolean {
  return lengths || (spec.over ?? 'all') !== 'all';
}

/** The loss leaves a weighted loss reads: per-step weights `loss.w@t` and the normalizer `loss.N` (a sequence model's, whole). */
export const LOSS_WEIGHT = LOSS_WEIGHTS;
export const LOSS_NORM = LOSS_NORMALIZER;

/** The index of the output the loss compares with its target. */
export function lossOutputIndex(rec: Recurrence, spec: LossSpec): number {
  const outs = rec.outputs;
  if (outs.length === 0) throw new UnfoldError(`loss: recurrence "${rec.name}" has no output to compare with a target`);
  const k = spec.output === undefined ? 0 : outs.findIndex((o) => o.name === spec.output);
  if (k < 0) throw new UnfoldError(`loss: no output "${spec.output}" (outputs: ${outs.map((o) => o.name).join(', ')})`);
  return k;
}

/**
 * The loss over an unrolled graph. Over every step of full-length rows it is (Σ_t ℓ(t)) / N with N
 * a constant; under lengths or another placement it is Σ_t Σ_b w_b(t) ℓ_b(t) / N with the weights
 * `loss.w@t` and N `loss.N` as leaves bound from the data (lossWeights, lossNormalizer).
 */
export function withLoss(u: Unrolled, spec: LossSpec, b: NodeBuilder): Trainable {
  const k = lossOutputIndex(u.rec, spec);
  const template = u.rec.outputs[k]!.node;
  const targetName = spec.target ?? 'y';
  const weight = isWeighted(spec, u.rec.valid !== undefined) ? b.input(LOSS_WEIGHT, weightShape(template.shape), { role: 'weight' }) : undefined;
  const targets: Node[] = [];
  const weights: Node[] = [];
  const ctx = b.ctx;
  let total: Node | undefined;
  for (let t = 1; t <= u.tau; t++) {
    const o = u.outputs[t - 1]![k]!;
    const y = stepLeaf(ctx, targetName, template, t, 'target');
    targets.push(y);
    const term = ctx.atStep(t, () => {
      if (!weight) return stepLossTerm(b, spec.kind, o, y);
      const w = stepLeaf(ctx, LOSS_WEIGHT, weight, t, 'weight');
      weights.push(w);
      return weightedStepLoss(b, spec.kind, o, y, w);
    });
    total = total ? b.add(total, term) : term;
  }
  const normalizer = weight ? b.input(LOSS_NORM, [], { role: 'normalizer' }) : undefined;
  const loss = b.div(total!, normalizer ?? b.scalar(lossDenominator(spec.kind, template.shape, u.tau), []));
  return {
    unrolled: u,
    graph: makeGraph([{ name: 'loss', node: loss }, ...u.graph.outputs]),
    loss,
    targets,
    weights,
    normalizer,
  };
}
