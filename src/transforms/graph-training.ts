// The training graph of a graph model: its loss over whole tensors and the gradient of every
// parameter — one vjp over the model's scans (each differentiated by its own rule).
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph, type Graph } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sameShape, shapeToString } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { GraphModel } from '../dsl/graph-model.ts';
import type { LossSpec } from '../dsl/model.ts';
import { elementLoss, lossDenominator, stepLossTerm } from './loss.ts';
import { LOSS_NORMALIZER, LOSS_WEIGHTS } from '../dsl/sequence.ts';
import { vjp, type VjpResult } from './vjp.ts';
import { segmentScans, type SegmentChoice } from './segment-scans.ts';
import { pruneScans } from './prune-scans.ts';
import { hoistScanInputs, type HoistChoice } from './hoist-scans.ts';

export interface GraphTraining {
  readonly model: GraphModel;
  readonly loss: Node;
  /** `loss`, the model's outputs by name, then `grad:<param>`. */
  readonly graph: Graph;
  readonly grad: VjpResult;
}

/**
 * mse: the mean over every element (nn.MSELoss); sse: the sum; xent: cross-entropy of the logits
 * against one-hot (or soft) targets over the last axis, the mean over every other position
 * (NLLLoss(log_softmax) over B · T).
 */
export function graphLoss(model: GraphModel, spec: LossSpec, b: NodeBuilder): Node {
  const weights = model.inputs.find((x) => x.name === LOSS_WEIGHTS), normalizer = model.inputs.find((x) => x.name === LOSS_NORMALIZER);
  if ((spec.over ?? 'all') !== 'all' && !weights) throw new UnfoldError(`loss: --loss-over ${spec.over} compares each row's last step of one recurrence; model "${model.name}" is a graph of scans, whose loss reads its whole outputs`);
  const out = spec.output === undefined ? model.outputs[0]! : model.outputs.find((o) => o.name === spec.output);
  if (!out) throw new UnfoldError(`loss: no output "${spec.output}" (outputs: ${model.outputs.map((o) => o.name).join(', ')})`);
  const targetName = spec.target ?? 'y';
  const target = model.inputs.find((x) => x.name === targetName);
  if (!target) throw new UnfoldError(`loss: model "${model.name}" has no input "${targetName}" to compare its output "${out.name}" with (inputs: ${model.inputs.map((x) => x.name).join(', ')})`);
  if (!sameShape(out.node.shape, target.node.shape)) {
    throw new UnfoldError(`loss: output "${out.name}" ${shapeToString(out.node.shape)} and target "${targetName}" ${shapeToString(target.node.shape)} differ in shape`);
  }
  // A sequence model's weighted loss (sequenceModel): Σ_b,t w[b, t] ℓ_b(t) / N, the weights picking the
  // compared row-steps (every valid one, or each row's last) and N their count times the unit.
  if (weights && normalizer) {
    const rows = weights.node.shape.length;
    if (out.node.shape.length < rows || !sameShape(out.node.shape.slice(0, rows), weights.node.shape)) {
      throw new UnfoldError(`loss: output "${out.name}" ${shapeToString(out.node.shape)} does not lead with the loss weights' ${shapeToString(weights.node.shape)}`);
    }
    const terms = b.sum(elementLoss(b, spec.kind, out.node, target.node), out.node.shape.slice(rows).map((_, i) => rows + i));
    return b.div(b.sum(b.mul(weights.node, terms), weights.node.shape.map((_, i) => i)), normalizer.node);
  }
  const total = stepLossTerm(b, spec.kind, out.node, target.node);
  return b.div(total, b.scalar(lossDenominator(spec.kind, out.node.shape, 1), []));
}

export interface GraphTrainingOptions {
  /** Checkpointed BPTT: the segment length of each scan it chooses one for. */
  readonly segment?: SegmentChoice;
  /** The scans whose carry-free products are computed over all steps before them. */
  readonly hoist?: HoistChoice;
  /** Data leaves whose gradients are wanted too: `grad:<name>` after the parameters'. */
  readonly inputs?: readonly Node[];
}

/**
 * The loss and gradients of `model`. With `hoist`, the scans it agrees to have their carry-free
 * products computed over all steps before them (src/transforms/hoist-scans.ts), so the VJP makes
 * each weight gradient one product over the rows of every step. With `segment`, the scans it
 * chooses a segment length for are differentiated in segments (checkpointed BPTT,
 * src/transforms/segment-scans.ts): the same numbers, a segment's residuals held at a time.
 */
export function graphTraining(model: GraphModel, spec: LossSpec, b: NodeBuilder, opts: GraphTrainingOptions = {}): GraphTraining {
  const { segment, hoist } = opts;
  model = rewritten(model, (g) => pruneScans(g, b.ctx));
  if (hoist) model = rewritten(model, (g) => hoistScanInputs(g, b.ctx, hoist));
  if (segment) model = rewritten(model, (g) => segmentScans(g, segment, b.ctx));
  const loss = graphLoss(model, spec, b);
  const g = makeGraph([{ name: 'loss', node: loss }, ...model.outputs.map((o) => ({ name: o.name, node: o.node }))]);
  // With `inputs` (data leaves), their gradients too: `grad:<name>` after the parameters'.
  const grad = vjp(g, loss, [...model.params.map((p) => p.node), ...(opts.inputs ?? [])], b);
  return { model, loss, graph: grad.graph, grad };
}

/** The model with its outputs computed by a rewritten graph of them (the same values). */
function rewritten(model: GraphModel, rewrite: (g: Graph) => Graph): GraphModel {
  const g = rewrite(makeGraph(model.outputs.map((o) => ({ name: o.name, node: o.node }))));
  return { ...model, outputs: model.outputs.map((o, i) => ({ ...o, node: g.outputs[i]!.node })) };
}
