// The contract every primitive fulfils: shape rule, evaluation, derivative and emission, in one place.

import type { Attrs, Body, Node } from '../ir/node.ts';
import type { Dtype, Shape } from '../ir/tensor.ts';

/**
 * An arena offset that moves with a loop over t: base + plus + Σ coefs[v]·v over the loop's
 * variables (t, and lo, a segment's first step). TypeScript reads it as the local the loop declares
 * (`q0`, or `(q0 + 32)` with plus = 32: the text is its toString); the wasm target computes it from
 * the variables.
 */
export interface StepOffset {
  /** The loop's local holding base + Σ coefs[v]·v. */
  readonly local: string;
  readonly base: number;
  readonly coefs: Readonly<Record<string, number>>;
  readonly plus: number;
  /** The offset k elements further. */
  shift(k: number): StepOffset;
  toString(): string;
}

/** Where a value lives in the arena: an element index, or a step's offset inside a loop (data either way: no offset is code). */
export type Offset = number | StepOffset;

/**
 * A value in the emitted arena: element i lives at `${arr}[${off} + i]`, or is the number `literal` for every i.
 * `off` may be a step's offset (inside a loop). A `transposed` matrix buffer holds
 * the row-major transpose of the logical value: element (r, c) of an [R, C] value is at c·R + r.
 */
export interface Buf {
  readonly arr: string;
  readonly off: Offset;
  readonly literal?: number;
  readonly transposed?: boolean;
  /**
   * A product's B copied by the target into panels before the loop the product runs in (see
   * TargetKernels.panelElements): read only by products, `transposed` saying how the copy's source is held.
   */
  readonly panels?: boolean;
}

/** A matrix product as data: out[m×n] = (or +=) A·B, with A ([m, k]) and/or B ([k, n]) held transposed. */
export interface ProductShape {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  readonly transA: boolean;
  readonly transB: boolean;
  readonly accumulate: boolean;
  /** B is read from the panels `TargetKernels.packPanels` copied it into (`transB`: how the copy's source is held). */
  readonly panels?: boolean;
}

/**
 * A fused element-wise chain as data: element i of the buffer at offset `read`, a constant
 * `value` (any float, ±Infinity and NaN included), or an element-wise primitive (by name, with
 * its node's attrs, e.g. compare's kind) over sub-chains.
 */
export type ElementwiseExpr =
  | { readonly read: Offset }
  | { readonly value: number }
  | { readonly op: string; readonly args: readonly ElementwiseExpr[]; readonly attrs: Attrs };

/**
 * A kernel statement as data: what lowering makes of one planned node, and the closed set every
 * target renders (src/emit/statements.ts holds the table, typed over the kinds, so a target without
 * a rule for a kind does not compile). Buffers are arena offsets (numbers, or per-step expressions
 * inside loops); a literal `Buf` reads as its value everywhere.
 */
export type Statement =
  | CheckStatement
  | PanelsStatement
  | ProductStatement
  | ElementwiseStatement
  | CopyStatement
  | FillStatement
  | ValuesStatement
  | ReduceStatement
  | GatherStatement
  | ScatterAddStatement;

/** Where a statement comes from, for a comment above it: the model file's line, null for what the compiler derived (the loss, the backward pass); absent, no comment. */
export interface StatementOrigin {
  readonly origin?: string | null;
}

/**
 * --check-numerics: every one of `size` elements at out is finite, else the step stops with one line
 * naming `what` (the model file's line of the op, its shape) and, inside a loop, the step t + 1.
 */
export interface CheckStatement extends StatementOrigin {
  readonly kind: 'check';
  readonly out: Buf;
  readonly size: number;
  readonly what: string;
  /**
   * Inside a loop: the step the message names (its value + 1) as Σ coefficient·variable over the
   * loops' variables (`{ t: 1 }`; a segment's step t0·K + t).
   */
  readonly step?: StepTerms;
  /** Outside the loops, a value computed over all steps at once: how the message finds the step of the element that failed. */
  readonly stepOf?: StepOfElement;
}

/**
 * Where a value holds every step's elements at once, element e's step: ⌊e / every⌋, modulo
 * `modulo` when given — step-major rows ([τ·B, n]: every = B·n) or batch-major ones ([B·T, n]:
 * every = n, modulo T).
 */
export interface StepOfElement {
  readonly every: number;
  readonly modulo?: number;
}

/** A step index in the variables of the loops around a statement: Σ terms[v]·v. */
export type StepTerms = Readonly<Record<string, number>>;

/**
 * B of the products read from panels (`shape.panels`) copied into them at `out`: a target with
 * product kernels plans these (TargetKernels.panelElements), before a loop whose steps read B.
 */
export interface PanelsStatement extends StatementOrigin {
  readonly kind: 'panels';
  readonly shape: ProductShape;
  readonly out: Offset;
  readonly b: Offset;
}

/** out[m×n] = (or +=) A·B (`shape`); with `epilogue`, out holds that chain over the product's value instead. */
export interface ProductStatement extends StatementOrigin {
  readonly kind: 'product';
  readonly shape: ProductShape;
  readonly out: Buf;
  readonly a: Buf;
  readonly b: Buf;
  /** An element-wise chain in which `{ product: true }` stands for the product's element (a bias add finished in registers). */
  readonly epilogue?: EpilogueExpr;
}

/** A chain over a product's value: ElementwiseExpr plus the leaf standing for that value. */
export type EpilogueExpr =
  | { readonly product: true }
  | { readonly read: Offset }
  | { readonly value: number }
  | { readonly op: string; readonly args: readonly EpilogueExpr[]; readonly attrs: Attrs };

/** out[i] = (or +=) expr(i) for i < size: a fused element-wise chain. */
export interface ElementwiseStatement extends StatementOrigin {
  readonly kind: 'elementwise';
  readonly size: number;
  readonly out: Buf;
  readonly expr: ElementwiseExpr;
  readonly accumulate: boolean;
}

/**
 * out[Σ i_d·outStrides[d]] = (or +=) x[Σ i_d·xStrides[d]] for every i < dims, in row-major order:
 * slices, concatenations' parts, pads' interiors, transposes, broadcasts (a 0 stride in x) and
 * plain copies. Distinct i write distinct elements of out.
 */
export interface CopyStatement extends StatementOrigin {
  readonly kind: 'copy';
  readonly dims: readonly number[];
  readonly out: Buf;
  readonly outStrides: readonly number[];
  readonly x: Buf;
  readonly xStrides: readonly number[];
  readonly accumulate: boolean;
}

/** out[i] = value for i < size. */
export interface FillStatement extends StatementOrigin {
  readonly kind: 'fill';
  readonly size: number;
  readonly value: number;
  readonly out: Buf;
}

/** out[i] = data[i]: a constant tensor written whole. */
export interface ValuesStatement extends StatementOrigin {
  readonly kind: 'values';
  readonly data: readonly number[];
  readonly out: Buf;
}

/**
 * out (x's `shape` without `axes`) = (or, for sum, +=) the sum or max of x over `axes`, each
 * element accumulated over the reduced axes in row-major order (the interpreter's order).
 */
export interface ReduceStatement extends StatementOrigin {
  readonly kind: 'reduce';
  readonly op: 'sum' | 'max';
  readonly shape: Shape;
  readonly axes: readonly number[];
  readonly out: Buf;
  readonly x: Buf;
  readonly accumulate: boolean;
}

/**
 * out[n·width + j] = table[k·width + j], k = indices[n], for n < count: rows of a [rows, width]
 * table at integer indices (data: an index not an integer in 0..rows-1 stops the step with a RangeError naming it).
 */
export interface GatherStatement extends StatementOrigin {
  readonly kind: 'gather';
  readonly rows: number;
  readonly width: number;
  readonly count: number;
  readonly out: Buf;
  readonly table: Buf;
  readonly indices: Buf;
}

/** out ([rows, width]) = 0, then out[k·width + j] += values[n·width + j], k = indices[n], for n < count in order (checked as gather). */
export interface ScatterAddStatement extends StatementOrigin {
  readonly kind: 'scatterAdd';
  readonly rows: number;
  readonly width: number;
  readonly count: number;
  readonly out: Buf;
  readonly values: Buf;
  readonly indices: Buf;
}

/**
 * A call of one of a target's kernels, as data: its export and the arena offsets it takes (or, for
 * a loop, the expressions of its bounds). Its TypeScript text is its toString, e.g. `W.mm0(12, 40, q0);`.
 */
export interface KernelCall {
  readonly kernel: string;
  readonly args: readonly Offset[];
  /**
   * A call whose kernel can fail (a gather's or scatter-add's bad index, --check-numerics' first
   * value not finite): it returns the position (−1: none), at which the arena holds the bad value
   * past argument `valueArg`'s offset. A loop or method holding it returns its failure `site` (the
   * module's `failure` function gives the error there), the position, the value and the step (`step`
   * computed from the loops' variables, or −1).
   */
  readonly checked?: { readonly site: number; readonly valueArg: number; readonly step?: StepTerms };
  toString(): string;
}

/**
 * A target that runs kernels of its own (wasm): the call of one for a statement. Offsets are element
 * indices into the arena (numbers, or a step's offsets inside loops).
 */
export interface TargetKernels {
  /** Calls rendered so far: code rendered while this grew calls the kernels (the method holding it binds them). */
  readonly callsRendered: number;
  product(shape: ProductShape, out: Offset, a: Offset, b: Offset): KernelCall;
  /** out = (or +=) A·B with both operands literals (every element of A `a`, of B `b`): every element of out the same value. */
  productOfLiterals(shape: ProductShape, out: Offset, a: number, b: number): KernelCall;
  /** out += epilogue(A·B), for a product that accumulates: the product into scratch, then the chain adding into out. */
  productAddingEpilogue(shape: ProductShape, out: Offset, a: Offset, b: Offset, epilogue: EpilogueExpr): KernelCall;
  /** The product with one operand a literal (`operand`, every element `value`) and the other at `other`. */
  productOverLiteral(shape: ProductShape, out: Offset, other: Offset, literal: { readonly operand: 'a' | 'b'; readonly value: number }): KernelCall;
  /** out[i] = (or +=) expr for i < size. A target with kernels has one for every element-wise primitive. */
  elementwise(expr: ElementwiseExpr, size: number, out: Offset, accumulate: boolean): KernelCall;
  /** out[Σ i_d·outStrides[d]] = (or +=) x[Σ i_d·xStrides[d]] for every i < dims (a 0 stride in x broadcasts). */
  strided(dims: readonly number[], outStrides: readonly number[], xStrides: readonly number[], accumulate: boolean, out: Offset, x: Offset): KernelCall;
  /** out[i] = value for i < size. */
  fill(size: number, value: number, out: Offset): KernelCall;
  /** out[i] = data[i]. */
  values(data: readonly number[], out: Offset): KernelCall;
  /** The sum (= or +=) or max (=) of x [shape] over axes, summed in float64 in the axes' row-major order. */
  reduce(op: 'sum' | 'max', shape: readonly number[], axes: readonly number[], accumulate: boolean, out: Offset, x: Offset): KernelCall;
  gather(rows: number, width: number, count: number, out: Offset, table: Offset, indices: Offset): KernelCall;
  scatterAdd(rows: number, width: number, count: number, out: Offset, values: Offset, indices: Offset): KernelCall;
  /**
   * --check-numerics inside a loop or method the target runs: the first of `size` values at `out`
   * not finite fails the call, with `message`, a TypeScript expression of the error's message in
   * `position`, `value` and `step` (the value of the loop variable `step`).
   */
  check(size: number, out: Offset, message: string, step?: StepTerms): KernelCall;
  /**
   * Elements of the panel copy of B the target reads this product's B from when B holds the same
   * values at every step of the loop the product runs in (a weight): copied once before the loop
   * (packPanels), then read by the product with `panels`. 0: the product reads B where it lives.
   */
  panelElements(shape: ProductShape): number;
  /** The copy of B (held as `shape` says) into panels at `panels`, for products with `shape.panels`. */
  packPanels(shape: ProductShape, panels: Offset, b: Offset): KernelCall;
  /** A loop over t run by the target itself between the bounds `lo` and `hi`; with a loss, `sum` names the running sum it takes and gives back. */
  loop(spec: LoopSpec, lo: Bound, hi: Bound, sum?: string): KernelCall;
  /** A whole method run by the target itself (e.g. a training step's forward, loss and backward): one call, taking the run-time integers `params` (the window's T). */
  method(ops: readonly MethodOp[], params: readonly string[]): KernelCall;
  /** `render`'s result; when undefined (it gave up), the kernels it asked for are forgotten. */
  attempt<T>(render: () => T | undefined): T | undefined;
}

/** A loop bound: a number, the name of a run-time integer (the window's T, a segment's lo), or the integer the arena holds at `slot` (a window set per call). */
export type Bound = number | string | { readonly slot: number };

/** A step of a method a target runs whole: a call (constant offsets), a loop between bounds, or the loss's mean of its running sum. */
export type MethodOp =
  | { readonly kind: 'call'; readonly call: KernelCall }
  | { readonly kind: 'loop'; readonly loop: LoopSpec; readonly lo: Bound; readonly hi: Bound }
  /** A[out] = the running sum of the loops' loss terms / A[norm] (in float64, stored as the arena's float). */
  | { readonly kind: 'mean'; readonly out: number; readonly norm: number }
  | { readonly kind: 'segments'; readonly length: number; readonly reverse: boolean; readonly ops: readonly MethodOp[] }
  | { readonly kind: 'unlessLast'; readonly length: number; readonly ops: readonly MethodOp[] }
  /** `ops` for each value of the variable `index` between the bounds (a program's nest). */
  | { readonly kind: 'nest'; readonly index: string; readonly reverse: boolean; readonly lo: Bound; readonly hi: Bound; readonly ops: readonly MethodOp[] };

/**
 * A step of a kernel program (a trainer's method as data, which each target renders): statements
 * run once, a loop over t between bounds (its body's offsets StepOffsets; a packed body choosing
 * the rows of its class; each step's loss term A[loss] added into the running sum), or the loss's
 * mean A[out] = sum / A[norm].
 */
export type ProgramStep =
  | { readonly kind: 'run'; readonly statements: readonly Statement[] }
  | {
    readonly kind: 'loop';
    readonly reverse: boolean;
    readonly lo: Bound;
    readonly hi: Bound;
    readonly body: readonly Statement[];
    readonly classes?: { readonly live: number; readonly cases: readonly { readonly rows: number; readonly body: readonly Statement[] }[] };
    readonly loss?: number;
  }
  | { readonly kind: 'mean'; readonly out: number; readonly norm: number }
  /**
   * BPTT in segments of `length` steps: `steps` for each segment c (from the last down when
   * `reverse`), with hi = T − (⌈T/length⌉ − 1 − c)·length and lo = max(hi − length, 0) bound (the
   * first segment the shorter one); offsets inside may be in c, lo and hi.
   */
  | { readonly kind: 'segments'; readonly length: number; readonly reverse: boolean; readonly steps: readonly ProgramStep[] }
  /** Inside segments: `steps` unless c is the last segment ((c + 1)·length ≥ T). */
  | { readonly kind: 'unlessLast'; readonly length: number; readonly steps: readonly ProgramStep[] }
  /** `steps` as a function of their own where a target has functions (V8 optimizes a function only below a size a whole step exceeds); inline elsewhere. */
  | { readonly kind: 'function'; readonly steps: readonly ProgramStep[] }
  /**
   * A loop whose body holds loops (a scan in a scan's body: a graph model's segments under
   * --memory-budget): `steps` for each value of the variable `index` between the bounds, offsets
   * inside in `index` (and an inner loop's in its own t as well).
   */
  | { readonly kind: 'nest'; readonly index: string; readonly reverse: boolean; readonly lo: Bound; readonly hi: Bound; readonly steps: readonly ProgramStep[] };

/** A loop over t of kernel calls, as a target that runs whole loops takes it. */
export interface LoopSpec {
  /** From hi − 1 down to lo (a reverse loop), or from lo up. */
  readonly reverse: boolean;
  /** Each step's calls, in order; their offsets are numbers or step offsets (in t and lo, and the variables of `outer`). */
  readonly calls: readonly KernelCall[];
  /** The variables of the loops around this one (a nest's index) its offsets move with too: the loop takes their values after its bounds. */
  readonly outer?: readonly string[];
  /** After each step, A[loss] is added into a float64 running sum (as `lossSum += A[loss]` would). */
  readonly loss?: number;
  /**
   * Packed execution under lengths: the step's rows still running, A[live + t] (an integer), choose
   * the calls over that many rows when it is one of the cases, else `calls` over all rows.
   */
  readonly classes?: { readonly live: number; readonly cases: readonly { readonly rows: number; readonly calls: readonly KernelCall[] }[] };
}

/** What emission knows about the target: the arena's element type, and who runs the kernels. */
export interface EmitTarget {
  readonly dtype: Dtype;
  /** After every statement, a check that what it wrote is finite (--check-numerics); off, nothing is emitted. */
  readonly checkNumerics?: boolean;
  /** Name the model file's line above the statements it wrote (`// graphs/sincos.ts:12`): the artifacts compile writes; in-memory trainers skip it (formatting every node's origin costs time to the first step). */
  readonly originComments?: boolean;
  /** Absent (the ts target), products and element-wise chains are TypeScript loops. */
  readonly kernels?: TargetKernels;
  /**
   * The helper functions the code rendered for this target calls, noted by the template that
   * renders each call (helperCall): the module defines those and no others. A target without it
   * renders no helper call.
   */
  readonly helpers?: Set<EmitHelper>;
}

/**
 * A function the emitted module defines once when an expression calls it (e.g. a float32
 * activation), so an element-wise template can stay one expression. Templates render its calls
 * through helperCall (src/prims/kit.ts), which notes the call in the target's `helpers`.
 */
export interface EmitHelper {
  readonly name: string;
  /** TypeScript source of `function <name>(…)`. */
  readonly source: string;
}

export interface EmitArgs {
  readonly out: Buf;
  readonly inputs: readonly Buf[];
  readonly inShapes: readonly Shape[];
  readonly shape: Shape;
  readonly attrs: Attrs;
  /** Add into `out` instead of overwriting it (gradient accumulation); only for rules that declare `accumulates`. */
  readonly accumulate?: boolean;
}

/** What a vjp rule receives: the cotangent of the output, the primal output and its inputs. */
export interface VjpArgs {
  readonly dy: Node;
  readonly y: Node;
  readonly inputs: readonly Node[];
  readonly attrs: Attrs;
  /**
   * Reverse-mode differentiation itself, for rules whose node runs a body (scan): ∂J/∂w for each
   * w of `wrt` (a zero where J does not depend on it), as graphs. Given by the vjp transform.
   */
  readonly grad?: (J: Node, wrt: readonly Node[]) => Node[];
  /** `roots` rebuilt with some of the nodes they reach replaced (a body reading stored values instead of recomputing them). */
  readonly rebind?: (roots: readonly Node[], replace: ReadonlyMap<Node, Node>) => Node[];
  /** Which inputs' cotangents are used (those on a path from a differentiated target); a rule may leave the others out (null). */
  readonly wants?: readonly boolean[];
}

/** How a rule evaluates its node's body (scan): the interpreter binds the placeholders and runs it. */
export interface BodyEvaluator {
  readonly body: Body;
  run(inputs: readonly Float64Array[]): Float64Array[];
}

/**
 * The ops vjp rules build gradients with. Implemented over the registry (src/prims/builder.ts)
 * with broadcasting and algebraic simplification, so rules stay short and gradients readable.
 * `null` stands for a zero cotangent throughout.
 */
export interface Builder {
  add(a: Node, b: Node): Node;
  sub(a: Node, b: Node): Node;
  mul(a: Node, b: Node): Node;
  div(a: Node, b: Node): Node;
  neg(a: Node): Node;
  exp(a: Node): Node;
  log(a: Node): Node;
  tanh(a: Node): Node;
  sigmoid(a: Node): Node;
  matmul(a: Node, b: Node): Node;
  transpose(a: Node): Node;
  sum(a: Node, axes: readonly number[]): Node;
  broadcast(a: Node, shape: Shape, axes: readonly number[]): Node;
  reshape(a: Node, shape: Shape): Node;
  slice(a: Node, axis: number, start: number, end: number): Node;
  pad(a: Node, axis: number, before: number, after: number): Node;
  where(cond: Node, a: Node, b: Node): Node;
  compare(kind: CompareKind, a: Node, b: Node): Node;
  concat(xs: readonly Node[], axis: number): Node;
  /** table [V, H] read at integer indices [...N]: [...N, H]. */
  gather(table: Node, indices: Node): Node;
  /** values [...N, H] summed into the `rows` rows their indices name: [rows, H]. */
  scatterAdd(values: Node, indices: Node, rows: number): Node;
  scalar(value: number, shape: Shape): Node;
  /** A placeholder or data leaf. */
  input(name: string, shape: Shape, attrs?: Attrs): Node;
  /** A body's placeholder: an input leaf no other node equals (bodies nest, and may share names). */
  placeholder(name: string, shape: Shape): Node;
  /** A scan node over `spec.body` (its shapes checked against the operands). */
  scan(spec: ScanSpec): Node;
}

/**
 * The operands and body of a scan. The body's inputs are placeholders: one per carry, one per
 * xs (its step-t slice), one per const; its outputs are the new carries, then the per-step ys.
 */
export interface ScanSpec {
  readonly init: readonly Node[];
  readonly xs: readonly Node[];
  readonly consts: readonly Node[];
  readonly body: Body;
  /** T: the steps (the xs' time axis, which every xs shares). */
  readonly length: number;
  readonly reverse: boolean;
}

export type CompareKind = 'gt' | 'ge' | 'lt' | 'le' | 'eq';

/** How an element-wise primitive emits: one scalar expression per element, so chains of them fuse. */
export interface ElementwiseEmit {
  readonly kind: 'elementwise';
  scalar(xs: readonly string[], attrs: Attrs, target: EmitTarget): string;
  readonly helpers?: readonly EmitHelper[];
  /**
   * Whether the output is exactly 0 (either sign) wherever the inputs flagged in `zeros` are 0:
   * what packed rows know of a value on finished rows without computing it (src/emit/packed-rows.ts).
   */
  zeroFrom(zeros: readonly boolean[], attrs: Attrs): boolean;
}

/** How a statement primitive (not element-wise) lowers: kernel statements (data) into its output buffer, which each target renders. */
export interface StatementsEmit {
  readonly kind: 'statements';
  lower(args: EmitArgs): Statement[];
  readonly accumulates?: boolean;
}

/** A leaf (param, input, const): bound by the caller, no statement of its own. */
export interface LeafEmit {
  readonly kind: 'leaf';
}

/** Runs its body over time (scan): lowered into loops, or inlined by unroll, before any kernel is emitted. */
export interface LoopEmit {
  readonly kind: 'loop';
}

export type PrimEmit = ElementwiseEmit | StatementsEmit | LeafEmit | LoopEmit;

/**
 * A primitive; `E` is how it emits. A registry entry states its own kind (`PrimDef<StatementsEmit>`,
 * or `elementwise(…)`), so the registry knows the element-wise set exactly (ElementwiseOpName).
 */
export interface PrimDef<E extends PrimEmit = PrimEmit> {
  readonly name: string;
  /** Number of inputs, or 'variadic' (concat). Leaves have 0. */
  readonly arity: number | 'variadic';
  /** Output shape from input shapes; `declared` is the node's own shape (leaves return it). Throws a message on mismatch. */
  shape(inputs: readonly Shape[], attrs: Attrs, declared: Shape): Shape;
  /** Float64 evaluation of the op on row-major data. Leaves are bound by the interpreter instead. */
  evaluate(inputs: readonly Float64Array[], inShapes: readonly Shape[], attrs: Attrs, shape: Shape, body?: BodyEvaluator): Float64Array;
  /** One cotangent per input (null = zero), built from primitives so gradients are graphs too. */
  vjp(args: VjpArgs, b: Builder): (Node | null)[];
  /** Element-wise ops give a scalar template (fusable); others emit whole statements. */
  readonly emit: E;
}
