// Loop-invariant code motion over time: what a scan's body computes from its per-step inputs (xs)
// and consts alone — never from a carry, nor from the lengths mask — is computed before the scan
// over every step at once and read by the body as one more xs. A layer's input projection
// x(t)·W_ihᵀ becomes one product [B·T, I]×[I, G·H], as cuDNN and PyTorch do; differentiated after
// this rewrite, its weight gradient is one product with k = B·T and its input gradient one
// product, outside the scan's loops. The scan's results, direction, lengths, length and line are
// unchanged, and so are its values (up to the order of a weight gradient's sum).
import { rewrite, topoOrder, substitute, type Graph } from '../ir/graph.ts';
import { originSpec, type Attrs, type Context, type Node } from '../ir/node.ts';
import { createBuilder } from '../prims/builder.ts';
import { isElementwiseOp, primOf } from '../prims/index.ts';
import { rescan, stackedShape } from '../prims/scan.ts';

/** The values the rewrite computes outside a scan over the rows of all its T steps, with T. */
const overSteps = new WeakMap<Node, number>();

/** T when `n` is a value the rewrite computes over the rows of a scan's T steps ([B·T, …], row b·T + t step t's row b), else undefined. */
export function hoistedSteps(n: Node): number | undefined {
  return overSteps.get(n);
}

/** A product the rewrite would take out of a scan, per step: [m, k] × [k, n] (m the batch rows of one step). */
export interface HoistedProduct {
  readonly m: number;
  readonly k: number;
  readonly n: number;
}

/** Whether to take out of `scan` what the rewrite would: the products it would compute over all steps instead. */
export type HoistChoice = (scan: Node, products: readonly HoistedProduct[]) => boolean;

/** `g` with every outermost scan's carry-free products (and the element-wise work on them) computed before it, where `choose` (default: always) agrees. */
export function hoistScanInputs(g: Graph, ctx: Context, choose: HoistChoice = () => true): Graph {
  const b = createBuilder(ctx);
  return rewrite(g, ctx, (n, inputs) => (n.op === 'scan' && n.body ? hoisted(b, n, inputs, choose) : undefined));
}

/**
 * How a body value is computed over all T steps: `const` — from consts alone, the same at every
 * step (Wᵀ, a broadcast bias), computed once outside; `rows` — from xs and consts, [B, …] per step,
 * computed outside as [B·T, …] (row b·T + t is step t's row b: xs [B, T, …] read as [B·T, …]).
 * Absent: it depends on a carry (or on something not expressible over the rows of all steps).
 */
type Kind = 'const' | 'rows';

// Ops read through (views and copies): a value hoisted is one that computes (a product, an
// element-wise op), so a slice of a projection (a GRU's gates) reads the whole projection hoisted.
const VIEWS: ReadonlySet<string> = new Set(['slice', 'reshape', 'broadcast', 'pad', 'concat']);

const intsOf = (attrs: Attrs, key: string): number[] => (attrs[key] as number[] | undefined) ?? [];

/**
 * Can `n` (whose inputs are each const or rows, one at least rows) be computed over the rows of all
 * steps with its own attrs — its axis 0 (the batch) never sliced, summed, broadcast or moved?
 */
function overRows(n: Node, kinds: ReadonlyMap<Node, Kind>): boolean {
  const rows = n.inputs.filter((x) => kinds.get(x) === 'rows');
  const B = rows[0]!.shape[0];
  if (n.shape.length < 1 || n.shape[0] !== B || rows.some((x) => x.shape.length < 1 || x.shape[0] !== B)) return false;
  const a = n.attrs;
  if (isElementwiseOp(n.op)) return true;
  switch (n.op) {
    case 'matmul': // rows [B, I] times a const [I, N]
      return n.inputs[0]!.shape.length === 2 && kinds.get(n.inputs[0]!) === 'rows' && n.inputs[1]!.shape.length === 2 && kinds.get(n.inputs[1]!) === 'const';
    case 'reshape': // [B, …] → [B, …]: each row's block stays contiguous
      return true;
    case 'broadcast':
    case 'sum':
    case 'max':
      return !intsOf(a, 'axes').includes(0);
    case 'slice':
    case 'pad':
    case 'concat':
      return a['axis'] !== 0;
    default:
      return false;
  }
}

/**
 * Does `v` read a const tensor beside rows (the bias of x·W_ihᵀ + b_ih)? Over all steps it would be
 * broadcast to every step's rows first, a [B·T, G·H] buffer filled element by element, where the
 * body adds it in the epilogue of its own product: measured on the bench's LSTM (H = 128, B = 16,
 * T = 50, wasm f32), hoisting the bias add too made the step 4–11% slower than the product alone.
 * So the bias stays in the body; a literal (a fill) costs nothing and moves.
 */
function spreadsConst(v: Node, kinds: ReadonlyMap<Node, Kind>): boolean {
  return v.op !== 'matmul' && v.inputs.some((x) => kinds.get(x) === 'const' && !(x.op === 'const' && typeof x.attrs['value'] === 'number'));
}

/** The lengths mask the DSL adds (valid = t < lengths[b], src/dsl/scan.ts): it says what the carries become, so nothing reading it leaves the body. */
const isMask = (operand: Node) => operand.op === 'compare';

/** `n` reading the values it computes from xs and consts alone from new xs computed before it; undefined when there are none worth it. */
function hoisted(b: ReturnType<typeof createBuilder>, n: Node, inputs: readonly Node[], choose: HoistChoice): Node | undefined {
  const body = n.body!;
  const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number, T = n.attrs['length'] as number;
  const operandOf = new Map(body.inputs.map((p, i) => [p, inputs[i]!]));
  const kinds = new Map<Node, Kind>();
  body.inputs.forEach((p, i) => {
    if (i >= nc + nx) kinds.set(p, 'const');
    else if (i >= nc && p.shape.length >= 1 && !isMask(inputs[i]!)) kinds.set(p, 'rows');
  });
  const placeholders = new Set(body.inputs);
  const order = topoOrder(body.outputs, (x) => placeholders.has(x));
  // With a product among what it is computed from: worth a buffer of its own over every step.
  const product = new Set<Node>();
  for (const v of order) {
    if (placeholders.has(v) || v.body) continue;
    if (v.inputs.length === 0) kinds.set(v, 'const');
    else if (v.inputs.every((x) => kinds.get(x) === 'const')) kinds.set(v, 'const');
    else if (v.inputs.every((x) => kinds.has(x)) && !spreadsConst(v, kinds) && overRows(v, kinds)) {
      kinds.set(v, 'rows');
      if (v.op === 'matmul' || v.inputs.some((x) => product.has(x))) product.add(v);
    }
  }
  const candidate = (v: Node) => product.has(v) && !VIEWS.has(v.op);
  // The candidates something left in the body reads (a value depending on a carry, a view of the
  // candidate that stays, a body output): what the body reads as new xs.
  const read = new Set<Node>(body.outputs.filter(candidate));
  for (const v of order) if (!candidate(v)) v.inputs.filter(candidate).forEach((x) => read.add(x));
  const out = order.filter((v) => read.has(v));
  if (out.length === 0) return undefined;
  const hoistedProducts = topoOrder(out, (v) => !kinds.has(v)).filter((v) => v.op === 'matmul' && kinds.get(v) === 'rows');
  if (!choose(n, hoistedProducts.map((v) => ({ m: v.shape[0]!, k: v.inputs[0]!.shape[1]!, n: v.shape[1]! })))) return undefined;

  // Values over every step, outside the scan: rows as [B·T, …], consts as they are.
  const outer = new Map<Node, Node>();
  const rowsShape = (v: Node) => [v.shape[0]! * T, ...v.shape.slice(1)];
  const lift = (v: Node): Node => {
    const done = outer.get(v);
    if (done) return done;
    let r: Node;
    if (operandOf.has(v)) r = kinds.get(v) === 'rows' ? b.reshape(operandOf.get(v)!, rowsShape(v)) : operandOf.get(v)!;
    else if (kinds.get(v) === 'const') r = v.inputs.length === 0 ? v : b.ctx.remake(v, v.inputs.map(lift));
    else {
      const args = v.inputs.map((x) => (kinds.get(x) === 'rows' || v.op === 'matmul' ? lift(x) : everyStep(x)));
      const attrs = 'shape' in v.attrs ? { ...v.attrs, shape: rowsShape(v) } : v.attrs;
      const shape = primOf(v.op)!.shape(args.map((x) => x.shape), attrs, []);
      r = b.ctx.make({ op: v.op, inputs: args, shape, attrs, ...originSpec(v) });
      overSteps.set(r, T);
    }
    outer.set(v, r);
    return r;
  };
  // A const read beside rows is a fill (spreadsConst): the same fill over the rows of all steps.
  const everyStep = (c: Node): Node => b.scalar(c.attrs['value'] as number, rowsShape(c));

  const fresh = out.map((v, i) => b.placeholder(`proj${i}`, v.shape));
  const mapped = substitute(b.ctx, topoOrder(body.outputs, (x) => placeholders.has(x) || read.has(x)), new Map(out.map((v, i) => [v, fresh[i]!])));
  const outputs = body.outputs.map((o) => mapped.get(o)!);
  // The xs and consts the body still reads (x itself no longer, once projected; W_ih neither).
  const reads = new Set(topoOrder(outputs));
  const keep = (p: Node) => reads.has(p);
  const xsPh = [...body.inputs.slice(nc, nc + nx).filter(keep), ...fresh.filter(keep)];
  const xsOf = new Map<Node, Node>(fresh.map((p, i) => [p, b.reshape(lift(out[i]!), stackedShape(p.shape, T))]));
  const constPh = body.inputs.slice(nc + nx).filter(keep);
  const operands = [...inputs.slice(0, nc), ...xsPh.map((p) => xsOf.get(p) ?? operandOf.get(p)!), ...constPh.map((p) => operandOf.get(p)!)];
  return rescan(b.ctx, n, operands, { inputs: [...body.inputs.slice(0, nc), ...xsPh, ...constPh], outputs }, T, xsPh.length);
}
