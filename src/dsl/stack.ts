// Stacks of scans: cells composed into stacked and bidirectional layers with a head applied at every
// step. Each layer and direction is one scan (its cell's step run over the whole sequence, forward
// or in reverse), layer k reading layer k − 1's per-step outputs. A stack is still a Recurrence at
// its boundary (data inputs, parameters, states shaped [L·D, ...], per-step outputs), so data,
// training and checkpoints treat it like any model; what runs it over time is the graph of scans
// its `stack.run` builds (src/dsl/sequence.ts asks for it), the one place its layers are read.
import { UnfoldError } from '../ir/errors.ts';
import { substitute, topoOrder } from '../ir/graph.ts';
import type { Node } from '../ir/node.ts';
import { sameShape, shapeToString } from '../ir/tensor.ts';
import { dslBuilder } from './context.ts';
import { concat, dropout, isDropoutMask } from './ops.ts';
import { userOrigin } from './origin.ts';
import type { Named, Recurrence, SequenceScans, StackIO } from './recurrence.ts';

/** Where a scan's input x(t) comes from: the stack's input (by index), or an earlier scan's output at the same t. */
type Source = { readonly data: number } | { readonly stage: number; readonly output: number };

/** One scan of a stack: a cell's step over the whole sequence, forward or from each row's last valid step back to t = 1. */
interface Stage {
  /** The step; its inputs are bound by `sources`, its states are slot `slot` of the stack's states. */
  readonly rec: Recurrence;
  readonly reverse: boolean;
  readonly layer: number;
  /** Index into the leading [L·D] axis of every stack state: layer · D + direction (PyTorch's order). */
  readonly slot: number;
  /** Aligned with rec.input. */
  readonly sources: readonly Source[];
  /** Index of the scan's layer output ([B, H] per step) in rec.outputs; the last scan's other outputs are the stack's. */
  readonly layerOutput: number;
}

/** A layer: a cell run forward, or a bidirectional pair (the second cell runs in reverse). */
export interface Layer {
  readonly forward: Recurrence;
  readonly reverse?: Recurrence;
}

/**
 * A bidirectional layer: `forward` runs t = 1 … T, `reverse` runs from each row's last valid step
 * back to t = 1; the layer's output at t is the concatenation [forward(t), reverse(t)].
 * The two cells need their own parameters (PyTorch names the second set `…_reverse`).
 * @example bidirectional(myCell('l0'), myCell('l0_reverse'))
 */
export function bidirectional(forward: Recurrence, reverse: Recurrence): Layer {
  return { forward, reverse };
}

export interface StackDef {
  readonly name?: string;
  /** Bottom to top. Layer k > 0 has one input, of size D·H of the layer below. */
  readonly layers: readonly (Recurrence | Layer)[];
  /**
   * nn.LSTM's `dropout`: while training, dropout(p) on each layer's output but the last's (one mask
   * per layer output, read by both directions of the layer above). Default 0.
   */
  readonly dropout?: number;
  /**
   * Applied at every step to the top layer's output [B, D·H] (both directions concatenated); its
   * outputs are the stack's. Without a head, the stack's one output is `h`, the top layer's output.
   */
  readonly head?: {
    readonly params: Record<string, Node> | readonly Node[];
    readonly output: (top: Node) => Record<string, Node>;
  };
}

/** A cell's per-step output: its first output, else its first state. */
function layerOutputOf(rec: Recurrence): Node {
  return rec.outputs[0]?.node ?? rec.next[0]!;
}

const isRecurrence = (x: unknown): x is Recurrence =>
  typeof x === 'object' && x !== null && Array.isArray((x as Recurrence).next) && Array.isArray((x as Recurrence).state);

/**
 * Stacks layers into one recurrence run as scans (nn.LSTM(num_layers = L, bidirectional = …) when the layers are
 * the built-in cells): layer k reads the per-step output of layer k − 1, and the head reads the top.
 * @example
 * const net = stack({ layers: [bidirectional(cell('l0'), cell('l0_reverse')), cell('l1')],
 *   head: { params: [V, c], output: (h) => ({ o: add(matmul(h, transpose(V)), c) }) } });
 */
export function stack(def: StackDef): Recurrence {
  const origin = userOrigin();
  const at = (msg: string): never => {
    throw new UnfoldError(`${origin ? origin + ': ' : ''}stack: ${msg}`);
  };
  if (!Array.isArray(def.layers) || def.layers.length === 0) at('needs at least one layer');
  const layers: Layer[] = def.layers.map((l, k) => {
    if (isRecurrence(l)) return { forward: l };
    if (typeof l === 'object' && l !== null && isRecurrence((l as Layer).forward) && ((l as Layer).reverse === undefined || isRecurrence((l as Layer).reverse))) return l as Layer;
    return at(`layer ${k} is neither a recurrence nor bidirectional(forward, reverse)`);
  });
  const directions = layers[0]!.reverse ? 2 : 1;
  layers.forEach((l, k) => {
    if ((l.reverse ? 2 : 1) !== directions) at(`layer ${k} is ${l.reverse ? 'bidirectional' : 'unidirectional'} but layer 0 is not; every layer has the same directions (as nn.RNN's bidirectional)`);
  });
  const b = dslBuilder();
  const first = layers[0]!.forward;
  const B = first.state[0]!.node.shape[0]!;
  const template = first.state;
  const L = layers.length, D = directions;
  // The stack's data inputs: the first layer's, then the dropout masks (training only): one per layer
  // output dropped, and those the cells draw themselves. A stage reads each by its index here.
  const stackInputs: Named[] = [...first.input];
  const stackIndex = (x: Named): number => {
    const i = stackInputs.findIndex((n) => n.node === x.node);
    return i >= 0 ? i : stackInputs.push(x) - 1;
  };

  // The stack's states: one per cell state, [L·D, ...], every cell's own state being one slot.
  const stackState: Named[] = template.map((s) => ({ name: s.name, node: b.input(s.name, [L * D, ...s.node.shape], { role: 'state' }) }));
  const stages: Stage[] = [];
  let below: number[] = []; // stages of the layer below, in direction order
  layers.forEach((layer, k) => {
    const cells = layer.reverse ? [layer.forward, layer.reverse] : [layer.forward];
    const current: number[] = [];
    cells.forEach((cellRec, d) => {
      const where = `layer ${k}${d ? ' (reverse)' : ''}`;
      if (cellRec.valid) at(`${where}: lengths are applied to the whole stack, not to one layer`);
      if (cellRec.state.length !== template.length || cellRec.state.some((s, i) => s.name !== template[i]!.name || !sameShape(s.node.shape, template[i]!.node.shape))) {
        at(`${where} has states ${describe(cellRec.state)}, layer 0 has ${describe(template)}; stacked layers share state names and shapes (h0 is [L·D, ...] over them)`);
      }
      let rec = cellRec;
      let sources: Source[];
      // The cell's own dropout masks (dropout(x, p) in its step, while training) are stack inputs too.
      const masks = cellRec.input.filter((x) => isDropoutMask(x.node));
      const data = cellRec.input.filter((x) => !isDropoutMask(x.node));
      if (k === 0) {
        const firstData = first.input.filter((x) => !isDropoutMask(x.node));
        if (d === 1 && (data.length !== firstData.length || data.some((x, i) => x.node !== firstData[i]!.node))) {
          at(`${where} reads inputs ${describe(data)}, the forward cell ${describe(firstData)}; both directions read the same data`);
        }
        sources = cellRec.input.map((x) => ({ data: stackIndex(x) }));
      } else {
        if (data.length !== 1) at(`${where} has ${data.length} inputs; a layer above the first reads one, the output of the layer below`);
        const x = data[0]!;
        const parts = below.map((j) => {
          const st = stages[j]!;
          return { stage: j, node: b.input(`h_${stageSuffix(st)}`, st.rec.outputs[st.layerOutput]!.node.shape, { role: 'input' }) };
        });
        const width = parts.reduce((n, p) => n + p.node.shape[1]!, 0);
        if (x.node.shape.length !== 2 || x.node.shape[0] !== B || x.node.shape[1] !== width) {
          at(`${where} input "${x.name}" has shape ${shapeToString(x.node.shape)}, but layer ${k - 1} outputs [${B}, ${width}] per step${D === 2 ? ' (both directions)' : ''}`);
        }
        const joined = parts.length === 1 ? parts[0]!.node : concat(parts.map((p) => p.node), 1);
        // Both directions draw the same mask (one name, so one interned node): it is the layer output that is dropped.
        const dropped = dropout(joined, def.dropout ?? 0, `dropout_l${k - 1}`);
        const mask = dropped.inputs.find(isDropoutMask);
        const partInputs = parts.map((p) => ({ name: String(p.node.attrs['name']), node: p.node }));
        sources = parts.map((p) => ({ stage: p.stage, output: stages[p.stage]!.layerOutput }));
        for (const m of [...(mask ? [{ name: String(mask.attrs['name']), node: mask }] : []), ...masks]) {
          partInputs.push(m);
          sources.push({ data: stackIndex(m) });
        }
        rec = rebind(cellRec, new Map([[x.node, dropped]]), partInputs);
      }
      const name = `${cellRec.name}_l${k}${d ? '_reverse' : ''}`;
      const out = layerOutputOf(rec);
      if (out.shape.length !== 2 || out.shape[0] !== B) at(`${where}: its per-step output has shape ${shapeToString(out.shape)}; a layer outputs [${B}, H]`);
      stages.push({ rec: { ...rec, name, outputs: [{ name: 'h', node: out }] }, reverse: d === 1, layer: k, slot: k * D + d, sources, layerOutput: 0 });
      current.push(stages.length - 1);
    });
    below = current;
  });

  // The head joins the last stage: it reads that stage's own output and, for a bidirectional top,
  // the forward top's output at the same t (an input of the last stage).
  const last = stages[stages.length - 1]!;
  const topParts = below.map((j) => (j === stages.length - 1 ? layerOutputOf(last.rec) : b.input(`h_${stageSuffix(stages[j]!)}`, stages[j]!.rec.outputs[0]!.node.shape, { role: 'input' })));
  const top = topParts.length === 1 ? topParts[0]! : concat(topParts, 1);
  const extraInputs = below.filter((j) => j !== stages.length - 1).map((j, i) => ({ j, node: topParts[i]! }));
  let headOutputs: Named[] = [{ name: 'h', node: top }];
  let headParams: Named[] = [];
  if (def.head) {
    if (typeof def.head.output !== 'function') at('head.output must be a function (top) => outputs');
    const placeholder = b.input('top', top.shape, { role: 'input' });
    const outs = def.head.output(placeholder);
    if (typeof outs !== 'object' || outs === null) at('head.output must return an object of tensors');
    headParams = (Array.isArray(def.head.params) ? def.head.params : Object.values(def.head.params as Record<string, Node>)).map((p: Node, i: number) => {
      if (typeof p !== 'object' || p === null || p.op !== 'param') return at(`head params entry ${i + 1} is not made by param()`);
      return { name: String(p.attrs['name']), node: p };
    });
    const entries = Object.entries(outs);
    if (entries.length === 0) at('head.output returns no outputs');
    const order = topoOrder(entries.map(([, n]) => n));
    const declared = new Set([placeholder, ...headParams.map((p) => p.node)]);
    for (const leaf of order.filter((n) => n.inputs.length === 0)) {
      if (leaf.op !== 'const' && !declared.has(leaf)) at(`head reads ${leaf.op} "${String(leaf.attrs['name'])}", which is neither its input nor in head.params`);
    }
    const mapped = substitute(b.ctx, order, new Map([[placeholder, top]]));
    headOutputs = entries.map(([name, n]) => ({ name, node: mapped.get(n)! }));
    if (headOutputs.some((o) => o.node.shape[0] !== B || o.node.shape.length < 2)) at(`head outputs must be batch-first [${B}, ...] per step`);
  }
  stages[stages.length - 1] = {
    ...last,
    rec: {
      ...last.rec,
      input: [...last.rec.input, ...extraInputs.map(({ node }) => ({ name: String(node.attrs['name']), node }))],
      params: [...last.rec.params, ...headParams],
      outputs: [...headOutputs, { name: 'h.layer', node: layerOutputOf(last.rec) }],
    },
    sources: [...last.sources, ...extraInputs.map(({ j }) => ({ stage: j, output: stages[j]!.layerOutput }))],
    layerOutput: headOutputs.length,
  };

  const params: Named[] = [];
  const seen = new Map<string, Node>();
  for (const p of stages.flatMap((s) => s.rec.params)) {
    const other = seen.get(p.name);
    if (other === p.node) continue;
    if (other) at(`two parameters are named "${p.name}"; name each layer's parameters apart (PyTorch: weight_ih_l0, weight_ih_l1, …_reverse)`);
    seen.set(p.name, p.node);
    params.push(p);
  }
  const reached = new Set(topoOrder(stages.flatMap((st) => [...st.rec.next, ...st.rec.outputs.map((o) => o.node)])));
  return {
    name: def.name ?? first.name,
    origin,
    state: stackState,
    input: stackInputs,
    params,
    next: [],
    outputs: headOutputs,
    stack: {
      layers: L, directions: D, scans: stages.length, names: stages.map(stageSuffix),
      unused: params.filter((p) => !reached.has(p.node)).map((p) => p.name),
      run: (io) => runStages(stages, stackInputs, headOutputs.length, io),
    },
  };
}

/**
 * The stack's scans over whole sequences: each stage one scan, its inputs the stack's data or the
 * per-step outputs of earlier stages, its states slot `stage.slot` of the stack's; the stack's
 * outputs are the last scan's, its top layer's outputs (both directions) side by side what a head reads.
 */
function runStages(stages: readonly Stage[], inputs: readonly Named[], outputs: number, io: StackIO): SequenceScans {
  const b = dslBuilder();
  const ys: (readonly Node[])[] = [];
  const finals: Node[][] = io.initial.map(() => []);
  stages.forEach((stage, j) => {
    const xs = stage.rec.input.map((_, i) => {
      const src = stage.sources[i]!;
      return 'data' in src ? io.sequenceOf(inputs[src.data]!) : ys[src.stage]![src.output]!;
    });
    const init = io.initial.map((s0) => b.reshape(b.slice(s0, 0, stage.slot, stage.slot + 1), s0.shape.slice(1)));
    const r = io.scanStep(stage.rec, xs, init, stage.reverse);
    ys[j] = r.ys;
    r.final.forEach((f, i) => finals[i]!.push(f));
  });
  const last = stages[stages.length - 1]!;
  const top = topStages(stages).map(({ stage, index }) => ys[index]![stage.layerOutput]!);
  const slots = (parts: readonly Node[]) => parts.map((p) => b.reshape(p, [1, ...p.shape]));
  return {
    outputs: last.rec.outputs.slice(0, outputs).map((o, i) => ({ name: o.name, node: ys[stages.length - 1]![i]! })),
    hidden: top.length === 1 ? top[0]! : b.concat(top, 2),
    final: finals.map((parts) => (parts.length === 1 ? slots(parts)[0]! : b.concat(slots(parts), 0))),
  };
}

/** `l0`, `l1_reverse`: PyTorch's suffix for a stage's parameters and outputs. */
function stageSuffix(s: Stage): string {
  return `l${s.layer}${s.reverse ? '_reverse' : ''}`;
}

function describe(ns: readonly Named[]): string {
  return ns.length ? ns.map((n) => `${n.name} ${shapeToString(n.node.shape)}`).join(', ') : 'none';
}

/** `rec` with some placeholders replaced (its inputs replaced by `input`). */
function rebind(rec: Recurrence, subst: ReadonlyMap<Node, Node>, input: readonly Named[]): Recurrence {
  const roots = [...rec.next, ...rec.outputs.map((o) => o.node)];
  const mapped = substitute(dslBuilder().ctx, topoOrder(roots), subst);
  return {
    ...rec,
    input,
    next: rec.next.map((n) => mapped.get(n)!),
    outputs: rec.outputs.map((o) => ({ name: o.name, node: mapped.get(o.node)! })),
  };
}

/** The top layer's stages, one per direction, with their index: their layer outputs side by side are what the head reads. */
function topStages(stages: readonly Stage[]): { readonly stage: Stage; readonly index: number }[] {
  const top = stages[stages.length - 1]!.layer;
  return stages.flatMap((stage, index) => (stage.layer === top ? [{ stage, index }] : []));
}
