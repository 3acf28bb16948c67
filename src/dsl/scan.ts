// scan(): a recurrence as one operation over whole sequences, as JAX's lax.scan. The step is traced
// once on placeholders; whatever it reads from outside (parameters, whole tensors such as another
// scan's outputs) becomes the scan's consts, so the body depends on nothing but its operands.
import { UnfoldError } from '../ir/errors.ts';
import { substitute, topoOrder } from '../ir/graph.ts';
import { pushTo } from '../ir/multimap.ts';
import type { Node } from '../ir/node.ts';
import { sameShape, shapeToString } from '../ir/tensor.ts';
import type { NodeBuilder } from '../prims/builder.ts';
import { scanResults, timeAxis } from '../prims/scan.ts';
import { dslBuilder } from './context.ts';
import { userOrigin } from './origin.ts';

type Nodes = Record<string, Node>;
type Like<R> = { readonly [K in keyof R]: Node };

export interface ScanOptions<C extends Nodes, X extends Nodes, K extends Nodes> {
  /** The carries' initial values, c(0). */
  readonly init: C;
  /** Sequences read one step at a time: [B, T, ...] gives the step [B, ...]. */
  readonly xs?: X;
  /** Whole tensors the step reads (the step may also read any outer tensor directly). */
  readonly consts?: K;
  /** Run t = T … 1. */
  readonly reverse?: boolean;
  /** T, for a scan without xs (an input-free system). */
  readonly length?: number;
  /**
   * Per-row lengths [B] (1 … T): a row's carries stop changing after its last valid step and its
   * ys are 0 past it, as pack_padded_sequence; a reverse scan then starts at each row's last valid step.
   */
  readonly lengths?: Node;
}

export interface ScanStep<C extends Nodes, Y extends Nodes> {
  readonly carry: Like<C>;
  readonly y?: Y;
}

export interface ScanResult<C extends Nodes, Y extends Nodes> {
  /** The carries after the last step (of each row's own last step, under lengths). */
  readonly final: Like<C>;
  /** Each per-step output stacked over time: [B, T, ...]. */
  readonly ys: Like<Y>;
  /** The scan node itself. */
  readonly node: Node;
}

const isNode = (x: unknown): x is Node => typeof x === 'object' && x !== null && 'op' in x && 'shape' in x && 'inputs' in x;

/**
 * Runs `step` over time: c(t) = step(c(t−1), x(t)).carry, y(t) = step(…).y.
 * @example
 * const { final, ys } = scan(({ h }, { x }) => {
 *   const next = tanh(add(add(matmul(x, transpose(U)), matmul(h, transpose(W))), b));
 *   return { carry: { h: next }, y: { h: next } };
 * }, { init: { h: h0 }, xs: { x: X } });   // X [B, T, I] -> ys.h [B, T, H], final.h [B, H]
 */
export function scan<C extends Nodes, X extends Nodes = Record<never, Node>, K extends Nodes = Record<never, Node>, Y extends Nodes = Record<never, Node>>(
  step: (carry: C, x: X, consts: K) => ScanStep<C, Y>,
  opts: ScanOptions<C, X, K>,
): ScanResult<C, Y> {
  const origin = userOrigin();
  const at = (msg: string): never => {
    throw new UnfoldError(`${origin ? origin + ': ' : ''}scan: ${msg}`);
  };
  if (typeof step !== 'function') at('the first argument must be the step function (carry, x, consts) => ({ carry, y })');
  if (typeof opts !== 'object' || opts === null) at('the second argument must be the options { init, xs, consts, reverse, length, lengths }');
  const entries = (what: string, rec: unknown): [string, Node][] => {
    if (rec === undefined) return [];
    if (typeof rec !== 'object' || rec === null) return at(`${what} must be an object of tensors`);
    return Object.entries(rec).map(([k, v]) => (isNode(v) ? [k, v] : at(`${what}.${k} is not a tensor`)));
  };
  const init = entries('init', opts.init);
  const xs = entries('xs', opts.xs);
  const consts = entries('consts', opts.consts);
  if (init.length === 0) at('needs at least one carry in init');
  // T: the xs' time axis (axis 1 of [B, T, ...]), shared by all of them, or `length`.
  let T = opts.length;
  for (const [k, x] of xs) {
    if (x.shape.length < 1) at(`xs.${k} is a scalar, not a sequence`);
    const steps = x.shape[timeAxis(x.shape.length - 1)]!;
    if (T !== undefined && steps !== T) at(`xs.${k} has shape ${shapeToString(x.shape)}: ${steps} steps, but ${opts.length !== undefined ? 'length is' : 'the other xs have'} ${T}`);
    T = steps;
  }
  if (T === undefined) at('a scan without xs needs its length');
  if (!Number.isInteger(T) || T! < 1) at(`length must be a positive integer, got ${String(T)}`);
  const steps = T!;
  const b = dslBuilder();

  // The step, traced on placeholders.
  const stepOf = (x: Node) => x.shape.filter((_, i) => i !== timeAxis(x.shape.length - 1));
  const cPh = init.map(([k, c]) => b.placeholder(k, c.shape));
  const xPh = xs.map(([k, x]) => b.placeholder(k, stepOf(x)));
  const kPh = consts.map(([k, c]) => b.placeholder(k, c.shape));
  const record = (keys: [string, Node][], nodes: Node[]) => Object.fromEntries(keys.map(([k], i) => [k, nodes[i]!]));
  const out = step(record(init, cPh) as C, record(xs, xPh) as X, record(consts, kPh) as K) as unknown;
  if (typeof out !== 'object' || out === null || typeof (out as ScanStep<C, Y>).carry !== 'object') at('the step must return { carry, y? }');
  const { carry, y } = out as ScanStep<C, Y>;
  const next = init.map(([k, c]) => {
    const n = (carry as Record<string, unknown>)[k];
    if (!isNode(n)) return at(`the step returns no carry "${k}"`);
    if (!sameShape(n.shape, c.shape)) at(`the step returns carry "${k}" of shape ${shapeToString(n.shape)}, but it starts as ${shapeToString(c.shape)}`);
    return n;
  });
  for (const k of Object.keys(carry)) if (!init.some(([i]) => i === k)) at(`the step returns carry "${k}", which is not in init`);
  const ys = entries('the step\'s y', y);

  let body = { inputs: [...cPh, ...xPh, ...kPh], outputs: [...next, ...ys.map(([, n]) => n)] };
  let operands = { xs: xs.map(([, x]) => x), consts: consts.map(([, c]) => c) };
  if (opts.lengths !== undefined) {
    if (!isNode(opts.lengths)) at('lengths is not a tensor');
    ({ body, operands } = masked(b, body, operands, init.length, opts.lengths!, steps, at));
  }
  const closed = closeOver(b, body);
  const node = b.scan({
    init: init.map(([, c]) => c),
    xs: operands.xs,
    consts: [...operands.consts, ...closed.captured],
    body: closed.body,
    length: steps,
    reverse: opts.reverse === true,
  });
  const results = scanResults(b, node);
  return {
    final: record(init, results.slice(0, init.length)) as Like<C>,
    ys: record(ys, results.slice(init.length)) as Like<Y>,
    node,
  };
}

interface BodyParts {
  readonly inputs: Node[];
  readonly outputs: Node[];
}

/** valid [B, T, 1] = (t < lengths[b]), t 0-based: 1 at a row's steps, 0 past its length. `lengths` is [B]. */
export function validSteps(b: NodeBuilder, lengths: Node, T: number): Node {
  const B = lengths.shape[0]!;
  const steps = b.broadcast(b.const(Array.from({ length: T }, (_, t) => t), [T]), [B, T, 1], [0, 2]);
  return b.compare('lt', steps, b.broadcast(lengths, [B, T, 1], [1, 2]));
}

/**
 * The body under per-row lengths: one more xs, valid [B, T, 1] = (t < lengths[b]), read as [B, 1];
 * carries keep their value where it is 0, ys are 0 there.
 */
function masked(b: NodeBuilder, body: BodyParts, operands: { xs: Node[]; consts: Node[] }, nc: number, lengths: Node, T: number, at: (m: string) => never) {
  const B = lengths.shape[0];
  if (lengths.shape.length !== 1 || B === undefined) return at(`lengths has shape ${shapeToString(lengths.shape)}, not [B]`);
  const batchFirst = [...body.inputs.slice(0, nc), ...body.outputs].find((n) => n.shape[0] !== B || n.shape.length < 1);
  if (batchFirst) at(`lengths [${B}] need every carry and per-step output batch-first [${B}, ...]; one has shape ${shapeToString(batchFirst.shape)}`);
  const valid = validSteps(b, lengths, T);
  const v = b.placeholder('valid', [B, 1]);
  const cond = (shape: readonly number[]) => b.broadcast(b.reshape(v, [B]), shape, shape.slice(1).map((_, i) => i + 1));
  const outputs = body.outputs.map((o, i) => b.where(cond(o.shape), o, i < nc ? body.inputs[i]! : b.scalar(0, o.shape)));
  const nx = operands.xs.length;
  return {
    body: { inputs: [...body.inputs.slice(0, nc + nx), v, ...body.inputs.slice(nc + nx)], outputs },
    operands: { xs: [...operands.xs, valid], consts: operands.consts },
  };
}

/**
 * Closure conversion: every value the body reads that does not depend on its placeholders
 * (parameters, Wᵀ, another scan's outputs) becomes a const placeholder, its value an operand.
 */
function closeOver(b: NodeBuilder, body: BodyParts): { body: BodyParts; captured: Node[] } {
  const placeholders = new Set(body.inputs);
  const order = topoOrder(body.outputs, (n) => placeholders.has(n));
  const dependent = new Set<Node>(placeholders);
  for (const n of order) if (n.inputs.some((x) => dependent.has(x))) dependent.add(n);
  const captured: Node[] = [];
  const users = new Map<Node, Node[]>();
  for (const n of order) for (const x of n.inputs) pushTo(users, x, n);
  const take = (x: Node) => {
    if (dependent.has(x) || x.op === 'const' || captured.includes(x)) return;
    // A transpose read only by products (Wᵀ in h Wᵀ) stays in the body over what it transposes: the
    // products read it in place, as a view, and the sum of W's cotangents over the steps is in W's
    // own layout. Captured, it would be copied into a buffer of its own before the loop.
    if (x.op === 'transpose' && (users.get(x) ?? []).every((u) => u.op === 'matmul')) return take(x.inputs[0]!);
    captured.push(x);
  };
  for (const n of order) if (dependent.has(n)) n.inputs.forEach(take);
  for (const o of body.outputs) take(o);
  if (captured.length === 0) return { body, captured };
  const subst = new Map<Node, Node>(captured.map((x, i) => [x, b.placeholder(x.op === 'param' ? String(x.attrs['name']) : `k${i}`, x.shape)]));
  const mapped = substitute(b.ctx, topoOrder(body.outputs, (n) => subst.has(n) || placeholders.has(n)), subst);
  return {
    body: {
      inputs: [...body.inputs, ...captured.map((x) => subst.get(x)!)],
      outputs: body.outputs.map((o) => mapped.get(o)!),
    },
    captured,
  };
}

