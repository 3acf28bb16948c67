// The DSL's tensor operations, traced into the current context. Shapes are checked as each node is
// built; a mismatch names the op, the shapes and the user's file:line. Binary ops broadcast
// numpy-style by inserting explicit reshape/broadcast nodes, so primitives see equal shapes.
import { UnfoldError } from '../ir/errors.ts';
import type { Node } from '../ir/node.ts';
import { sameShape, shapeToString, sizeOf, type Shape } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import type { ElementwiseUnaryName } from '../prims/index.ts';
import { dropoutActive, dslBuilder, nextDropoutName } from './context.ts';
import { userOrigin } from './origin.ts';

export type { Node } from '../ir/node.ts';
/** A tensor operand: a node, or a number standing for a constant of the other operand's shape. */
export type Operand = Node | number;

function isNode(x: unknown): x is Node {
  return typeof x === 'object' && x !== null && 'op' in x && 'shape' in x && 'inputs' in x;
}

export function fail(op: string, message: string): never {
  const where = userOrigin();
  throw new UnfoldError(`${where ? where + ': ' : ''}${op}: ${message}`);
}

function describe(x: unknown): string {
  return x === undefined ? 'undefined' : x === null ? 'null' : typeof x === 'object' ? 'an object' : `${typeof x} ${String(x)}`;
}

function node(op: string, x: unknown, position: number): Node {
  if (isNode(x)) return x;
  return fail(op, `argument ${position} is not a tensor (got ${describe(x)})`);
}

/** Runs a builder call, reporting shape-rule failures at the user's line. */
function traced<T>(op: string, f: (b: NodeBuilder) => T): T {
  try {
    return f(dslBuilder());
  } catch (e) {
    if (e instanceof UnfoldError) throw e;
    const msg = (e as Error).message;
    return fail(op, msg.startsWith(`${op}:`) ? msg.slice(op.length + 1).trim() : msg);
  }
}

/** numpy's broadcast of two shapes, or undefined when they are incompatible. */
export function broadcastShapes(a: Shape, c: Shape): number[] | undefined {
  const rank = Math.max(a.length, c.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1, y = c[c.length - rank + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** x expanded to `shape` (numpy rules) with reshape + broadcast nodes. */
function expand(b: NodeBuilder, x: Node, shape: Shape): Node {
  const pad = shape.length - x.shape.length;
  const axes: number[] = [];
  const kept: number[] = [];
  shape.forEach((d, i) => {
    const own = i < pad ? undefined : x.shape[i - pad];
    if (own === undefined || (own === 1 && d !== 1)) axes.push(i);
    else kept.push(d);
  });
  return b.broadcast(b.reshape(x, kept), shape, axes);
}

/** Two operands (a number stands for a constant of the other's shape) broadcast together, then `make`. */
function broadcastPair(op: string, a: Operand, c: Operand, make: (b: NodeBuilder, x: Node, y: Node) => Node): Node {
  if (typeof a === 'number' && typeof c === 'number') return fail(op, 'needs at least one tensor operand');
  return traced(op, (b) => {
    const x = typeof a === 'number' ? b.scalar(a, node(op, c, 2).shape) : node(op, a, 1);
    const y = typeof c === 'number' ? b.scalar(c, x.shape) : node(op, c, 2);
    const shape = broadcastShapes(x.shape, y.shape);
    if (!shape) return fail(op, `shapes ${shapeToString(x.shape)} and ${shapeToString(y.shape)} cannot be broadcast together`);
    return make(b, expand(b, x, shape), expand(b, y, shape));
  });
}

function binary(op: 'add' | 'sub' | 'mul' | 'div', a: Operand, c: Operand): Node {
  return broadcastPair(op, a, c, (b, x, y) => b[op](x, y));
}

/** Element-wise a + b (numpy broadcasting). @example add(matmul(W, h), b) */
export const add = (a: Operand, b: Operand): Node => binary('add', a, b);
/** Element-wise a − b. @example sub(y, target) */
export const sub = (a: Operand, b: Operand): Node => binary('sub', a, b);
/** Element-wise a · b (Hadamard product). @example mul(z, h) */
export const mul = (a: Operand, b: Operand): Node => binary('mul', a, b);
/** Element-wise a / b. @example div(x, 2) */
export const div = (a: Operand, b: Operand): Node => binary('div', a, b);

function unary(op: ElementwiseUnaryName, x: Node): Node {
  return traced(op, (b) => b[op](node(op, x, 1)));
}

/** −x. @example neg(x) */
export const neg = (x: Node): Node => unary('neg', x);
/** |x| (its gradient at 0 is 0, as PyTorch's). @example abs(sub(y, target)) */
export const abs = (x: Node): Node => unary('abs', x);
/** eˣ. @example exp(x) */
export const exp = (x: Node): Node => unary('exp', x);
/** Natural logarithm. @example log(x) */
export const log = (x: Node): Node => unary('log', x);
/** Hyperbolic tangent. @example tanh(add(matmul(W, h), b)) */
export const tanh = (x: Node): Node => unary('tanh', x);
/** Logistic sigmoid 1/(1+e⁻ˣ). @example sigmoid(gate) */
export const sigmoid = (x: Node): Node => unary('sigmoid', x);
/** max(x, 0). @example relu(x) */
export const relu = (x: Node): Node => unary('relu', x);
/** x with no gradient (stop-gradient). @example detach(h) */
export const detach = (x: Node): Node => unary('detach', x);

/**
 * The DSL op of every element-wise unary primitive, under its name: a primitive added to the
 * registry without one here does not compile (src/index.ts exports them; test/core/prims.test.ts
 * checks that it does, by type).
 */
export const UNARY_OPS = { neg, abs, exp, log, tanh, sigmoid, relu, detach } as const satisfies { readonly [K in ElementwiseUnaryName]: (x: Node) => Node };

/**
 * Matrix product of vectors/matrices (numpy's rule); a left operand with more axes is a stack of
 * rows, as nn.Linear reads [B, T, H]. @example matmul(W, h) // [H,H]·[H] -> [H]; matmul(hs, Vᵀ) // [B,T,H]·[H,O] -> [B,T,O]
 */
export function matmul(a: Node, b: Node): Node {
  return traced('matmul', (bb) => {
    const x = node('matmul', a, 1), w = node('matmul', b, 2);
    if (x.shape.length <= 2) return bb.matmul(x, w);
    const lead = x.shape.slice(0, -1);
    const rows = bb.reshape(x, [lead.reduce((p, d) => p * d, 1), x.shape[x.shape.length - 1]!]);
    const y = bb.matmul(rows, w);
    return bb.reshape(y, [...lead, ...y.shape.slice(1)]);
  });
}

/** Matrix transpose. @example matmul(x, transpose(W)) */
export function transpose(x: Node): Node {
  return traced('transpose', (b) => b.transpose(node('transpose', x, 1)));
}

function normalizeAxes(op: string, x: Node, axes: number | readonly number[] | undefined): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  const norm = list.map((a) => {
    if (!Number.isInteger(a) || a < -x.shape.length || a >= x.shape.length) {
      return fail(op, `axis ${a} is out of range for shape ${shapeToString(x.shape)}`);
    }
    return a < 0 ? a + x.shape.length : a;
  });
  return [...new Set(norm)].sort((p, q) => p - q);
}

/** A reduction's result with its reduced axes kept as 1s (keepdim), so it broadcasts against its input. */
function keptAxes(b: NodeBuilder, r: Node, of: Node, axes: readonly number[], keep: boolean | undefined): Node {
  return keep ? b.reshape(r, of.shape.map((d, i) => (axes.includes(i) ? 1 : d))) : r;
}

/** Sum over `axes` (default: all, giving a scalar); `keep` keeps them as 1s. @example sum(mul(d, d)); sum(e, -1, true) */
export function sum(x: Node, axes?: number | readonly number[], keep?: boolean): Node {
  const n = node('sum', x, 1);
  const ax = normalizeAxes('sum', n, axes);
  return traced('sum', (b) => keptAxes(b, b.sum(n, ax), n, ax, keep));
}

/** Mean over `axes` (default: all); `keep` keeps them as 1s. @example mean(mul(d, d)) // MSE */
export function mean(x: Node, axes?: number | readonly number[], keep?: boolean): Node {
  const n = node('mean', x, 1);
  const ax = normalizeAxes('mean', n, axes);
  const count = sizeOf(ax.map((a) => n.shape[a]!));
  return traced('mean', (b) => {
    const s = b.sum(n, ax);
    return keptAxes(b, b.mul(s, b.scalar(1 / count, s.shape)), n, ax, keep);
  });
}

/** Maximum over `axes` (default: all); `keep` keeps them as 1s. @example max(logits, -1, true) */
export function max(x: Node, axes?: number | readonly number[], keep?: boolean): Node {
  const n = node('max', x, 1);
  const ax = normalizeAxes('max', n, axes);
  return traced('max', (b) => keptAxes(b, b.max(n, ax), n, ax, keep));
}

/** x broadcast to `shape` by numpy rules. @example broadcast(b, [B, H]) */
export function broadcast(x: Node, shape: readonly number[]): Node {
  const n = node('broadcast', x, 1);
  const target = broadcastShapes(n.shape, shape);
  if (!target || !sameShape(target, shape)) {
    return fail('broadcast', `cannot broadcast ${shapeToString(n.shape)} to ${shapeToString(shape)}`);
  }
  return traced('broadcast', (b) => expand(b, n, shape));
}

/** Same elements, new shape. @example reshape(x, [B, I]) */
export function reshape(x: Node, shape: readonly number[]): Node {
  return traced('reshape', (b) => b.reshape(node('reshape', x, 1), shape));
}

/** x[start:end] along `axis`. @example slice(gates, 1, 0, H) // the first gate */
export function slice(x: Node, axis: number, start: number, end: number): Node {
  const n = node('slice', x, 1);
  const [a] = normalizeAxes('slice', n, axis);
  return traced('slice', (b) => b.slice(n, a!, start, end));
}

/** Join tensors along `axis`. @example concat([h, x], 1) */
export function concat(xs: readonly Node[], axis: number): Node {
  if (!Array.isArray(xs) || xs.length === 0) return fail('concat', 'needs a non-empty array of tensors');
  const ns = xs.map((x, i) => node('concat', x, i + 1));
  const [a] = normalizeAxes('concat', ns[0]!, axis);
  return traced('concat', (b) => b.concat(ns, a!));
}

/** cond ≠ 0 ? a : b, element-wise (broadcasting). @example where(gt(x, 0), x, 0) */
export function where(cond: Node, a: Operand, c: Operand): Node {
  const k = node('where', cond, 1);
  return traced('where', (b) => {
    const x = typeof a === 'number' ? b.scalar(a, k.shape) : node('where', a, 2);
    const y = typeof c === 'number' ? b.scalar(c, k.shape) : node('where', c, 3);
    const shape = broadcastShapes(k.shape, broadcastShapes(x.shape, y.shape) ?? fail('where', `shapes ${shapeToString(x.shape)} and ${shapeToString(y.shape)} cannot be broadcast together`));
    if (!shape) return fail('where', `condition ${shapeToString(k.shape)} does not broadcast with ${shapeToString(x.shape)}`);
    return b.where(expand(b, k, shape), expand(b, x, shape), expand(b, y, shape));
  });
}

function comparison(kind: 'gt' | 'ge' | 'lt' | 'le' | 'eq', a: Operand, c: Operand): Node {
  return broadcastPair(kind, a, c, (b, x, y) => b.compare(kind, x, y));
}

/** 1 where a > b, else 0. @example where(gt(x, 0), x, 0) */
export const gt = (a: Operand, b: Operand): Node => comparison('gt', a, b);
/** 1 where a < b, else 0. */
export const lt = (a: Operand, b: Operand): Node => comparison('lt', a, b);
/** 1 where a ≥ b, else 0. */
export const ge = (a: Operand, b: Operand): Node => comparison('ge', a, b);
/** 1 where a ≤ b, else 0. */
export const le = (a: Operand, b: Operand): Node => comparison('le', a, b);
/** 1 where a = b, else 0. */
export const eq = (a: Operand, b: Operand): Node => comparison('eq', a, b);

/** The attribute that marks an input leaf as a dropout mask, holding its rate p. */
export const DROPOUT_ATTR = 'dropout';

/** Whether a leaf is a dropout mask (an input the trainer fills from its generator, never the data). */
export function isDropoutMask(n: Node): boolean {
  return n.op === 'input' && typeof n.attrs[DROPOUT_ATTR] === 'number';
}

/**
 * Inverted dropout, as torch.nn.functional.dropout: while training, each element is kept with
 * probability 1 − p and scaled by 1/(1 − p), else zeroed; in every other use (run, generate, grad)
 * it is x itself. The mask is a per-step input of x's shape that the trainer fills from its seeded
 * generator before each step, so the backward pass multiplies by the very same mask.
 * @example const h2 = dropout(h, 0.2)
 */
export function dropout(x: Node, p: number, name?: string): Node {
  const v = node('dropout', x, 1);
  if (typeof p !== 'number' || !(p >= 0 && p < 1)) return fail('dropout', `p must be in [0, 1), got ${String(p)}`);
  if (!dropoutActive() || p === 0) return v;
  const mask = traced('dropout', (b) => b.input(name ?? nextDropoutName(), v.shape, { role: 'input', [DROPOUT_ATTR]: p }));
  return mul(v, mask);
}

/**
 * The rows of `table` [V, H] at integer `indices` [...N] (nn.Embedding): [...N, H]; its gradient adds
 * each row's cotangents into the row it read. @example embedding(E, tokens) // [V, H] at [B] -> [B, H]
 */
export function embedding(table: Node, indices: Node): Node {
  return traced('embedding', (b) => b.gather(node('embedding', table, 1), node('embedding', indices, 2)));
}

/** A constant tensor: a fill value or row-major data. @example constant(0.5, [H]) */
export function constant(value: number | readonly number[], shape: readonly number[]): Node {
  const data = typeof value === 'number' ? [value] : value;
  if (data.some((v) => typeof v !== 'number' || !Number.isFinite(v))) return fail('constant', 'values must be finite numbers');
  if (typeof value !== 'number' && data.length !== sizeOf(shape)) {
    return fail('constant', `${data.length} values for shape ${shapeToString(shape)} (${sizeOf(shape)} elements)`);
  }
  return traced('constant', (b) => (typeof value === 'number' ? b.scalar(value, shape) : b.const(data, shape)));
}
