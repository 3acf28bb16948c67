// A scan node lowered to a loop over t (the rolled form of a graph model): its body planned once,
// its placeholders bound to per-step slots — the carries, step t's rows of each xs, the consts where
// they already live — and each step's ys copied into their rows of the stacked result.
import type { Node } from '../ir/node.ts';
import { topoOrder } from '../ir/graph.ts';
import { sameShape, sizeOf } from '../ir/tensor.ts';
import { scanParts, timeAxis } from '../prims/scan.ts';
import type { Buf, EmitTarget, ProgramStep, Statement } from '../prims/types.ts';
import { emitKernel, kernelStatements, panelStatements, type LoopLowering } from './kernel.ts';
import { LoopOffsets } from './loop-offsets.ts';
import { blockCopy, callsInWasm, renderStatement } from './statements.ts';
import { callsIn, LOOP_VARIABLES } from './wasm/loops.ts';
import { primOf } from '../prims/index.ts';
import { KERNELS } from './wasm/module.ts';
import { afterPasses, numberLiteral, planOutputs, type OnPass, type Offset, type OutputSlot, type StepInvariants } from './plan.ts';
import type { Context } from '../ir/node.ts';

export interface ScanLoopOptions {
  readonly ctx: Context;
  readonly target: EmitTarget;
  /** Reserves `size` elements of the arena for a loop's own slots and temporaries. */
  reserve(size: number): number;
  /**
   * Where an outermost scan's loop goes as a function of its own (`function scanK(A)`), called from
   * the kernel: V8 optimizes a function only below a size that a whole training step exceeds.
   */
  readonly functions?: {
    readonly arena: string;
    readonly defs: string[];
    /** The type of the target's kernels (the wasm target): a function's second parameter, bound as the kernels' name. */
    readonly kernels?: string;
  };
  readonly onPass?: OnPass;
  /**
   * A window set at run time (a recurrence's sequences, T ≤ τ): every outermost scan over τ steps
   * runs over the first A[slot] of them (a reverse one from step A[slot] − 1), the rest of its
   * stacked values left as they were; the loss weighs the steps past the window by 0.
   */
  readonly window?: { readonly length: number; readonly slot: number };
}

const plus = (off: Offset, k: number | string): string => (k === 0 ? `${off}` : `${off} + ${k}`);
/** `off` k elements further: a number where both are. */
const past = (off: Offset, k: number): Offset => (typeof off === 'number' ? off + k : plus(off, k));
const indent = (lines: readonly string[]) => lines.map((l) => l.replace(/^/gm, '  '));

/** `n` elements from `src` (a buffer, or a literal fill) into the arena at `dst`. */
function copyInto(dst: Offset, src: Buf, srcOff: number | string, n: number): string {
  if (src.literal !== undefined) return `A.fill(${numberLiteral(src.literal)}, ${dst}, ${plus(dst, n)});`;
  const from = plus(src.off, srcOff);
  return `A.copyWithin(${dst}, ${from}, ${from} + ${n});`;
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

/** How a scan node is lowered, prepared once (its storage reserved): its TypeScript, or its steps as data. */
interface PreparedScan {
  readonly text: () => string;
  /** The scan as steps of a kernel program, when it is an outermost scan over fixed storage whose body a target with kernels can run. */
  readonly steps: () => ProgramStep[] | undefined;
}

/** The lowering of every scan node (nested ones too), for emitKernel; `ops` gives an outermost scan as a method's steps. */
export type ScanLowering = LoopLowering & { readonly steps: (n: Node, out: Buf, inputs: readonly Buf[]) => ProgramStep[] | undefined };

/** The lowering of every scan node (nested ones too), for emitKernel. */
export function scanLoops(opts: ScanLoopOptions, depth = 0): ScanLowering {
  // Prepared once per scan node and placement of its operands and result (the same node in two
  // plans may read operands from different places): its storage is reserved when first lowered.
  const prepared = new Map<Node, Map<string, PreparedScan>>();
  const prepare = (n: Node, out: Buf, inputs: readonly Buf[]): PreparedScan => {
    const key = [out, ...inputs].map((b) => `${String(b.off)}:${b.literal ?? ''}:${b.transposed ? 't' : ''}`).join('|');
    const known = prepared.get(n)?.get(key);
    if (known) return known;
    const made = prepareScan(opts, depth, n, out, inputs);
    if (!prepared.has(n)) prepared.set(n, new Map());
    prepared.get(n)!.set(key, made);
    return made;
  };
  const lowering = (n: Node, out: Buf, inputs: readonly Buf[]) => prepare(n, out, inputs).text();
  return Object.assign(lowering, { steps: (n: Node, out: Buf, inputs: readonly Buf[]) => prepare(n, out, inputs).steps() });
}

function prepareScan(opts: ScanLoopOptions, depth: number, n: Node, out: Buf, inputs: readonly Buf[]): PreparedScan {
  {
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
    const t = `t${depth}`, i = `i${depth}`;
    // Step t of a stacked value whose steps are contiguous blocks ([1, T, ...], or [T] of scalars: a
    // VJP's own stacks are laid out so) is read and written where it lives; other layouts ([B, T, ...]:
    // B rows per step, T apart) are copied into a slot of the step and out of it.
    const xSteps = body.inputs.slice(nc, nc + nx);
    const ys = body.outputs.slice(nc);
    const inPlace = (step: readonly number[], buf?: Buf) => rows(step).outer === 1 && buf?.literal === undefined && !buf?.transposed;
    const xDirect = xSteps.map((p, j) => inPlace(p.shape, inputs[nc + j]));
    const yDirect = ys.map((y) => inPlace(y.shape));
    // An outermost scan over fixed storage names its per-step offsets as data (StepOffsets), so the
    // target may run its loop itself; a nested one's are expressions of the enclosing loop.
    const fixed = typeof out.off === 'number' && inputs.every((b) => typeof b.off === 'number');
    const stepOffsets = depth === 0 && fixed ? new LoopOffsets(t) : undefined;
    const handedOut: Offset[] = [];
    const declared: string[] = [];
    const at = (name: string, base: Offset, inner: number): Offset => {
      if (stepOffsets && typeof base === 'number') {
        const off = stepOffsets.at({ base, stride: inner });
        handedOut.push(off);
        return off;
      }
      declared.push(`const ${name} = ${plus(base, `${t} * ${inner}`)};`);
      return name;
    };
    const xCopied = region(xSteps.map((p, j) => (xDirect[j] ? 0 : sizeOf(p.shape))));
    const xOff: Offset[] = xSteps.map((p, j) => (xDirect[j] ? at(`x${depth}_${j}`, inputs[nc + j]!.off, sizeOf(p.shape)) : xCopied[j]!));
    // A per-step output that is also a carry's new value (a layer's h) is copied out of that carry's
    // slot after the step, not computed into a slot of its own as well.
    const carrySlot = ys.map((y, j) => {
      const i = body.outputs.indexOf(y);
      return !yDirect[j] && i < nc && !deltas[i] ? next[i] : undefined;
    });
    const yCopied = region(ys.map((y, j) => (yDirect[j] || carrySlot[j] !== undefined ? 0 : sizeOf(y.shape))));
    const yOff: Offset[] = ys.map((y, j) => (yDirect[j] ? at(`y${depth}_${j}`, past(out.off, parts[nc + j]!.offset), sizeOf(y.shape)) : carrySlot[j] ?? yCopied[j]!));
    // Consts: read where they live; a literal (a fill) gets a slot, filled before the loop.
    const constBufs = inputs.slice(nc + nx);
    const constPh = body.inputs.slice(nc + nx);
    const prologue: string[] = [];
    const prologueMoves: { to: number; from: Buf; size: number }[] = [];
    const constOff = constBufs.map((b, k) => {
      if (b.literal === undefined && !b.transposed) return b.off;
      const [off] = region([sizeOf(constPh[k]!.shape)]);
      prologue.push(copyInto(off!, b, 0, sizeOf(constPh[k]!.shape)));
      prologueMoves.push({ to: off!, from: b, size: sizeOf(constPh[k]!.shape) });
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

    const kernels = opts.target.kernels;
    // An xs the step does not read (a VJP's backward step given every forward xs) is not copied.
    const read = new Set(topoOrder(body.outputs));
    /** Where step t of a stacked value starts (rows T·inner apart). */
    const stepOf = (base: Offset, inner: number): Offset => (stepOffsets && typeof base === 'number' ? stepOffsets.at({ base, stride: inner }) : plus(base, `${t} * ${inner}`));
    // A target with its own kernels copies a step's rows in one statement (rows T·inner apart to or from a block).
    const rowsCopy = (outer: number, inner: number, to: Offset, toStride: number, from: Offset, fromStride: number): Statement => ({
      kind: 'copy', dims: [outer, inner], out: { arr: 'A', off: to }, outStrides: [toStride, 1], x: { arr: 'A', off: from }, xStrides: [fromStride, 1], accumulate: false,
    });
    // (As statements for every target: the program renders them; the text path below renders its own on ts.)
    const stepInStatements = xSteps.flatMap((p, j): Statement[] => {
      const src = inputs[nc + j]!;
      if (xDirect[j] || !read.has(p)) return [];
      const { outer, inner } = rows(p.shape);
      if (src.literal !== undefined) return [{ kind: 'fill', size: outer * inner, value: src.literal, out: { arr: 'A', off: xOff[j]! } }];
      return [rowsCopy(outer, inner, xOff[j]!, inner, stepOf(src.off, inner), T * inner)];
    });
    const stepOutStatements = ys.flatMap((y, j): Statement[] => {
      if (yDirect[j]) return [];
      const { outer, inner } = rows(y.shape);
      return [rowsCopy(outer, inner, stepOf(past(out.off, parts[nc + j]!.offset), inner), T * inner, yOff[j]!, inner)];
    });
    const stepInCopies = kernels ? stepInStatements.filter((st) => st.kind === 'copy') : [];
    const stepOutCopies = kernels ? stepOutStatements : [];
    const stepIn = xSteps.flatMap((p, j) => {
      if (xDirect[j] || !read.has(p)) return [];
      const { outer, inner } = rows(p.shape);
      const src = inputs[nc + j]!;
      if (src.literal !== undefined) return copyInto(xOff[j]!, src, 0, outer * inner);
      if (kernels) return [];
      return `for (let r = 0; r < ${outer}; r++) ${copyInto(`${xOff[j]} + r * ${inner}`, src, `(r * ${T} + ${t}) * ${inner}`, inner)}`;
    });
    const stepOut = kernels ? [] : ys.flatMap((y, j) => {
      if (yDirect[j]) return [];
      const { inner, outer } = rows(y.shape);
      const dst = plus(out.off, parts[nc + j]!.offset);
      return `for (let r = 0; r < ${outer}; r++) A.copyWithin(${dst} + (r * ${T} + ${t}) * ${inner}, ${yOff[j]} + r * ${inner}, ${yOff[j]} + (r + 1) * ${inner});`;
    });
    const carrySize = plain.reduce((a, i) => a + carrySizes[i]!, 0);
    // The steps the loop runs: all T, or the window's first W (read from the arena: set per window).
    const windowed = depth === 0 && opts.window?.length === T;
    const steps = windowed ? `W${depth}` : `${T}`;
    // On a target that runs loops itself, the loop is one call when every statement of it is a kernel.
    // The loop body as statements (a target with kernels: the rows of each step copied in and out, the carries' double buffer).
    const carryCopy: Statement[] = carrySize ? [blockCopy(plainCur[0]!, plainNext[0]!, carrySize)] : [];
    const asProgram = stepOffsets && !plan.order.some((x) => primOf(x.op)?.emit.kind === 'loop');
    const loopBody = asProgram ? [...stepInStatements, ...kernelStatements(plan, { origins: opts.target.originComments === true, ...(opts.target.checkNumerics ? { checks: 'loop' } : {}) }), ...carryCopy, ...stepOutStatements] : undefined;
    // The loop over t in TypeScript (its statements rendered only when it runs there).
    const loopText = (): string[] => {
      const stepCode = emitKernel(plan, opts.target, scanLoops(opts, depth + 1), t);
      const copies = { in: stepInCopies.map((st) => renderStatement(st, opts.target)), out: stepOutCopies.map((st) => renderStatement(st, opts.target)) };
      const offsets = stepOffsets?.declarationsFor([...handedOut, ...[...stepInCopies, ...stepOutCopies].flatMap((st) => (st.kind === 'copy' ? [st.out.off, st.x.off] : [])), ]) ?? [];
      return [
        `for (let ${i} = 0; ${i} < ${steps}; ${i}++) {`,
        ...indent([
          ...(stepIn.length + stepOut.length + copies.in.length + copies.out.length + declared.length + offsets.length || opts.target.checkNumerics ? [`const ${t} = ${reverse ? (windowed ? `${steps} - 1 - ${i}` : `${T - 1} - ${i}`) : i};`] : []),
          ...declared,
          ...offsets,
          ...stepIn,
          ...copies.in,
          ...stepCode,
          ...(carrySize ? [`A.copyWithin(${plainCur[0]}, ${plainNext[0]}, ${plainNext[0]! + carrySize});`] : []),
          ...stepOut,
          ...copies.out,
        ]),
        '}',
      ];
    };
    // The scan as text (when it is not a step of a program), rendered once when first asked for: its
    // loop one call on a target that runs loops itself when every statement of the body has a kernel
    // there, else TypeScript.
    let rendered: string[] | undefined;
    const code = (): string[] => (rendered ??= renderCode());
    const renderCode = (): string[] => {
      const wasmCalls = loopBody && kernels?.attempt(() => {
        const calls = callsInWasm(loopBody, kernels);
        return calls && callsIn(calls, LOOP_VARIABLES) ? calls : undefined;
      });
      return [
        `{ // scan over ${T} steps${reverse ? ', reverse' : ''}: ${nc} carr${nc === 1 ? 'y' : 'ies'}, ${nx} xs, ${constPh.length} consts`,
        ...indent([
          ...prologue,
          ...inputs.slice(0, nc).map((b, k) => copyInto(cur[k]!, b, 0, carrySizes[k]!)),
          ...panelStatements(plan).map((st) => renderStatement(st, opts.target)),
          ...(windowed ? [`const ${steps} = A[${opts.window!.slot}]!;`] : []),
          ...(wasmCalls ? [String(kernels!.loop({ reverse, calls: wasmCalls }, 0, windowed ? steps : T))] : loopText()),
          ...carrySizes.map((s, k) => `A.copyWithin(${plus(out.off, parts[k]!.offset)}, ${cur[k]}, ${cur[k]! + s});`),
        ]),
        '}',
      ];
    };
    // The scan as steps of a kernel program: the consts' and carries' copies in, the panels, the
    // loop, the carries out (every offset fixed: an outermost scan over fixed storage).
    const programSteps = (): ProgramStep[] | undefined => {
      if (!loopBody || !fixed) return undefined;
      const move = (to: number, from: Buf, size: number): Statement => (from.literal !== undefined
        ? { kind: 'fill', size, value: from.literal, out: { arr: 'A', off: to } }
        : blockCopy(to, from.off, size));
      const steps: ProgramStep[] = [
        { kind: 'run', statements: [...prologueMoves.map((m) => move(m.to, m.from, m.size)), ...inputs.slice(0, nc).map((b, k) => move(cur[k]!, b, carrySizes[k]!)), ...panelStatements(plan)] },
        { kind: 'loop', reverse, lo: 0, hi: windowed ? { slot: opts.window!.slot } : T, body: loopBody },
        { kind: 'run', statements: carrySizes.map((size, k) => move((out.off as number) + parts[k]!.offset, { arr: 'A', off: cur[k]! }, size)) },
      ];
      // An outermost scan is a function of its own on ts (V8 optimizes a function only below a size a whole step exceeds).
      return opts.functions ? [{ kind: 'function', steps }] : steps;
    };
    const text = (): string => {
      // Offsets that are expressions belong to an enclosing loop: such a scan stays inline.
      if (!opts.functions || depth > 0 || !fixed) return code().join('\n');
      const name = `scan${opts.functions.defs.length}`;
      const kernelType = opts.functions.kernels;
      opts.functions.defs.push([`function ${name}(A: ${opts.functions.arena}${kernelType ? `, ${KERNELS}: ${kernelType}` : ''}): void {`, ...indent(code()), '}'].join('\n'));
      return `${name}(A${kernelType ? `, ${KERNELS}` : ''});`;
    };
    return { text, steps: programSteps };
  }
}
