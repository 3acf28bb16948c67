// Per-row lengths as one recurrence-to-recurrence transform: with valid(t) [B, 1] = [t ≤ lengths[b]],
// s(t) = where(valid, f(s(t−1), x(t)), s(t−1)) and the outputs read where(valid, s(t), 0) — exactly
// PyTorch's pack_padded_sequence / pad_packed_sequence, for every cell a user writes, unchanged.
import { UnfoldError } from '../ir/errors.ts';
import { substitute, topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { shapeToString } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from './recurrence.ts';

/** The name of the validity placeholder (leaves `valid@t` when unrolled). */
export const VALID = 'valid';

/** The batch size every state and output of `rec` leads with (the rows lengths apply to), or an error naming the one that does not. */
export function batchRows(rec: Recurrence): number {
  const B = rec.state[0]!.node.shape[0];
  const all = [...rec.state, ...rec.input, ...rec.outputs];
  const bad = all.find((n) => n.node.shape.length < 2 || n.node.shape[0] !== B);
  if (B === undefined || bad) {
    const what = bad ?? rec.state[0]!;
    throw new UnfoldError(
      `lengths: "${what.name}" has per-step shape ${shapeToString(what.node.shape)}; per-row lengths need every state, input and output batch-first [B, ...] with the same B`,
    );
  }
  const clash = [...rec.state, ...rec.input].find((n) => n.name === VALID);
  if (clash) throw new UnfoldError(`lengths: the model has a state or input named "${VALID}", the name of the validity mask lengths add; rename it`);
  return B;
}

/**
 * `rec` under per-row lengths: a row's state stops changing after its last valid step (its final
 * state is the state there), and its outputs read a zero state at padded steps. Inputs at padded
 * steps reach nothing (where() sends them a zero cotangent), so their gradient is exactly 0.
 */
export function withLengths(rec: Recurrence, b: NodeBuilder): Recurrence {
  if (rec.valid) return rec;
  // A stack is masked scan by scan where it runs as its graph of scans (sequenceScans).
  if (rec.stack) throw new UnfoldError(`lengths: "${rec.name}" is a stack of scans; each of its scans is masked where it runs (sequenceScans), not the stack as one recurrence`);
  const B = batchRows(rec);
  const valid = b.input(VALID, [B, 1], { role: 'mask' });
  const cond = (shape: readonly number[]) => b.broadcast(b.reshape(valid, [B]), shape, shape.slice(1).map((_, i) => i + 1));
  const next = rec.next.map((n, i) => b.where(cond(n.shape), n, rec.state[i]!.node));
  // Outputs are traced on the new state: re-trace them on where(valid, s(t), 0), which reads the
  // masked s(t) itself (not f), so the cotangent of s(t) is its total derivative, outputs included.
  const hidden = new Map(rec.next.map((n, i): [Node, Node] => [n, b.where(cond(n.shape), next[i]!, b.scalar(0, n.shape))]));
  const mapped = substitute(b.ctx, topoOrder(rec.outputs.map((o) => o.node), (n) => hidden.has(n)), hidden);
  const outputs = rec.outputs.map((o) => ({ name: o.name, node: mapped.get(o.node)! }));
  return { ...rec, next, outputs, valid };
}

