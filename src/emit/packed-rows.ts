// Packed execution under lengths: with the batch rows ordered by length, longest first (the trainer
// permutes them at run time), the rows still running at step t are a prefix of the batch. A loop
// body is emitted once per row count r of a few classes (rowClasses), its statements over the first
// r ≥ n_t rows only: a product with m = r (or, summing over rows, k = r), an element-wise chain
// over r·w elements. Rows past r are finished at step t (their mask is 0), and what the masked form
// computes for them is known without computing it: a where on the mask takes its other operand, a
// value that is zero there (a cotangent that passed through the mask) contributes nothing to a sum
// over rows. So a statement either stops at r rows, or completes its rows past r from that
// knowledge (a tail: a copy, a zero fill, or a cheaper chain), and only where nothing is known does
// it run over all B rows as today. The rows up to r compute exactly what the masked form computes.
import type { Node } from '../ir/node.ts';
import { sizeOf, type Shape } from '../ir/tensor.ts';
import { fillValue } from '../prims/builder.ts';
import { isElementwiseOp, prims } from '../prims/index.ts';
import { intAttr, intList, offsetPlus } from '../prims/kit.ts';
import type { ElementwiseExpr, Offset, Statement } from '../prims/types.ts';
import { bufOf, type RowView } from './kernel.ts';
import { isElementwise, type KernelPlan } from './plan.ts';
import { ARENA, blockCopy } from './statements.ts';
import type { Seq } from './layout.ts';

/** The product kernels block 4 rows at a time: a class is a multiple of 4 rows. */
const ROW_BLOCK = 4;
/** Each class is one more copy of the loop bodies: at most this many (the step grows with B). */
const MAX_CLASSES = 4;

/** The row classes' step for a batch of B: 4, or a multiple of 4 that keeps the classes to four. */
export function rowStep(B: number): number {
  return ROW_BLOCK * Math.max(1, Math.ceil(B / (ROW_BLOCK * MAX_CLASSES)));
}

/**
 * The row counts a loop body is emitted for, ascending, the last B: multiples of `step` below B.
 * Fewer than two (B ≤ step) means no packing: the body runs over all rows, as without it.
 */
export function rowClasses(B: number, step = rowStep(B)): number[] {
  const out: number[] = [];
  for (let r = step; r < B; r += step) out.push(r);
  out.push(B);
  return out;
}

/** The row class of a step with `live` (an expression) rows still valid: the least class ≥ live. */
export function rowClassOf(B: number, step: number, live: string): string {
  return step === 1 ? `Math.max(1, ${live})` : `Math.min(${B}, Math.max(${step}, Math.ceil(${live} / ${step}) * ${step}))`;
}

/**
 * What is known of every node of a step graph: where its batch axis is (0: rows lead its
 * row-major buffer; 1: a transpose of such a node, read by a product summing over rows; absent: no
 * batch axis, or rows mixed), and whether it is zero on the rows that finished (as the masked form
 * computes it: the mask itself, the loss weights, and what passes through them).
 */
export interface RowFacts {
  readonly B: number;
  readonly axis: ReadonlyMap<Node, 0 | 1>;
  readonly zero: ReadonlySet<Node>;
}

/** The facts of `nodes` (in topological order): `rowLeaves` are batch-first placeholders, `zeroLeaves` zero on finished rows. */
export function rowFacts(nodes: readonly Node[], B: number, rowLeaves: ReadonlySet<Node>, zeroLeaves: ReadonlySet<Node>): RowFacts {
  const axis = new Map<Node, 0 | 1>();
  const zero = new Set<Node>();
  const Z = (x: Node | undefined) => x !== undefined && zero.has(x);
  const A = (x: Node | undefined) => (x === undefined ? undefined : axis.get(x));
  for (const n of nodes) {
    const [x, y] = n.inputs;
    let a: 0 | 1 | undefined;
    let z = false;
    if (n.inputs.length === 0) {
      if (rowLeaves.has(n) && n.shape[0] === B) a = 0;
      z = zeroLeaves.has(n) || fillValue(n) === 0;
    } else if (isElementwise(n)) {
      const axes = n.inputs.map(A);
      a = axes.includes(1) ? undefined : axes.includes(0) ? 0 : undefined;
      z = isElementwiseOp(n.op) && prims[n.op].emit.zeroFrom(n.inputs.map(Z), n.attrs);
    } else {
      switch (n.op) {
        case 'matmul':
          if (A(x) === 0 && A(y) === undefined && x!.shape.length === 2) {
            a = 0;
            z = Z(x);
          }
          break;
        case 'transpose':
          if (A(x) === 0 && x!.shape.length === 2) {
            a = 1;
            z = Z(x);
          }
          break;
        case 'broadcast':
          // `axes` are the output's new axes: rows stay rows when axis 0 is not one of them.
          if (A(x) === 0 && !intList(n.attrs, 'axes').includes(0)) a = 0;
          z = Z(x);
          break;
        case 'reshape':
          if (A(x) === 0 && n.shape[0] === B) a = 0;
          z = Z(x);
          break;
        case 'slice': case 'pad':
          if (A(x) === 0 && intAttr(n.attrs, 'axis') >= 1) a = 0;
          z = Z(x);
          break;
        case 'concat':
          if (n.inputs.every((i) => A(i) === 0) && intAttr(n.attrs, 'axis') >= 1) a = 0;
          z = n.inputs.every(Z);
          break;
        case 'sum':
          if (A(x) === 0 && !intList(n.attrs, 'axes').includes(0)) a = 0;
          z = Z(x);
          break;
        default:
          break;
      }
    }
    if (a !== undefined) axis.set(n, a);
    // Zero on finished rows only means something for a value that has them (or a fill).
    if (z && (a !== undefined || n.inputs.length === 0)) zero.add(n);
  }
  return { B, axis, zero };
}

/**
 * How a statement covers the rows past r: 'packed' it leaves them (nothing reads them), 'split'
 * completes them with its tail chain, 'zeroTail' fills them with zeros, 'full' runs over all B rows.
 * A sum over rows ('contract') that runs packed is complete: the rows it skips add zero.
 */
export type RowMode = 'packed' | 'split' | 'zeroTail' | 'full';
type Kind = 'chain' | 'rows' | 'contract' | 'other';

export interface RowModes {
  readonly modes: ReadonlyMap<Node, RowMode>;
  /** Values bound from outside the plan (a forward residual, in the backward loop) whose rows past r it reads. */
  readonly required: ReadonlySet<Node>;
}

/**
 * The mode of each statement of `plan`: as few rows as every reader allows. `full` are the values
 * whose every row must hold what the masked form holds (stored states and outputs, cotangents that
 * run on); `partial` are values bound from outside that another loop computed over r rows only.
 */
export function rowModes(plan: KernelPlan, facts: RowFacts, full: Iterable<Node>, partial: ReadonlySet<Node>): RowModes {
  const { zero } = facts;
  const modes = new Map<Node, RowMode>();
  const kinds = new Map<Node, Kind>();
  const statements = new Set(plan.order);
  for (const n of plan.order) {
    const kind = kindOf(plan, facts, n);
    kinds.set(n, kind);
    const contractOk = kind === 'contract' && (n.op === 'sum' ? zero.has(n.inputs[0]!) : n.inputs.some((x) => zero.has(x)));
    modes.set(n, kind === 'chain' || kind === 'rows' || contractOk ? 'packed' : 'full');
  }
  const required = new Set<Node>();
  const queue: Node[] = [];
  const set = (n: Node, m: RowMode) => {
    if (modes.get(n) === m) return;
    modes.set(n, m);
    queue.push(n);
  };
  const demand = (x0: Node) => {
    const x = plan.aliases.get(x0) ?? plan.transposedSource.get(x0) ?? x0;
    if (x !== x0) return demand(x);
    if (plan.literals.has(x)) return;
    if (!statements.has(x)) {
      if (partial.has(x)) required.add(x);
      return;
    }
    if (modes.get(x) !== 'packed') return;
    const kind = kinds.get(x)!;
    if (kind === 'chain') set(x, 'split');
    else if (kind === 'rows') set(x, zero.has(x) ? 'zeroTail' : 'full');
    else if (kind === 'contract') return;
    else set(x, 'full');
  };
  for (const n of plan.order) if (modes.get(n) === 'full') queue.push(n);
  for (const n of full) demand(n);
  for (const c of plan.copies) demand(c.node);
  while (queue.length > 0) {
    const n = queue.pop()!;
    const m = modes.get(n)!;
    if (m === 'split') {
      const reads: Node[] = [];
      if (tailExpr(plan, facts, n, 0, reads) === undefined) set(n, 'full');
      else reads.forEach(demand);
    } else if (m === 'full') {
      readsOf(plan, n).forEach(demand);
    }
  }
  return { modes, required };
}

/** What kind of statement `n` is over rows (see RowMode). */
function kindOf(plan: KernelPlan, facts: RowFacts, n: Node): Kind {
  const { axis } = facts;
  const A = (x: Node | undefined) => (x === undefined ? undefined : axis.get(x));
  if (isElementwise(n)) {
    if (A(n) !== 0) return 'other';
    const product = plan.epilogues.get(n);
    return product === undefined || A(product) === 0 ? 'chain' : 'other';
  }
  const [x, y] = n.inputs;
  switch (n.op) {
    case 'matmul':
      if (A(n) === 0) return 'rows';
      // Summing over rows: the transposed operand read through its rows-first source (a transpose
      // with a buffer of its own holds the rows along its columns: no prefix of it is r rows).
      return A(x) === 1 && A(y) === 0 && plan.transposedSource.has(x!) ? 'contract' : 'other';
    case 'sum':
      if (A(x) !== 0) return 'other';
      return intList(n.attrs, 'axes').includes(0) ? 'contract' : 'rows';
    case 'broadcast': case 'reshape': case 'slice': case 'pad': case 'concat':
      return A(n) === 0 ? 'rows' : 'other';
    default:
      return 'other';
  }
}

/** The buffers a statement reads (through the chain fused into it and the product it finishes), as the planner counts them. */
function readsOf(plan: KernelPlan, n: Node, acc: Node[] = []): Node[] {
  const inEpilogue = new Set(plan.epilogues.values());
  for (const input of n.inputs) {
    const seen = n.op === 'matmul' ? plan.transposedSource.get(input) : undefined;
    const x = plan.aliases.get(seen ?? input) ?? seen ?? input;
    if (plan.fused.has(x) || inEpilogue.has(x)) readsOf(plan, x, acc);
    else if (!plan.literals.has(x)) acc.push(x);
  }
  return acc;
}

/**
 * The chain rooted at `root` over the rows from r on: where the mask is known 0 a where takes its
 * other operand, a value known zero there is 0 (and so is a product with it); `reads` collects the
 * buffers it still reads (offsets past r rows). Undefined when it would need the rows past r of a
 * product the chain finishes (that is not zero there).
 */
function tailExpr(plan: KernelPlan, facts: RowFacts, root: Node, r: number, reads: Node[]): ElementwiseExpr | undefined {
  const product = plan.epilogues.get(root);
  let failed = false;
  const isZero = (e: ElementwiseExpr) => 'value' in e && e.value === 0;
  const walk = (x: Node): ElementwiseExpr => {
    if (x === product) {
      if (!facts.zero.has(x)) failed = true;
      return { value: 0 };
    }
    // Zero on finished rows (the whole chain, or a part of it): nothing of it is read there.
    if (facts.zero.has(x)) return { value: 0 };
    if (x !== root && !plan.fused.has(x)) {
      const f = fillValue(x);
      if (plan.literals.has(x) && f !== undefined) return { value: f };
      const buf = bufOf(plan, x);
      if (buf.literal !== undefined) return { value: buf.literal };
      reads.push(x);
      const shift = (r * sizeOf(x.shape)) / facts.B;
      return { read: offsetPlus(buf, shift) };
    }
    // Finished rows: the mask (or what is zero where it is) takes the other operand, bit for bit.
    if (x.op === 'where' && facts.zero.has(x.inputs[0]!)) return walk(x.inputs[2]!);
    const args = x.inputs.map(walk);
    if ((x.op === 'mul' && args.some(isZero)) || (x.op === 'div' && isZero(args[0]!))) return { value: 0 };
    return { op: x.op, args, attrs: x.attrs };
  };
  const e = walk(root);
  return failed ? undefined : e;
}

/** The view emitKernel takes to emit `plan` over r of its B rows (modes from rowModes). */
export function rowView(plan: KernelPlan, facts: RowFacts, modes: RowModes, r: number): RowView {
  const { B, axis } = facts;
  const cut = (x: Node): Shape => {
    const a = axis.get(x);
    if (a === 0) return [r, ...x.shape.slice(1)];
    if (a === 1) return [x.shape[0]!, r];
    return x.shape;
  };
  return {
    shapesIn: (n) => (modes.modes.get(n) === 'full' ? undefined : cut),
    after: (n) => {
      const mode = modes.modes.get(n);
      if (mode !== 'split' && mode !== 'zeroTail') return [];
      const out = bufOf(plan, n);
      const width = sizeOf(n.shape) / B;
      const size = (B - r) * width;
      const from = offsetPlus(out, r * width);
      const accumulate = plan.accumulate.has(n);
      const expr = mode === 'zeroTail' ? { value: 0 } : tailExpr(plan, facts, n, r, []);
      if (expr === undefined) throw new Error('emit: a split statement without a tail');
      return tail(expr, size, from, accumulate);
    },
  };
}

/** out[i] (+)= expr over `size` elements from `from`: a fill, a copy, or the chain (nothing to add a zero). */
function tail(expr: ElementwiseExpr, size: number, from: Offset, accumulate: boolean): Statement[] {
  const out = { arr: ARENA, off: from };
  if ('value' in expr && accumulate && expr.value === 0) return [];
  return ['value' in expr && !accumulate ? { kind: 'fill', size, value: expr.value, out }
    : 'read' in expr && !accumulate ? blockCopy(from, expr.read, size)
    : { kind: 'elementwise', size, out, expr, accumulate }];
}

/** What a packed trainer reorders around its loops: the sequences it keeps, where, and in what shape per index. */
export interface RowOrder {
  readonly B: number;
  /** The arena offset of the order table: row p's place, then its inverse, then 1 when the order is the identity. */
  readonly order: number;
  /** Room for one index of the widest sequence. */
  readonly scratch: number;
  /** The index of the final state in a state sequence (an expression: T, or the last checkpoint's). */
  readonly finalIndex: string;
  readonly inputs: readonly { readonly seq: Seq; readonly shape: Shape }[];
  readonly target: { readonly seq: Seq; readonly shape: Shape };
  /** Each state's sequence. */
  readonly states: readonly { readonly seq: Seq; readonly shape: Shape }[];
  readonly outputs: readonly { readonly seq: Seq; readonly shape: Shape }[];
  readonly inputGrads?: readonly { readonly seq: Seq; readonly shape: Shape }[];
  readonly stateGrads?: readonly { readonly off: number; readonly shape: Shape }[];
}

/**
 * The statements that put what the loops read in the rows' length order (`toSorted`: the inputs,
 * with `train` the targets, and the initial states), or what a caller reads afterwards back in the
 * user's order (states, outputs and, with `train`, the input and initial-state gradients); nothing
 * is moved when the order is the identity.
 */
export function reorderRows(o: RowOrder, toSorted: boolean, train: boolean): string[] {
  const { B, order: ord, scratch } = o;
  const block = (at: string, w: number) => {
    const move = w === 1
      ? (toSorted ? `A[s + p] = A[${scratch} + A[${ord} + p]!];` : `A[s + A[${ord} + p]!] = A[${scratch} + p];`)
      : (toSorted ? `{ const r = A[${ord} + p]! * ${w}; A.copyWithin(s + p * ${w}, ${scratch} + r, ${scratch} + r + ${w}); }` : `{ const r = A[${ord} + p]! * ${w}; A.copyWithin(s + r, ${scratch} + p * ${w}, ${scratch} + (p + 1) * ${w}); }`);
    return `{ const s = ${at}; A.copyWithin(${scratch}, s, s + ${B * w}); for (let p = 0; p < ${B}; p++) ${move} }`;
  };
  // One index of a sequence holding `shape` (B rows) per index.
  const index = (at: string, shape: Shape) => block(at, sizeOf(shape) / B);
  const sequence = (q: Seq, count: string, shape: Shape) => `for (let t = 0; t < ${count}; t++) ${index(`${q.base} + t * ${q.stride}`, shape)}`;
  const states = o.states.map(({ seq: q, shape }) => (toSorted ? index(`${q.base}`, shape) : sequence(q, `${o.finalIndex} + 1`, shape)));
  const lines = toSorted
    ? [...o.inputs.map(({ seq: q, shape }) => sequence(q, 'T', shape)), ...(train ? [sequence(o.target.seq, 'T', o.target.shape)] : []), ...states]
    : [
      ...states,
      ...o.outputs.map(({ seq: q, shape }) => sequence(q, 'T', shape)),
      ...(train && o.inputGrads ? [...o.inputGrads.map(({ seq: q, shape }) => sequence(q, 'T', shape)), ...(o.stateGrads ?? []).map(({ off, shape }) => index(`${off}`, shape))] : []),
    ];
  return [`if (A[${ord + 2 * B}] === 0) {`, ...lines.map((l) => `  ${l}`), '}'];
}
