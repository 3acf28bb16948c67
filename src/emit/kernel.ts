// Kernel emission: the statements of one planned graph as data (each primitive through its own
// lowering rule, a fused element-wise chain as one statement over a composed expression), rendered
// for the target by src/emit/statements.ts.
import type { Node } from '../ir/node.ts';
import { sizeOf, type Shape } from '../ir/tensor.ts';
import { primOf, prims } from '../prims/index.ts';
import { offsetPlus } from '../prims/kit.ts';
import type { Buf, ElementwiseExpr, EmitHelper, EpilogueExpr, ProgramStep, Statement, StepOfElement, StepTerms } from '../prims/types.ts';
import type { KernelPlan } from './plan.ts';
import { ARENA, blockCopy, NUMERICS } from './statements.ts';

/** Where `n`'s value is read from in `plan`: its buffer (through an alias or a view), or a literal. */
export function bufOf(plan: KernelPlan, n: Node): Buf {
  const alias = plan.aliases.get(n);
  if (alias) {
    const b = bufOf(plan, alias);
    const delta = plan.aliasOffsets.get(n);
    return delta && b.literal === undefined ? { ...b, off: offsetPlus(b, delta) } : b;
  }
  if (plan.views.has(n)) return operandOf(plan, n);

  const literal = plan.literals.get(n);
  if (literal !== undefined) return { arr: ARENA, off: 0, literal };
  const off = plan.offsets.get(n);
  if (off === undefined) throw new Error(`emit: no buffer for a ${n.op} node`);
  return { arr: ARENA, off };
}

/** A product's operand: a transpose is read through its source with swapped indices. */
function operandOf(plan: KernelPlan, n: Node): Buf {
  const src = plan.transposedSource.get(n);
  if (!src) return bufOf(plan, n);
  const b = bufOf(plan, src);
  return { ...b, transposed: !b.transposed };
}

/** The element-wise chain rooted at `n` as data (fused inputs inlined, literals as constants); `product` (an epilogue's) read as the product's value. */
function chainOf(plan: KernelPlan, n: Node, product?: Node): EpilogueExpr {
  const args = n.inputs.map((x): EpilogueExpr => {
    if (x === product) return { product: true };
    if (plan.fused.has(x)) return chainOf(plan, x, product);
    const b = bufOf(plan, x);
    if (b.literal !== undefined) return { value: b.literal };
    if (b.transposed) throw new Error('emit: a transposed view reached an element-wise access');
    return { read: b.off };
  });
  return { op: n.op, args, attrs: n.attrs };
}

/**
 * The kernel statements of a statement primitive (not element-wise) computing `n` into `out`. A
 * product reads a transposed operand through its source, and B copied into panels from them.
 */
function lowered(plan: KernelPlan, n: Node, out: Buf, accumulate: boolean, shapeOf: ShapeOf): Statement[] {
  const prim = primOf(n.op)!;
  if (prim.emit.kind !== 'statements') throw new Error(`emit: ${n.op} has no statement`);
  // B copied into panels before the loop is read from them (plan.panels), held as the copy was made.
  const panels = plan.panels.get(n);
  const operand = (x: Node, i: number): Buf => {
    const b = operandOf(plan, x);
    if (i !== 1 || !panels) return b;
    if ((b.transposed === true) !== panels.shape.transB || b.literal !== undefined) throw new Error('emit: a product\'s B is not held as its panels were copied');
    return { ...b, off: panels.off, panels: true };
  };
  return prim.emit.lower({
    out,
    inputs: n.inputs.map((x, i) => (n.op === 'matmul' ? operand(x, i) : bufOf(plan, x))),
    inShapes: n.inputs.map(shapeOf),
    shape: shapeOf(n),
    attrs: n.attrs,
    ...(accumulate ? { accumulate } : {}),
  });
}

/** The kernel statements computing `n` (a product finishing an element-wise chain is one statement with its epilogue). */
function statementsOf(plan: KernelPlan, n: Node, shapeOf: ShapeOf): Statement[] {
  const prim = primOf(n.op);
  if (!prim) throw new Error(`emit: unknown op ${n.op}`);
  const out = bufOf(plan, n);
  const accumulate = plan.accumulate.has(n);
  const product = plan.epilogues.get(n);
  if (product) {
    const [p] = lowered(plan, product, out, accumulate, shapeOf);
    if (p?.kind !== 'product') throw new Error(`emit: the epilogue of a ${product.op}, which is not a product`);
    return [{ ...p, epilogue: chainOf(plan, n, product) }];
  }
  switch (prim.emit.kind) {
    case 'elementwise':
      return [{ kind: 'elementwise', size: sizeOf(shapeOf(n)), out, expr: chainOf(plan, n) as ElementwiseExpr, accumulate }];
    case 'statements':
      return lowered(plan, n, out, accumulate, shapeOf);
    case 'leaf':
      throw new Error(`emit: leaf ${n.op} has no statement`);
    case 'loop':
      throw new Error(`emit: ${n.op} runs its body over time: it is inlined (unroll) or lowered to loops (a LoopLowering) before kernels are emitted`);
  }
}

/** The shape a node has in the code of one statement (its own, unless a RowView cuts its rows). */
type ShapeOf = (n: Node) => Shape;
const ownShape: ShapeOf = (n) => n.shape;

/**
 * How a loop body's statements run over a prefix of the batch rows (src/emit/packed-rows.ts): the
 * shapes a statement's nodes take in its code (the batch axis cut to the rows computed), and the
 * code after it that completes the rows past them.
 */
export interface RowView {
  shapesIn(statement: Node): ShapeOf | undefined;
  after(statement: Node): readonly Statement[];
}

/** The copies into output slots at the end of a kernel (plan.copies) as statements. */
function copyStatements(plan: KernelPlan): Statement[] {
  return plan.copies.map(({ node, to, accumulate }): Statement => {
    const src = bufOf(plan, node);
    const size = sizeOf(node.shape);
    const out: Buf = { arr: ARENA, off: to };
    // Adding a block into another: a gradient summed from two places, a scan's accumulated carry.
    return accumulate
      ? { kind: 'elementwise', size, out, expr: src.literal !== undefined ? { value: src.literal } : { read: src.off }, accumulate: true }
      : blockCopy(to, src, size);
  });
}

/** How kernelStatements reads a plan. */
export interface StatementOptions {
  /** A packed body's rows, and the tails completing the others. */
  readonly rows?: RowView;
  /** Each statement carries its node's model line (the artifacts compile writes). */
  readonly origins?: boolean;
  /** --check-numerics: a check after each node's statements, inside a loop (naming the step it computes at run time from the loops' variables) or in straight-line code (which names each node's step). */
  readonly checks?: { readonly loop: StepTerms } | 'straight';
  /** In straight-line code, a node holding every step's values at once (of `size` elements): how its check finds the failing element's step. */
  readonly stepsOf?: (n: Node, size: number) => StepOfElement | undefined;
}

/**
 * The kernel's statements as data, copies into output slots included: what a kernel program holds
 * (src/emit/kernel-program.ts). The plan holds no loop.
 */
export function kernelStatements(plan: KernelPlan, opts: StatementOptions = {}): Statement[] {
  return [...plan.order.flatMap((n) => nodeStatements(plan, n, opts)), ...copyStatements(plan)];
}

/** `n`'s statements as kernelStatements reads them: marked with its line, checked, completed past a packed body's rows. */
function nodeStatements(plan: KernelPlan, n: Node, { rows, origins, checks, stepsOf }: StatementOptions): Statement[] {
  const shapeOf = rows?.shapesIn(n) ?? ownShape;
  // (n.origin is formatted on first read: only code a user reads pays for it.)
  const own = statementsOf(plan, n, shapeOf);
  const marked = origins ? own.map((st) => ({ ...st, origin: n.origin ?? null })) : own;
  return [...marked, ...(checks ? checkOf(plan, n, shapeOf, checks, stepsOf) : []), ...(rows?.after(n) ?? [])];
}

/** The check after `n`'s statements: what it wrote is finite (named by the user's line of the op, or the backward pass, which vjp builds with none). */
function checkOf(plan: KernelPlan, n: Node, shapeOf: ShapeOf, checks: NonNullable<StatementOptions['checks']>, stepsOf: StatementOptions['stepsOf']): Statement[] {
  const out = bufOf(plan, n);
  if (out.literal !== undefined || out.transposed) return [];
  const size = sizeOf(shapeOf(n));
  // Straight-line code knows each value's step; a loop says it at run time, and so does a value over all steps.
  const stepOf = checks === 'straight' ? stepsOf?.(n, size) : undefined;
  const at = checks === 'straight' && !stepOf && n.step !== undefined ? ` at step ${n.step}` : '';
  const where = checks !== 'straight' ? { step: checks.loop } : stepOf ? { stepOf } : {};
  return [{ kind: 'check', out, size, what: `${n.origin ?? 'the backward pass'}: ${n.op} [${n.shape.join(', ')}]${at}`, ...where }];
}

/** The kernel as a kernel program: its statements in runs, each scan as the steps `scanSteps` gives it. */
export function kernelProgram(plan: KernelPlan, scanSteps: (n: Node, out: Buf, inputs: readonly Buf[]) => ProgramStep[], opts: StatementOptions = {}): ProgramStep[] {
  const steps: ProgramStep[] = [];
  let run: Statement[] = [];
  const flush = () => {
    if (run.length) steps.push({ kind: 'run', statements: run });
    run = [];
  };
  for (const n of plan.order) {
    if (primOf(n.op)?.emit.kind === 'loop') {
      flush();
      steps.push(...scanSteps(n, bufOf(plan, n), n.inputs.map((x) => bufOf(plan, x))));
    } else run.push(...nodeStatements(plan, n, opts));
  }
  run.push(...copyStatements(plan));
  flush();
  return steps;
}

/**
 * The copies of products' B operands into panels (plan.panelCopies), which a loop's emitter places
 * before the loop: the operands hold still over it, and the copies are made again each time the loop
 * runs (after every optimizer step).
 */
export function panelStatements(plan: KernelPlan): Statement[] {
  return plan.panelCopies.map((c) => ({ kind: 'panels', shape: c.shape, out: c.off, b: operandOf(plan, c.operand).off }));
}

/** `// graphs/sincos.ts:12`: the model file's line that wrote what follows (the backward pass's statements have none). */
export function originComment(origin: string): string {
  return `// ${origin.replace(/[^\x20-\x7e]/g, '?')}\n`;
}

/** The helper functions (e.g. float32 activations, then the numerics check) among `used` (a target's helpers, noted as its code was rendered), in registry order. */
export function helpersIn(used: ReadonlySet<EmitHelper>): EmitHelper[] {
  const ops = Object.values(prims).flatMap((prim) => (prim.emit.kind === 'elementwise' ? (prim.emit.helpers ?? []).filter((h) => used.has(h)) : []));
  return [...ops, ...(used.has(NUMERICS) ? [NUMERICS] : [])];
}

/**
 * What `render` returns, and whether it rendered a call into `kernels` (the table counts the calls
 * it renders): a method binds the kernels only when its code calls them.
 */
export function withKernelCalls<T>(kernels: { readonly callsRendered: number } | undefined, render: () => T): { readonly code: T; readonly callsKernels: boolean } {
  const before = kernels?.callsRendered ?? 0;
  const code = render();
  return { code, callsKernels: (kernels?.callsRendered ?? 0) > before };
}
