// y = scan(body; init, xs, consts): the body run over t = 1 … T (or T … 1), carrying its first
// outputs from step to step, as JAX's lax.scan. Results, one flat tuple: the final carries, then
// each per-step output stacked over t.  Its VJP is one rule — a scan in the other direction of the
// body's own VJP, whose carries are the carry cotangents and the consts' cotangents summed over steps.
import { topoOrder } from '../ir/graph.ts';
import { originSpec, type Attrs, type Body, type Context, type Node } from '../ir/node.ts';
import { sameShape, shapeToString, sizeOf, type Shape } from '../ir/tensor.ts';
import { intAttr } from './kit.ts';
import type { Builder, LoopEmit, PrimDef, ScanSpec } from './types.ts';

export type { ScanSpec };

/**
 * Where time is in a stacked value: axis 1 of a batch-first [B, T, ...] (a per-step value of rank
 * ≥ 1 keeps its leading axis first), axis 0 for a per-step scalar.
 */
export function timeAxis(stepRank: number): number {
  return stepRank >= 1 ? 1 : 0;
}

/** A per-step shape with T inserted at its time axis. */
export function stackedShape(step: Shape, T: number): number[] {
  const a = timeAxis(step.length);
  return [...step.slice(0, a), T, ...step.slice(a)];
}

/** A stacked shape without its time axis. */
function stepShape(stacked: Shape): number[] {
  const a = timeAxis(stacked.length - 1);
  return stacked.filter((_, i) => i !== a);
}

interface Counts {
  readonly carries: number;
  readonly xs: number;
  readonly consts: number;
  readonly length: number;
  readonly reverse: boolean;
}

function countsOf(attrs: Attrs): Counts {
  const reverse = attrs['reverse'];
  if (typeof reverse !== 'boolean') throw new Error('scan: attribute reverse must be a boolean');
  return { carries: intAttr(attrs, 'carries'), xs: intAttr(attrs, 'xs'), consts: intAttr(attrs, 'consts'), length: intAttr(attrs, 'length'), reverse };
}

/** The result tuple's parts: final carries, then stacked ys, each as (shape, offset) into the flat result. */
export function scanParts(n: Node): { shape: number[]; offset: number }[] {
  const { carries, length } = countsOf(n.attrs);
  let offset = 0;
  return n.body!.outputs.map((o, i) => {
    const shape = i < carries ? [...o.shape] : stackedShape(o.shape, length);
    const part = { shape, offset };
    offset += sizeOf(shape);
    return part;
  });
}

/** The scan's results as nodes: reshape(slice(tuple)) per part — after unroll, the parts themselves. */
export function scanResults(b: Builder, n: Node): Node[] {
  return scanParts(n).map(({ shape, offset }) => b.reshape(b.slice(n, 0, offset, offset + sizeOf(shape)), shape));
}

/** Step t (0-based) of a stacked value. */
export function stepSlice(b: Builder, xs: Node, t: number): Node {
  const a = timeAxis(xs.shape.length - 1);
  return b.reshape(b.slice(xs, a, t, t + 1), stepShape(xs.shape));
}

/** Per-step values (in time order) stacked along the time axis. */
export function stackSteps(b: Builder, steps: readonly Node[]): Node {
  const step = steps[0]!.shape;
  const a = timeAxis(step.length);
  const one = stackedShape(step, 1);
  return b.concat(steps.map((y) => b.reshape(y, one)), a);
}

/**
 * Checks a scan's operands against its body (shapes and counts), with a message naming what
 * disagrees; returns the flat result shape.
 */
export function checkScan(spec: ScanSpec): number[] {
  const { init, xs, consts, body, length } = spec;
  const nc = init.length, nx = xs.length, nk = consts.length;
  if (!Number.isInteger(length) || length < 1) throw new Error(`scan: length must be a positive integer, got ${length}`);
  if (body.inputs.length !== nc + nx + nk) throw new Error(`scan: the body binds ${body.inputs.length} placeholders for ${nc} carries, ${nx} xs and ${nk} consts`);
  if (body.outputs.length < nc) throw new Error(`scan: the body returns ${body.outputs.length} values for ${nc} carries`);
  init.forEach((c, i) => {
    const ph = body.inputs[i]!, next = body.outputs[i]!;
    if (!sameShape(c.shape, ph.shape) || !sameShape(next.shape, ph.shape)) {
      throw new Error(`scan: carry ${i} starts ${shapeToString(c.shape)}, the body reads ${shapeToString(ph.shape)} and returns ${shapeToString(next.shape)}`);
    }
  });
  xs.forEach((x, i) => {
    const ph = body.inputs[nc + i]!;
    const a = timeAxis(ph.shape.length);
    if (x.shape[a] !== length || !sameShape(stepShape(x.shape), ph.shape)) {
      throw new Error(`scan: xs ${i} has shape ${shapeToString(x.shape)}; a sequence of ${length} steps of ${shapeToString(ph.shape)} is ${shapeToString(stackedShape(ph.shape, length))}`);
    }
  });
  consts.forEach((k, i) => {
    const ph = body.inputs[nc + nx + i]!;
    if (!sameShape(k.shape, ph.shape)) throw new Error(`scan: const ${i} has shape ${shapeToString(k.shape)}, the body reads ${shapeToString(ph.shape)}`);
  });
  body.inputs.forEach((p, i) => {
    if (p.op !== 'input') throw new Error(`scan: body input ${i} is a ${p.op} node, not a placeholder`);
  });
  const total = body.outputs.reduce((n, o, i) => n + sizeOf(i < nc ? o.shape : stackedShape(o.shape, length)), 0);
  return [total];
}

/**
 * `n` over other operands (its carries as many as n's, then `nx` xs — n's count unless a transform
 * changes it — then any number of consts) and body, and over `length` steps: a transform's rewrite
 * of a scan, which keeps its direction and the user's line it came from.
 */
export function rescan(ctx: Context, n: Node, operands: readonly Node[], body: Body = n.body!, length = intAttr(n.attrs, 'length'), nx = intAttr(n.attrs, 'xs')): Node {
  const { carries: nc, reverse } = countsOf(n.attrs);
  const spec: ScanSpec = { init: operands.slice(0, nc), xs: operands.slice(nc, nc + nx), consts: operands.slice(nc + nx), body, length, reverse };
  return ctx.make({ op: 'scan', inputs: [...operands], shape: checkScan(spec), attrs: scanAttrs(spec), body, ...originSpec(n) });
}

/** The attrs of a scan node (counts, T, direction): everything else is its operands and body. */
export function scanAttrs(spec: ScanSpec): Record<string, number | boolean> {
  return { carries: spec.init.length, xs: spec.xs.length, consts: spec.consts.length, length: spec.length, reverse: spec.reverse };
}

const inner = (b: Builder, a: Node, c: Node): Node => b.sum(b.mul(a, c), c.shape.map((_, d) => d));

export const scan: PrimDef<LoopEmit> = {
  name: 'scan',
  arity: 'variadic',
  shape: (inputs, attrs, declared) => {
    const { carries, xs, consts, length } = countsOf(attrs);
    if (inputs.length !== carries + xs + consts) throw new Error(`scan: ${inputs.length} operands for ${carries} carries, ${xs} xs and ${consts} consts`);
    for (let i = carries; i < carries + xs; i++) {
      const s = inputs[i]!;
      if (s[timeAxis(s.length - 1)] !== length) throw new Error(`scan: xs ${i - carries} has shape ${shapeToString(s)}, not ${length} steps`);
    }
    // The result size follows from the body, which verify checks on its own (and checkScan against the operands).
    return declared;
  },
  evaluate: (inputs, inShapes, attrs, shape, body) => {
    if (!body) throw new Error('scan: evaluating a scan needs its body');
    const { carries: nc, xs: nx, length: T, reverse } = countsOf(attrs);
    const outs = body.body.outputs;
    let carry: Float64Array[] = inputs.slice(0, nc).map((c) => Float64Array.from(c));
    const xs = inputs.slice(nc, nc + nx);
    const consts = inputs.slice(nc + nx);
    const ys = outs.slice(nc).map((y) => new Float64Array(sizeOf(y.shape) * T));
    for (let i = 0; i < T; i++) {
      const t = reverse ? T - 1 - i : i;
      const xt = xs.map((x, j) => readStep(x, inShapes[nc + j]!, t));
      const step = body.run([...carry, ...xt, ...consts]);
      carry = step.slice(0, nc);
      ys.forEach((y, j) => writeStep(y, stackedShape(outs[nc + j]!.shape, T), t, step[nc + j]!));
    }
    const out = new Float64Array(sizeOf(shape));
    let at = 0;
    for (const v of [...carry, ...ys]) {
      out.set(v, at);
      at += v.length;
    }
    return out;
  },
  vjp: ({ dy, y, inputs, attrs, grad, rebind, wants }, b) => {
    if (!grad || !rebind) throw new Error('scan: its VJP differentiates the body, which needs the vjp transform');
    const { carries: nc, xs: nx, length, reverse } = countsOf(attrs);
    const body = y.body!;
    const init = inputs.slice(0, nc), xs = inputs.slice(nc, nc + nx), consts = inputs.slice(nc + nx);
    const cPh = body.inputs.slice(0, nc), xPh = body.inputs.slice(nc, nc + nx), kPh = body.inputs.slice(nc + nx);
    const next = body.outputs.slice(0, nc), ysStep = body.outputs.slice(nc);
    const parts = scanParts(y);
    const dParts = parts.map(({ shape, offset }) => b.reshape(b.slice(dy, 0, offset, offset + sizeOf(shape)), shape));
    // The backward body: J = Σ ⟨dc, c(t)⟩ + Σ ⟨dy(t), y(t)⟩ over the body's own graph, differentiated once.
    const dcPh = cPh.map((c) => b.placeholder(`d${String(c.attrs['name'])}`, c.shape));
    const accPh = kPh.map((k) => b.placeholder(`Σd${String(k.attrs['name'])}`, k.shape));
    const dyPh = ysStep.map((o, j) => b.placeholder(`dy${j}`, o.shape));
    const terms = [...next.map((n, i) => inner(b, dcPh[i]!, n)), ...ysStep.map((o, j) => inner(b, dyPh[j]!, o))];
    const J = terms.reduce((acc, t) => b.add(acc, t));
    const g = grad(J, [...cPh, ...xPh, ...kPh]);
    // Only the cotangents something reads: a data sequence's (x fed to the first layer) is never computed.
    const wanted = (i: number) => wants?.[i] !== false;
    const xsOut = xPh.map((_, j) => j).filter((j) => wanted(nc + j));
    const kOut = kPh.map((_, k) => k).filter((k) => wanted(nc + nx + k));
    const residuals = stepResiduals(g, new Set([...dcPh, ...accPh, ...dyPh]), new Set([...cPh, ...xPh]));
    // The forward again, also yielding the carry each step reads and the residuals its VJP reads —
    // stored per step, as JAX's partial evaluation of scan does, not recomputed in the backward scan.
    // (merge-scans reads the model's own forward scan from this one, so the forward runs once.)
    // Each is stacked as one block per step ([1, T, n]), which a loop reads and writes in place.
    const saved = [...cPh, ...residuals];
    const flat = saved.map((v) => flatStep(b, v));
    const history = b.scan({ init, xs, consts, length, reverse, body: { inputs: body.inputs, outputs: [...body.outputs, ...flat] } });
    const stacks = scanResults(b, history).slice(body.outputs.length);
    const savedPh = saved.map((v, i) => b.placeholder(i < nc ? `${String(v.attrs['name'])}(t-1)` : `r${i - nc}`, flat[i]!.shape));
    const rebound = rebind(g, new Map(saved.map((v, i) => [v, b.reshape(savedPh[i]!, v.shape)])));
    const { step: gb, sums } = summedOverSteps(b, rebind, rebound, kOut.map((k) => ({ acc: accPh[k]!, d: rebound[nc + nx + k]! })));
    const backward = b.scan({
      init: [...dParts.slice(0, nc), ...kOut.map((k) => b.scalar(0, consts[k]!.shape))],
      xs: [...stacks.slice(0, nc), ...xs, ...dParts.slice(nc), ...stacks.slice(nc)],
      consts,
      length,
      reverse: !reverse,
      body: {
        inputs: [...dcPh, ...kOut.map((k) => accPh[k]!), ...savedPh.slice(0, nc), ...xPh, ...dyPh, ...savedPh.slice(nc), ...kPh],
        outputs: [...gb.slice(0, nc), ...sums, ...xsOut.map((j) => gb[nc + j]!)],
      },
    });
    const r = scanResults(b, backward);
    const dxs = new Map(xsOut.map((j, i) => [j, r[nc + kOut.length + i]!]));
    const dks = new Map(kOut.map((k, i) => [k, r[nc + i]!]));
    return [...r.slice(0, nc), ...xs.map((_, j) => dxs.get(j) ?? null), ...consts.map((_, k) => dks.get(k) ?? null)];
  },
  emit: { kind: 'loop' },
};

/**
 * acc + d for each const's cotangent d in a backward step. Where d is a nested scan's own sum over
 * its steps started at 0, read by nothing else (a segment of a checkpointed scan), that scan starts
 * from acc instead: the same additions in the same order as one scan over all the steps, so the
 * gradients are bit-identical to the unsegmented scan's. Returns the step with those scans restarted.
 */
function summedOverSteps(b: Builder, rebind: (roots: readonly Node[], replace: ReadonlyMap<Node, Node>) => Node[], step: readonly Node[], sums: readonly { acc: Node; d: Node }[]): { step: Node[]; sums: Node[] } {
  const reads = new Set<Node>();
  for (const n of topoOrder(step)) n.inputs.forEach((x) => reads.add(x));
  const restarted = new Map<Node, Node[]>();
  const nested = sums.map(({ acc, d }) => {
    const at = reads.has(d) ? undefined : nestedSum(d);
    const init = at && (restarted.get(at.scan) ?? [...at.scan.inputs]);
    if (!at || !init || !isZeroFill(init[at.carry]!)) return false;
    init[at.carry] = acc;
    restarted.set(at.scan, init);
    return true;
  });
  if (restarted.size === 0) return { step: [...step], sums: sums.map(({ acc, d }) => b.add(acc, d)) };
  const replace = new Map([...restarted].map(([scan, init]) => {
    const { carries: nc, xs: nx, length, reverse } = countsOf(scan.attrs);
    return [scan, b.scan({ init: init.slice(0, nc), xs: init.slice(nc, nc + nx), consts: init.slice(nc + nx), length, reverse, body: scan.body! })];
  }));
  const out = rebind([...step, ...sums.map(({ d }) => d)], replace);
  return { step: out.slice(0, step.length), sums: sums.map(({ acc }, i) => (nested[i] ? out[step.length + i]! : b.add(acc, out[step.length + i]!))) };
}

const isZeroFill = (n: Node) => n.op === 'const' && n.attrs['value'] === 0;

/** Where `d` is one of a scan's final carries (its reshaped slice of the flat result) that the body only adds to: the scan and the carry. */
function nestedSum(d: Node): { scan: Node; carry: number } | undefined {
  const s = d.op === 'reshape' ? d.inputs[0]! : d;
  const scan = s.inputs[0];
  if (s.op !== 'slice' || scan?.op !== 'scan') return undefined;
  const nc = countsOf(scan.attrs).carries;
  const carry = scanParts(scan).findIndex((p, i) => i < nc && p.offset === s.attrs['start'] && p.offset + sizeOf(p.shape) === s.attrs['end']);
  if (carry < 0) return undefined;
  const next = scan.body!.outputs[carry]!;
  return next.op === 'add' && next.inputs.includes(scan.body!.inputs[carry]!) ? { scan, carry } : undefined;
}

/** A per-step value as one row [1, n] (a scalar stays one): stacked, each step's block is contiguous. */
function flatStep(b: Builder, v: Node): Node {
  return v.shape.length === 0 ? v : b.reshape(v, [1, sizeOf(v.shape)]);
}

/**
 * The forward values of a step that its VJP `g` reads: those that depend on the step (its carries
 * or xs, `step`) but not on a cotangent (`cotangents`), read by a node that does. What depends on
 * the consts alone (Wᵀ) is the same at every step, so it is left to the backward body.
 */
function stepResiduals(g: readonly Node[], cotangents: ReadonlySet<Node>, step: ReadonlySet<Node>): Node[] {
  const order = topoOrder(g);
  const tangent = new Set<Node>(), varying = new Set<Node>();
  for (const n of order) {
    if (cotangents.has(n) || n.inputs.some((x) => tangent.has(x))) tangent.add(n);
    if (step.has(n) || n.inputs.some((x) => varying.has(x))) varying.add(n);
  }
  const out = new Set<Node>();
  for (const n of order) {
    if (!tangent.has(n)) continue;
    for (const x of n.inputs) if (!tangent.has(x) && varying.has(x) && !step.has(x)) out.add(x);
  }
  const kept = fewerResiduals(out, (x) => step.has(x) || !varying.has(x));
  return order.filter((n) => kept.has(n));
}

/** Ops the backward step recomputes from their inputs rather than store: a few flops each, fused into its element-wise kernels. */
const RECOMPUTED: ReadonlySet<string> = new Set(['add', 'sub', 'mul', 'neg', 'transpose', 'reshape', 'slice']);

/**
 * What the backward step computes `r` from rather than store it: a cheap op's inputs; for a nested
 * scan's results (a segment of a checkpointed scan, src/transforms/segment-scans.ts), that scan's
 * operands — the segment runs again, its residuals never held for more than one segment.
 */
function recomputedFrom(r: Node): readonly Node[] | undefined {
  if (r.op === 'scan') return r.inputs;
  if (r.op === 'slice' && r.inputs[0]!.op === 'scan') return r.inputs[0]!.inputs;
  return RECOMPUTED.has(r.op) ? r.inputs : undefined;
}

/**
 * The residuals with cheap ones (1 − σ, σ·(1 − σ), 1 − tanh², hᵀ) replaced by what they are computed
 * from, wherever that stores no more (their inputs already stored, or free: the step's carries and
 * xs, which the backward step reads anyway, and values of the consts alone): an LSTM step keeps its
 * four gates and tanh(c) rather than twelve derived values. The dearer ops (exp, tanh, a product)
 * are stored, as JAX's partial evaluation would.
 */
function fewerResiduals(residuals: ReadonlySet<Node>, free: (x: Node) => boolean): Set<Node> {
  const kept = new Set(residuals);
  for (let changed = true; changed; ) {
    changed = false;
    for (const r of [...kept]) {
      const from = recomputedFrom(r);
      if (!from) continue;
      const added = [...new Set(from)].filter((x) => !free(x) && !kept.has(x));
      if (added.reduce((a, x) => a + sizeOf(x.shape), 0) > sizeOf(r.shape)) continue;
      kept.delete(r);
      added.forEach((x) => kept.add(x));
      changed = true;
    }
  }
  return kept;
}

/** Step t of a stacked [s0, T, ...] (or [T]) value, as its per-step block. */
function readStep(x: Float64Array, stacked: Shape, t: number): Float64Array {
  const a = timeAxis(stacked.length - 1);
  const outer = sizeOf(stacked.slice(0, a)), T = stacked[a]!, inner = sizeOf(stacked.slice(a + 1));
  const out = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) out.set(x.subarray((o * T + t) * inner, (o * T + t + 1) * inner), o * inner);
  return out;
}

function writeStep(into: Float64Array, stacked: Shape, t: number, v: Float64Array): void {
  const a = timeAxis(stacked.length - 1);
  const outer = sizeOf(stacked.slice(0, a)), T = stacked[a]!, inner = sizeOf(stacked.slice(a + 1));
  for (let o = 0; o < outer; o++) into.set(v.subarray(o * inner, (o + 1) * inner), (o * T + t) * inner);
}
