// A program whose scans all run forward, as one recurrence: at step t every layer steps in turn,
// layer k reading layer k − 1's output of the same step. Its state is the program's [L, B, H]
// (each layer's slot), so it steps one t at a time — what the inference module and `generate`
// need. A reverse scan needs the whole sequence first: such a program cannot step, and says so.
import { UnfoldError } from '../ir/errors.ts';
import { substitute, topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { Recurrence } from '../dsl/recurrence.ts';
import { joinSlots, stageSlot } from '../dsl/program.ts';

/** `rec` itself for a single recurrence; a forward-only program fused into one step. */
export function fuseForward(rec: Recurrence, b: NodeBuilder, what = 'stepping one t at a time', modelName = rec.name): Recurrence {
  const program = rec.program;
  if (!program) return rec;
  if (program.stages.some((s) => s.reverse)) {
    throw new UnfoldError(`model "${modelName}" has a bidirectional layer: its reverse scan reads the whole sequence before its first output, so ${what} is impossible; use a unidirectional model`);
  }
  const outs: Node[][] = [];
  const next: Node[][] = rec.state.map(() => []);
  program.stages.forEach((stage, j) => {
    const r = stage.rec;
    const subst = new Map<Node, Node>();
    r.state.forEach((s, i) => subst.set(s.node, stageSlot(b, rec.state[i]!.node, stage, s.node.shape)));
    r.input.forEach((x, i) => {
      const src = stage.sources[i]!;
      subst.set(x.node, 'data' in src ? rec.input[src.data]!.node : outs[src.stage]![src.output]!);
    });
    if (r.valid && rec.valid) subst.set(r.valid, rec.valid);
    const mapped = substitute(b.ctx, topoOrder([...r.next, ...r.outputs.map((o) => o.node)]), subst);
    r.next.forEach((n, i) => next[i]!.push(mapped.get(n)!));
    outs[j] = r.outputs.map((o) => mapped.get(o.node)!);
  });
  const last = program.stages[program.stages.length - 1]!;
  const lastOuts = outs[program.stages.length - 1]!;
  const { program: _, ...plain } = rec;
  return {
    ...plain,
    next: next.map((parts) => joinSlots(b, parts)),
    outputs: rec.outputs.map((o, k) => ({ name: o.name, node: lastOuts[k]! })).slice(0, last.layerOutput),
  };
}
