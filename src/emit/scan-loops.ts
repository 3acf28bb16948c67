// A scan node lowered to a loop over t (the rolled form of a graph model): its body planned once,
// its placeholders bound to per-step slots — the carries, step t's rows of each xs, the consts where
// they already live — and each step's ys copied into their rows of the stacked result.
import type { Node } from '../ir/node.ts';
import { topoOrder } from '../ir/graph.ts';
import { sameShape, sizeOf } from '../ir/tensor.ts';
import { scanParts, timeAxis } from '../prims/scan.ts';
import type { Bound, Buf, EmitTarget, ProgramStep, Statement, StepOffset } from '../prims/types.ts';
import { kernelProgram, panelStatements, type StatementOptions } from './kernel.ts';
import { LoopOffsets } from './loop-offsets.ts';
import { blockCopy } from './statements.ts';
import { primOf } from '../prims/index.ts';
import { offsetAt } from '../prims/kit.ts';
import { afterPasses, planOutputs, type OnPass, type Offset, type OutputSlot, type StepInvariants } from './plan.ts';
import type { Context } from '../ir/node.ts';

export interface ScanLoopOptions {
  readonly ctx: Context;
  readonly target: EmitTarget;
  /** Reserves `size` elements of the arena for a loop's own slots and temporaries. */
  reserve(size: number): number;
  /**
   * Each outermost scan a `function` step (a function of its own on ts: V8 optimizes a function
   * only below a size that a whole training step exceeds).
   */
  readonly functions?: boolean;
  readonly onPass?: OnPass;
  /**
   * A window set at run time (a recurrence's sequences, T ≤ τ): every outermost scan over τ steps
   * runs over the first A[slot] of them (a reverse one from step A[slot] − 1), the rest of its
   * stacked values left as they were; the loss weighs the steps past the window by 0.
   */
  readonly window?: { readonly length: number; readonly slot: number };
}

/**
 * For each carry, the value d it is incremented by when its new value is c + d and its placeholder
 * c is read by nothing else (so adding d into c in place is the same step); undefined otherwise.
 */
function accumulations(body: NonNullable<Node['body']>, nc: number): (Node | undefined)[] {
  const uses = new Map<Node, number>();
  for (const n of topoOrder(body.outputs)) for (const x of n.inputs) uses.set(x, (uses.get(x) ?? 0) + 1);
  for (const o of body.outputs) uses.set(o, (uses.get(o) ?? 0) + 1);
  return body.outputs.slice(0, nc).map((o, i) => {
    const c = body.inputs[i]!;
    if (o.op !== 'add' || uses.get(c) !== 1 || uses.get(o) !== 1) return undefined;
    const [a, b] = o.inputs as [Node, Node];
    if (!sameShape(a.shape, b.shape) || !sameShape(o.shape, c.shape)) return undefined;
    return a === c ? b : b === c ? a : undefined;
  });
}

/** Rows of step t in a stacked [s0, T, ...] value: outer rows of `inner` elements. */
function rows(step: readonly number[]): { outer: number; inner: number } {
  const a = timeAxis(step.length);
  return { outer: sizeOf(step.slice(0, a)), inner: sizeOf(step.slice(a)) };
}

/** The lowering of every scan node (nested ones too): its steps in a kernel program (a nested scan's inside the loop of the scan holding it). */
export type ScanLowering = (n: Node, out: Buf, inputs: readonly Buf[]) => ProgramStep[];

/**
 * The lowering of every scan node at `depth` (0: outermost; a scan's body's scans are one deeper,
 * inside the nest over `enclosing`, the variable of the scan holding them).
 */
export function scanLoops(opts: ScanLoopOptions, depth = 0, enclosing?: string): ScanLowering {
  // Prepared once per scan node and placement of its operands and result (the same node in two
  // plans may read operands from different places): its storage is reserved when first lowered.
  const prepared = new Map<Node, Map<string, ProgramStep[]>>();
  return (n, out, inputs) => {
    const key = [out, ...inputs].map((b) => `${String(b.off)}:${b.literal ?? ''}`).join('|');
    const known = prepared.get(n)?.get(key);
    if (known) return known;
    const made = scanSteps(opts, depth, enclosing, n, out, inputs);
    if (!prepared.has(n)) prepared.set(n, new Map());
    prepared.get(n)!.set(key, made);
    return made;
  };
}

/** Adjacent runs of statements as one. */
function joinRuns(steps: readonly ProgramStep[]): ProgramStep[] {
  const joined: ProgramStep[] = [];
  for (const step of steps) {
    const last = joined[joined.length - 1];
    if (step.kind === 'run' && last?.kind === 'run') joined[joined.length - 1] = { kind: 'run', statements: [...last.statements, ...step.statements] };
    else if (step.kind !== 'run' || step.statements.length) joined.push(step);
  }
  return joined;
}

/**
 * A scan as steps of a kernel program: the consts' and carries' copies in, the panels, the loop over
 * its steps (whose body holds loops when the scan's body holds scans), the carries out.
 */
function scanSteps(opts: ScanLoopOptions, depth: number, enclosing: string | undefined, n: Node, out: Buf, inputs: readonly Buf[]): ProgramStep[] {
  // (A transposed view is one only products read.)
  if (inputs.some((b) => b.transposed)) throw new Error('emit: a transposed view reached a scan\'s operand');
  const body = n.body!;
  const nc = n.attrs['carries'] as number, nx = n.attrs['xs'] as number;
  const T = n.attrs['length'] as number, reverse = n.attrs['reverse'] === true;
  const parts = scanParts(n);
  const carrySizes = body.inputs.slice(0, nc).map((p) => sizeOf(p.shape));
  const region = (sizes: readonly number[]) => {
    const base = opts.reserve(sizes.reduce((a, s) => a + s, 0));
    let at = base;
    return sizes.map((s) => ((at += s), at - s));
  };
  // A carry that only accumulates (c' = c + d, c read nowhere else: a VJP's sum of a const's
  // cotangents over the steps) is added into where it lives; the others are double-buffered, the
  // new values copied over the old after each step in one block.
  const deltas = accumulations(body, nc);
  const plain = carrySizes.flatMap((_, i) => (deltas[i] ? [] : [i]));
  const plainCur = region(plain.map((i) => carrySizes[i]!)), plainNext = region(plain.map((i) => carrySizes[i]!));
  const cur: number[] = [], next: (number | undefined)[] = [];
  plain.forEach((i, k) => ((cur[i] = plainCur[k]!), (next[i] = plainNext[k]!)));
  carrySizes.forEach((size, i) => { if (deltas[i]) cur[i] = region([size])[0]!; });
  // A loop whose body holds loops names its own variable (theirs is t) and its offsets' locals apart.
  const nested = topoOrder(body.outputs).some((x) => primOf(x.op)?.emit.kind === 'loop');
  const variable = nested ? `t${depth}` : 't';
  const offsets = new LoopOffsets(variable, depth === 0 ? 'q' : `q${depth}_`);
  // Step t of a stacked value whose steps are contiguous blocks ([1, T, ...], or [T] of scalars: a
  // VJP's own stacks are laid out so) is read and written where it lives; other layouts ([B, T, ...]:
  // B rows per step, T apart) are copied into a slot of the step and out of it.
  const xSteps = body.inputs.slice(nc, nc + nx);
  const ys = body.outputs.slice(nc);
  const inPlace = (step: readonly number[], buf?: Buf) => rows(step).outer === 1 && buf?.literal === undefined;
  const xDirect = xSteps.map((p, j) => inPlace(p.shape, inputs[nc + j]));
  const yDirect = ys.map((y) => inPlace(y.shape));
  /** Where step t of a stacked value starts (rows T·inner apart). */
  const stepOf = (base: Offset, inner: number): StepOffset => offsets.step(base, inner);
  const xCopied = region(xSteps.map((p, j) => (xDirect[j] ? 0 : sizeOf(p.shape))));
  const xOff: Offset[] = xSteps.map((p, j) => (xDirect[j] ? stepOf(inputs[nc + j]!.off, sizeOf(p.shape)) : xCopied[j]!));
  // A per-step output that is also a carry's new value (a layer's h) is copied out of that carry's
  // slot after the step, not computed into a slot of its own as well.
  const carrySlot = ys.map((y, j) => {
    const i = body.outputs.indexOf(y);
    return !yDirect[j] && i < nc && !deltas[i] ? next[i] : undefined;
  });
  const yCopied = region(ys.map((y, j) => (yDirect[j] || carrySlot[j] !== undefined ? 0 : sizeOf(y.shape))));
  const yOff: Offset[] = ys.map((y, j) => (yDirect[j] ? stepOf(offsetAt(out.off, parts[nc + j]!.offset), sizeOf(y.shape)) : carrySlot[j] ?? yCopied[j]!));
  // Consts: read where they live; a literal (a fill) gets a slot, filled before the loop.
  const constBufs = inputs.slice(nc + nx);
  const constPh = body.inputs.slice(nc + nx);
  const move = (to: Offset, from: Buf, size: number): Statement => (from.literal !== undefined
    ? { kind: 'fill', size, value: from.literal, out: { arr: 'A', off: to } }
    : blockCopy(to, from.off, size));
  const prologue: Statement[] = [];
  const constOff = constBufs.map((b, k): Offset => {
    if (b.literal === undefined) return b.off;
    const [off] = region([sizeOf(constPh[k]!.shape)]);
    prologue.push(move(off!, b, sizeOf(constPh[k]!.shape)));
    return off!;
  });
  const pinned = new Map<Node, Offset>([
    ...body.inputs.slice(0, nc).map((p, i): [Node, Offset] => [p, cur[i]!]),
    ...xSteps.map((p, j): [Node, Offset] => [p, xOff[j]!]),
    ...constPh.map((p, k): [Node, Offset] => [p, constOff[k]!]),
  ]);
  const slots = afterPasses<OutputSlot>([
    ...body.outputs.slice(0, nc).map((o, i) => (deltas[i] ? { node: deltas[i], slot: cur[i]!, accumulate: true } : { node: o, slot: next[i]! })),
    ...ys.flatMap((o, j) => (carrySlot[j] === undefined ? [{ node: o, slot: yOff[j]! }] : [])),
  ], opts.ctx, opts.onPass);
  // The consts hold still over the loop: a product's B among them may be read from panels the
  // target copies it into before the loop (each time the scan runs, so after every optimizer step).
  const still: StepInvariants = { nodes: new Set(constPh), kernels: opts.target.kernels };
  // Planned once to learn the temporaries' size (panels included), then at the region reserved for them.
  const tempBase = opts.reserve(planOutputs(slots, pinned, 0, still).tempSize);
  const plan = planOutputs(slots, pinned, tempBase, still);

  // An xs the step does not read (a VJP's backward step given every forward xs) is not copied.
  const read = new Set(topoOrder(body.outputs));
  // A step's rows copied in one statement (rows T·inner apart to or from a block).
  const rowsCopy = (outer: number, inner: number, to: Offset, toStride: number, from: Offset, fromStride: number): Statement => ({
    kind: 'copy', dims: [outer, inner], out: { arr: 'A', off: to }, outStrides: [toStride, 1], x: { arr: 'A', off: from }, xStrides: [fromStride, 1], accumulate: false,
  });
  const stepIn = xSteps.flatMap((p, j): Statement[] => {
    const src = inputs[nc + j]!;
    if (xDirect[j] || !read.has(p)) return [];
    const { outer, inner } = rows(p.shape);
    if (src.literal !== undefined) return [{ kind: 'fill', size: outer * inner, value: src.literal, out: { arr: 'A', off: xOff[j]! } }];
    return [rowsCopy(outer, inner, xOff[j]!, inner, stepOf(src.off, inner), T * inner)];
  });
  const stepOut = ys.flatMap((y, j): Statement[] => {
    if (yDirect[j]) return [];
    const { outer, inner } = rows(y.shape);
    return [rowsCopy(outer, inner, stepOf(offsetAt(out.off, parts[nc + j]!.offset), inner), T * inner, yOff[j]!, inner)];
  });
  const carrySize = plain.reduce((a, i) => a + carrySizes[i]!, 0);
  const carryCopy: Statement[] = carrySize ? [blockCopy(plainCur[0]!, plainNext[0]!, carrySize)] : [];
  // The step's statements; a scan in the body is a loop inside this one, one deeper. A check names
  // the step t, or inside a nest's segment of T steps the step t0·T + t (a segmented scan's own);
  // a nest's own statements, over a whole segment, name none.
  const checks: StatementOptions['checks'] = nested ? 'straight' : { loop: enclosing ? { [enclosing]: T, t: 1 } : { t: 1 } };
  const step = kernelProgram(plan, scanLoops(opts, depth + 1, nested ? variable : undefined), {
    origins: opts.target.originComments === true, ...(opts.target.checkNumerics ? { checks } : {}),
  });
  // The steps the loop runs: all T, or the window's first A[slot] (set per window).
  const windowed = depth === 0 && opts.window?.length === T;
  const hi: Bound = windowed ? { slot: opts.window!.slot } : T;
  const loop: ProgramStep = nested
    ? { kind: 'nest', index: variable, reverse, lo: 0, hi, steps: joinRuns([{ kind: 'run', statements: stepIn }, ...step, { kind: 'run', statements: [...carryCopy, ...stepOut] }]) }
    : { kind: 'loop', reverse, lo: 0, hi, body: [...stepIn, ...step.flatMap((s) => (s.kind === 'run' ? s.statements : [])), ...carryCopy, ...stepOut] };
  const steps: ProgramStep[] = joinRuns([
    { kind: 'run', statements: [...prologue, ...inputs.slice(0, nc).map((b, k) => move(cur[k]!, b, carrySizes[k]!)), ...panelStatements(plan)] },
    loop,
    { kind: 'run', statements: carrySizes.map((size, k) => move(offsetAt(out.off, parts[k]!.offset), { arr: 'A', off: cur[k]! }, size)) },
  ]);
  // An outermost scan is a function of its own on ts (V8 optimizes a function only below a size a whole step exceeds).
  return opts.functions && depth === 0 ? [{ kind: 'function', steps }] : steps;
}
