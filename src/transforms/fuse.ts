// Stacked layers that all run forward, as one recurrence: the model's graph of scans over a single
// step, inlined — at step t every layer steps in turn, layer k reading layer k − 1's output of the
// same step. Its state is the stack's [L, B, H] (each layer's slot), so it steps one t at a time:
// what the inference module and `generate` need. A reverse scan reads the whole sequence before
// its first output: such a model cannot step, and says so.
import { UnfoldError } from '../ir/errors.ts';
import { makeGraph } from '../ir/graph.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { dataInputs, stackLayout, sequenceScans } from '../dsl/sequence.ts';
import { inlineScans } from './inline-scans.ts';

/** `rec` itself for a single recurrence; stacked forward layers as one step. */
export function fuseForward(rec: Recurrence, b: NodeBuilder, what = 'stepping one t at a time', modelName = rec.name): Recurrence {
  const layout = stackLayout(rec);
  if (!layout) return rec;
  if (layout.directions === 2) {
    throw new UnfoldError(`model "${modelName}" has a bidirectional layer: its reverse scan reads the whole sequence before its first output, so ${what} is impossible; use a unidirectional model`);
  }
  if (rec.valid) throw new UnfoldError(`model "${modelName}": ${what} runs every row alike; per-row lengths need the whole window`);
  // One step of each data input, [B, ...] as [B, 1, ...]; the states are the model's own placeholders.
  const data = dataInputs(rec);
  const r = sequenceScans(rec, {
    inputs: data.map((x) => b.reshape(x.node, [x.node.shape[0]!, 1, ...x.node.shape.slice(1)])),
    initial: rec.state.map((s) => s.node),
  });
  const g = inlineScans(makeGraph([...r.outputs, ...r.final.map((node, i) => ({ name: `next:${i}`, node }))]), b.ctx).graph;
  const at = (i: number) => g.outputs[i]!.node;
  return {
    name: rec.name, origin: rec.origin, state: rec.state, input: rec.input, params: rec.params,
    next: rec.state.map((_, i) => at(r.outputs.length + i)),
    outputs: r.outputs.map((o, k) => ({ name: o.name, node: b.reshape(at(k), [at(k).shape[0]!, ...at(k).shape.slice(2)]) })),
  };
}
