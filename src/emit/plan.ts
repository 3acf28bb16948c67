// The memory plan of emitted kernels: one arena, pinned regions (parameters, inputs, outputs,
// constants) and a temporaries region reused by liveness (first fit). Element-wise values with a
// single element-wise consumer are fused into it (no buffer, no loop of their own).
import { makeGraph, topoOrder, type Graph } from '../ir/graph.ts';
import type { Init } from '../dsl/recurrence.ts';
import type { Context } from '../ir/node.ts';
import { runPasses, type Pass } from '../passes/pass.ts';
import { constantFold } from '../passes/constant-fold.ts';
import { simplify } from '../passes/simplify.ts';
import { weightLayout } from '../passes/weight-layout.ts';
import { mergeScans } from '../passes/merge-scans.ts';
import type { Node } from '../ir/node.ts';
import { sizeOf } from '../ir/tensor.ts';
import { pushTo } from '../ir/multimap.ts';
import { fillValue } from '../prims/builder.ts';
import { numberLiteral } from '../prims/kit.ts';
import { isElementwiseOp, primOf } from '../prims/index.ts';
import { matmulDims } from '../prims/matmul.ts';
import type { Offset, ProductShape, TargetKernels } from '../prims/types.ts';

export { numberLiteral } from '../prims/kit.ts';

/** A parameter's init as the emitted PARAMS table writes it (every number read back exactly). */
export function initLiteral(init: Init): string {
  return init.kind === 'uniform' ? `{ kind: 'uniform', bound: ${numberLiteral(init.bound)} }`
    : init.kind === 'fill' ? `{ kind: 'fill', value: ${numberLiteral(init.value)} }`
    : `{ kind: 'values', data: [${init.data.map(numberLiteral).join(', ')}] }`;
}

/**
 * Whether the fused chain rooted at `n` is plain arithmetic (the bias adds). Only such chains
 * become a product's epilogue. With the activation in it too, every store of the blocked product
 * evaluates it (12 copies of tanh32 instead of one loop): measured 2% slower on the seed step and
 * 4% on medium, LSTM unchanged; so the activation keeps its own loop over the finished values.
 */
function arithmeticChain(n: Node, fused: ReadonlySet<Node>): boolean {
  if (!ARITHMETIC.has(n.op)) return false;
  return n.inputs.every((x) => !fused.has(x) || arithmeticChain(x, fused));
}
const ARITHMETIC = new Set(['add', 'sub', 'mul', 'neg']);

export function isElementwise(n: Node): boolean {
  return isElementwiseOp(n.op);
}

/** Grows an arena region by region; offsets are element indices. */
export class ArenaBuilder {
  size = 0;
  reserve(n: number): number {
    const off = this.size;
    this.size += n;
    return off;
  }
}

/** First-fit allocation over a free list, coalescing on release. */
class FreeList {
  private free: { off: number; size: number }[] = [];
  top = 0;
  alloc(size: number): number {
    const i = this.free.findIndex((b) => b.size >= size);
    if (i < 0) {
      const off = this.top;
      this.top += size;
      return off;
    }
    const b = this.free[i]!;
    const off = b.off;
    if (b.size === size) this.free.splice(i, 1);
    else this.free[i] = { off: b.off + size, size: b.size - size };
    return off;
  }
  release(off: number, size: number): void {
    this.free.push({ off, size });
    this.free.sort((a, b) => a.off - b.off);
    const merged: { off: number; size: number }[] = [];
    for (const b of this.free) {
      const last = merged[merged.length - 1];
      if (last && last.off + last.size === b.off) last.size += b.size;
      else merged.push({ ...b });
    }
    this.free = merged;
  }
}

export interface KernelPlan {
  /** Nodes that get a statement, in order. */
  readonly order: readonly Node[];
  /** Where each materialized value lives (an expression for per-step slots inside a loop). */
  readonly offsets: ReadonlyMap<Node, Offset>;
  /** Scalar fills read as literals: their value. */
  readonly literals: ReadonlyMap<Node, number>;
  /** Element-wise values fused into their one consumer. */
  readonly fused: ReadonlySet<Node>;
  /**
   * Matrix products computed inside the statement of the element-wise chain that reads them (the
   * chain's root → the product): each element is finished in a register and stored once, e.g.
   * z = x Uᵀ + b + h Wᵀ as one loop nest. The product gets no buffer and no statement.
   */
  readonly epilogues: ReadonlyMap<Node, Node>;
  /** Transposes read only by matrix products, which index their input instead (never materialized). */
  readonly views: ReadonlySet<Node>;
  /** Reshapes, and slices of one block, that read their input's buffer where it is (the root of a chain of them). */
  readonly aliases: ReadonlyMap<Node, Node>;
  /** How far into its root's buffer an alias starts, where not at 0 (a slice). */
  readonly aliasOffsets: ReadonlyMap<Node, number>;
  /** For a transpose whose source has a buffer: that source (products read it with swapped indices). */
  readonly transposedSource: ReadonlyMap<Node, Node>;
  /** Elements of the temporaries region this kernel needs (from `tempBase`). */
  readonly tempSize: number;
  /** Outputs added into their slot rather than written (gradient accumulation across steps). */
  readonly accumulate: ReadonlySet<Node>;
  /** Named outputs whose value must be copied into their slot at the end (e.g. a leaf or a fill). */
  readonly copies: readonly { readonly node: Node; readonly to: Offset; readonly accumulate: boolean }[];
  /**
   * A loop body's products that read B from panels (the product → the copy it reads), and the
   * copies, which the loop's emitter makes before the loop (panelStatements): see StepInvariants.
   */
  readonly panels: ReadonlyMap<Node, PanelCopy>;
  readonly panelCopies: readonly PanelCopy[];
}

/**
 * What a loop body's plan knows of the loop around it: the pinned operands that hold the same
 * values at every step (parameters, values computed before the loop such as weight-layout's
 * transposed copy, a scan's consts), and the target's kernels, which may read a product's B among
 * them from panels copied once before the loop (TargetKernels.panelElements) — after every
 * optimizer step, since the loop's emitter makes the copies each time before it runs the loop.
 */
export interface StepInvariants {
  readonly nodes: ReadonlySet<Node>;
  readonly kernels: TargetKernels | undefined;
}

/** B of a product (`operand`, the product's second input) copied into panels of the temporaries region at `off` (a multiple of 4). */
export interface PanelCopy {
  readonly operand: Node;
  /** How the copy's products read it (k, n and transB are the copy's; m, transA those of its first product). */
  readonly shape: ProductShape;
  readonly off: number;
}

/** An element offset in the arena: a number, or an expression such as `p3` (a loop's per-step base). */
export type { Offset } from '../prims/types.ts';

/**
 * Plans one kernel. `pinned` gives fixed offsets (parameters, inputs, constants and the slots of
 * named outputs); every other value goes to the temporaries region at `tempBase`.
 * `outputSlots` maps each named output to its slot: a computed node is written there directly.
 */
export interface OutputSlot {
  readonly node: Node;
  readonly slot: Offset;
  /** Add the value into the slot instead of writing it (honoured when the node can do so safely). */
  readonly accumulate?: boolean;
}

/** Where a slice's elements start in its input, when they are one block of it (every axis before the cut of extent 1). */
function blockOffset(n: Node): number | undefined {
  const x = n.inputs[0]!.shape, axis = n.attrs['axis'] as number, start = n.attrs['start'] as number;
  if (sizeOf(x.slice(0, axis)) !== 1) return undefined;
  return start * sizeOf(x.slice(axis + 1));
}

/** What a chain of reshapes reads (undefined for a node that is no reshape). */
function reshapeSource(n: Node): Node | undefined {
  if (n.op !== 'reshape') return undefined;
  let src = n.inputs[0]!;
  while (src.op === 'reshape') src = src.inputs[0]!;
  return src;
}

export function planKernel(g: Graph, pinned: ReadonlyMap<Node, Offset>, outputSlots: readonly OutputSlot[], tempBase: number, invariants?: StepInvariants): KernelPlan {
  // What the outputs need, inputs first, not looking behind pinned nodes (computed elsewhere).
  const all = topoOrder(g.outputs.map((o) => o.node), (n) => pinned.has(n));
  const offsets = new Map<Node, Offset>(pinned);
  const literals = new Map<Node, number>();
  const copies: { node: Node; to: Offset; accumulate: boolean }[] = [];
  const outputNodes = new Set<Node>();
  const accumulate = new Set<Node>();
  const users = new Map<Node, Node[]>();
  for (const n of all) for (const x of n.inputs) pushTo(users, x, n);
  const outputCount = new Map<Node, number>();
  for (const { node } of outputSlots) outputCount.set(node, (outputCount.get(node) ?? 0) + 1);
  // A reshape keeps the row-major data: it reads its input's buffer (an alias), never copies.
  const aliases = new Map<Node, Node>();
  for (const { node, slot, accumulate: acc } of outputSlots) {
    // An output that reshapes a value computed here (a scan's residual stored as one row per step)
    // has that value computed into its slot, rather than into a temporary and copied.
    const src = acc ? undefined : reshapeSource(node);
    if (src && !offsets.has(src) && src.inputs.length > 0 && fillValue(src) === undefined && !outputCount.has(src)) {
      offsets.set(src, slot);
      aliases.set(node, src);
      outputNodes.add(node).add(src);
      continue;
    }
    const f = fillValue(node);
    const e = primOf(node.op)?.emit;
    // Accumulate in place only when nothing else reads the value (the slot holds a running sum).
    const inPlace = acc && outputCount.get(node) === 1 && !users.has(node) && (e?.kind === 'elementwise' || (e?.kind === 'statements' && e.accumulates === true));
    if (node.inputs.length === 0 || f !== undefined || offsets.has(node) || (acc && !inPlace)) copies.push({ node, to: slot, accumulate: acc ?? false });
    else {
      offsets.set(node, slot);
      if (inPlace) accumulate.add(node);
    }
    outputNodes.add(node);
  }

  for (const n of all) {
    const f = fillValue(n);
    if (f !== undefined && !offsets.has(n)) literals.set(n, f);
  }
  const fused = new Set<Node>();
  for (const n of all) {
    if (!isElementwise(n) || offsets.has(n) || outputNodes.has(n) || literals.has(n)) continue;
    const us = users.get(n) ?? [];
    // Fused only into a single element-wise reader of the same extent (read once per element).
    if (us.length === 1 && isElementwise(us[0]!) && us[0]!.inputs.filter((x) => x === n).length === 1 && sizeOf(us[0]!.shape) === sizeOf(n.shape)) {
      fused.add(n);
    }
  }
  // A product read once by an element-wise chain is finished in that chain's statement (its
  // epilogue): the chain's root must cover exactly the product's elements. One product per chain,
  // the one with the longest dot products (the others keep their buffers).
  const epilogues = new Map<Node, Node>();
  for (const n of all) {
    if (n.op !== 'matmul' || offsets.has(n) || outputNodes.has(n)) continue;
    const [, k] = matmulDims(n.inputs[0]!.shape, n.inputs[1]!.shape);
    const us = users.get(n) ?? [];
    if (k < 2 || us.length !== 1 || !isElementwise(us[0]!) || us[0]!.inputs.filter((x) => x === n).length !== 1) continue;
    let root = us[0]!;
    while (fused.has(root)) root = users.get(root)![0]!;
    if (sizeOf(root.shape) !== sizeOf(n.shape) || !arithmeticChain(root, fused)) continue;
    const held = epilogues.get(root);
    if (held && matmulDims(held.inputs[0]!.shape, held.inputs[1]!.shape)[1] >= k) continue;
    epilogues.set(root, n);
  }
  const inEpilogue = new Set(epilogues.values());

  // So does a slice of one block of its input (its axes before the cut all 1: a scan's results
  // sliced from its flat tuple), which reads it `aliasOffsets` elements in.
  const aliasOffsets = new Map<Node, number>();
  for (const n of all) {
    const src = n.inputs[0];
    if (!src || offsets.has(n) || outputNodes.has(n) || fused.has(src)) continue;
    const delta = n.op === 'reshape' ? 0 : n.op === 'slice' ? blockOffset(n) : undefined;
    if (delta === undefined) continue;
    aliases.set(n, aliases.get(src) ?? src);
    const at = (aliasOffsets.get(src) ?? 0) + delta;
    if (at) aliasOffsets.set(n, at);
  }

  // Products read a transposed operand through its source with swapped indices, when the source
  // has a buffer here; a transpose read only by products is then never materialized (a view).
  const available = new Set(all);
  const transposedSource = new Map<Node, Node>();
  for (const n of all) {
    const src = n.inputs[0];
    if (n.op === 'transpose' && src && !literals.has(src) && !fused.has(src) && (pinned.has(src) || available.has(src))) transposedSource.set(n, src);
  }
  const views = new Set<Node>();
  for (const [n] of transposedSource) {
    if (offsets.has(n) || outputNodes.has(n)) continue;
    const us = users.get(n) ?? [];
    if (us.length > 0 && us.every((u) => u.op === 'matmul')) views.add(n);
  }
  const order = all.filter((n) => n.op !== 'param' && n.op !== 'input' && !pinned.has(n) && !literals.has(n) && !fused.has(n) && !views.has(n) && !aliases.has(n) && !inEpilogue.has(n));

  // Which materialized buffers each statement reads (through fused inputs and epilogue products).
  const reads = (n: Node, acc: Node[] = []): Node[] => {
    for (const input of n.inputs) {
      const seen = n.op === 'matmul' ? transposedSource.get(input) : undefined;
      const x = aliases.get(seen ?? input) ?? seen ?? input;
      if (fused.has(x) || inEpilogue.has(x)) reads(x, acc);
      else if (!literals.has(x)) acc.push(x);
    }
    return acc;
  };
  const readsOf = order.map((n) => [...new Set(reads(n))]);
  const lastUse = new Map<Node, number>();
  readsOf.forEach((xs, i) => {
    for (const x of xs) lastUse.set(x, i);
  });
  for (const c of copies) lastUse.set(c.node, order.length);

  const temps = new FreeList();
  const { panels, panelCopies } = planPanels();
  order.forEach((n, i) => {
    if (!offsets.has(n)) offsets.set(n, tempBase + temps.alloc(sizeOf(n.shape)));
    // Release inputs after allocating the output: kernels like matmul must not write over what they read.
    for (const x of readsOf[i]!) {
      if (lastUse.get(x) === i && !pinned.has(x) && !outputNodes.has(x)) temps.release((offsets.get(x) as number) - tempBase, sizeOf(x.shape));
    }
    if (!lastUse.has(n) && !outputNodes.has(n)) temps.release((offsets.get(n) as number) - tempBase, sizeOf(n.shape));
  });
  return { order, offsets, literals, fused, epilogues, views, aliases, aliasOffsets, transposedSource, accumulate, tempSize: temps.top, copies, panels, panelCopies };

  /** The node whose buffer a product's operand `x` reads, and whether transposed (as kernel.ts's operandOf resolves it). */
  function held(x: Node, transposed = false): { node: Node; transposed: boolean } {
    const src = transposedSource.get(x);
    let n = src ?? x, t = src ? !transposed : transposed;
    for (;;) {
      const a = aliases.get(n);
      if (a) n = a;
      else if (views.has(n)) return held(n, t);
      else return { node: n, transposed: t };
    }
  }

  /**
   * Panels for the products of a loop body whose B holds still over the loop, where the target
   * takes them: one copy per B operand, at the start of the temporaries region (live throughout the
   * body: never released). A product computed by TypeScript loops (an operand that is a fill, an
   * epilogue added into its output) reads B where it lives.
   */
  function planPanels(): { panels: Map<Node, PanelCopy>; panelCopies: PanelCopy[] } {
    const panels = new Map<Node, PanelCopy>(), byOperand = new Map<Node, PanelCopy>();
    const kernels = invariants?.kernels;
    if (!kernels) return { panels, panelCopies: [] };
    const wanted: { product: Node; shape: ProductShape; size: number }[] = [];
    const accumulatedChain = new Set([...epilogues].flatMap(([root, p]) => (accumulate.has(root) ? [p] : [])));
    const emitted = new Set([...order, ...inEpilogue]);
    for (const n of all) {
      if (n.op !== 'matmul' || !emitted.has(n) || accumulatedChain.has(n)) continue;
      const a = held(n.inputs[0]!), bh = held(n.inputs[1]!);
      if (literals.has(a.node) || literals.has(bh.node) || !invariants.nodes.has(bh.node)) continue;
      const [m, k, nn] = matmulDims(n.inputs[0]!.shape, n.inputs[1]!.shape);
      const shape: ProductShape = { m, k, n: nn, transA: a.transposed, transB: bh.transposed, accumulate: false };
      const size = kernels.panelElements(shape);
      if (size > 0) wanted.push({ product: n, shape, size });
    }
    if (wanted.length === 0) return { panels, panelCopies: [] };
    const first = new Map<Node, (typeof wanted)[number]>();
    for (const w of wanted) if (!first.has(w.product.inputs[1]!)) first.set(w.product.inputs[1]!, w);
    // One block, its start rounded up to a multiple of 4 elements (the panels are read as aligned f32x4).
    const total = [...first.values()].reduce((acc, w) => acc + Math.ceil(w.size / 4) * 4, 0);
    let at = tempBase + temps.alloc(total + 3);
    at = Math.ceil(at / 4) * 4;
    const panelCopies: PanelCopy[] = [];
    for (const [operand, w] of first) {
      const c: PanelCopy = { operand, shape: w.shape, off: at };
      at += Math.ceil(w.size / 4) * 4;
      byOperand.set(operand, c);
      panelCopies.push(c);
    }
    for (const w of wanted) panels.set(w.product, byOperand.get(w.product.inputs[1]!)!);
    return { panels, panelCopies };
  }
}

/** The emission pipeline: graph-level passes run on every kernel before planning, in this order. */
export const EMIT_PASSES: readonly Pass[] = [simplify, constantFold, weightLayout, mergeScans];

/** Called after each pass with its name and result (`unfold compile --dump-ir-after NAME`). */
export type OnPass = (name: string, graph: Graph) => void;

/**
 * The slots with their nodes after the emission passes, run once over all of them (the passes may
 * rewrite nodes, so slots are matched by position, not identity). `names` label the IR dumps.
 */
export function afterPasses<S extends { readonly node: Node }>(slots: readonly S[], ctx: Context, onPass?: OnPass, names?: readonly string[]): S[] {
  const g = runPasses(makeGraph(slots.map((s, i) => ({ name: names?.[i] ?? `s${i}`, node: s.node }))), EMIT_PASSES, { ctx }, onPass);
  return g.outputs.map((o, i) => ({ ...slots[i]!, node: o.node }));
}

/** Plans a kernel that computes each slot's node into its slot (a loop body's: given its step invariants). */
export function planOutputs(slots: readonly OutputSlot[], pinned: ReadonlyMap<Node, Offset>, tempBase: number, invariants?: StepInvariants): KernelPlan {
  return planKernel(makeGraph(slots.map((s, i) => ({ name: `s${i}`, node: s.node }))), pinned, slots, tempBase, invariants);
}
