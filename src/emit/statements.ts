// Kernel statements rendered: for each target, one rule per kind of Statement (the data lowering
// makes of a planned node). The tables are typed over the kinds, so a kind without a rule for a
// target does not compile; where the wasm target keeps a statement in TypeScript, its rule says so.
// The ts target prints loops; the wasm target calls its kernels (src/emit/wasm/module.ts).
import { sizeOf } from '../ir/tensor.ts';
import { primOf } from '../prims/index.ts';
import { at, COPY_WITHIN, helperCall, numberLiteral, offsetPlus, stepText } from '../prims/kit.ts';
import { reductionLoop } from '../prims/reduce.ts';
import type { Bound, Buf, CheckStatement, CopyStatement, ElementwiseExpr, EmitHelper, EmitTarget, EpilogueExpr, KernelCall, Offset, ProductStatement, Statement, StepOfElement, TargetKernels } from '../prims/types.ts';
import { NUMERICS_PREFIX } from './trainer-text.ts';

/** The arena's name in emitted code (the trainer's methods bind it as `const A = this.arena`). */
export const ARENA = 'A';

/** A loop bound as TypeScript reads it: a number, a run-time integer's name, or the integer the arena holds. */
export const boundText = (b: Bound): string => (typeof b === 'object' ? `${ARENA}[${b.slot}]` : String(b));

/** The targets: `ts` prints TypeScript loops (the reference, and the only one for float64); `wasm` calls its own kernels. */
export type TargetName = 'ts' | 'wasm';

type Rule<K extends Statement['kind']> = (s: Extract<Statement, { readonly kind: K }>, target: EmitTarget) => string;
type StatementRules = { readonly [K in Statement['kind']]: Rule<K> };

/** The statement's code for `target`. */
export function renderStatement(s: Statement, target: EmitTarget): string {
  const kernels = target.kernels;
  return kernels ? renderWasm(s, { ...target, kernels }) : (TS[s.kind] as Rule<Statement['kind']>)(s as never, target);
}

/** The statements' code, one statement a line. */
export function renderStatements(ss: readonly Statement[], target: EmitTarget): string {
  return ss.map((s) => renderStatement(s, target)).join('\n');
}

// ---------------------------------------------------------------------------------------------
// ts

/** The scalar expression of element `i` of a chain; `product` is an epilogue's product value. */
function scalarOf(e: EpilogueExpr, i: string | number, target: EmitTarget, product?: string): string {
  if ('product' in e) {
    if (product === undefined) throw new Error('emit: a product\'s value read outside its epilogue');
    return product;
  }
  if ('value' in e) return numberLiteral(e.value);
  if ('read' in e) return at({ arr: ARENA, off: e.read }, i);
  const prim = primOf(e.op);
  if (prim?.emit.kind !== 'elementwise') throw new Error(`emit: ${e.op} is not element-wise`);
  return prim.emit.scalar(e.args.map((a) => ('op' in a ? `(${scalarOf(a, i, target, product)})` : scalarOf(a, i, target, product))), e.attrs, target);
}

function elementwiseTs(s: { readonly size: number; readonly out: Buf; readonly expr: ElementwiseExpr; readonly accumulate: boolean }, target: EmitTarget): string {
  const store = s.accumulate ? '+=' : '=';
  return s.size === 1
    ? `${at(s.out, 0)} ${store} ${scalarOf(s.expr, 0, target)};`
    : `for (let i = 0; i < ${s.size}; i++) ${at(s.out, 'i')} ${store} ${scalarOf(s.expr, 'i', target)};`;
}

/** Where row i of a and column j of b start, and how far apart consecutive p are in each. */
interface Operand {
  readonly buf: Buf;
  /** Index (within the buffer) where row i of a, or column j of b, starts. */
  base(ij: string): string;
  /** Distance between consecutive p. */
  readonly step: number;
}

function productTs(s: ProductStatement, target: EmitTarget): string {
  const { m, k, n, accumulate } = s.shape;
  const { a, b, out, epilogue } = s;
  if (b.panels) throw new Error('emit: a product over B copied into panels is the target\'s kernel (the planner gives panels to no other)');
  const A: Operand = { buf: a, base: (i) => (a.transposed ? i : `${i} * ${k}`), step: a.transposed ? m : 1 };
  const B: Operand = { buf: b, base: (j) => (b.transposed ? `${j} * ${k}` : j), step: b.transposed ? 1 : n };
  const O = (i: string, j: string) => at(out, `${i} * ${n} + ${j}`);
  const store = accumulate ? '+=' : '=';
  const value = (v: string, i: string, j: string) => (epilogue ? scalarOf(epilogue, `${i} * ${n} + ${j}`, target, v) : v);
  if (k === 1) {
    if (epilogue) throw new Error('emit: an outer product (k = 1) takes no epilogue');
    // An outer product (e.g. a weight gradient at batch 1): one term per element, nothing to block.
    const a0 = a.literal !== undefined ? numberLiteral(a.literal) : `${a.arr}[${a.off === 0 ? '' : `${a.off} + `}${A.base('i')}]`;
    const b0 = b.literal !== undefined ? numberLiteral(b.literal) : `${b.arr}[${b.off === 0 ? '' : `${b.off} + `}${B.base('j')}]`;
    return `for (let i = 0; i < ${m}; i++) { const a0 = ${a0}; for (let j = 0; j < ${n}; j++) ${O('i', 'j')} ${store} a0 * ${b0}; }`;
  }
  return registerBlocked(m, k, n, A, B, O, store, value);
}

/**
 * out[i, j] = Σ_p a[i, p] · b[p, j] in register blocks of rows × cols accumulators: each load of a
 * serves `cols` products and each load of b `rows`. The start of every row and column is computed once per
 * block, so the inner loop only adds p·step. Every element sums p = 0 … k−1 in order in a float64
 * local and is stored once (through `value`, which may finish an element-wise chain on it), so a
 * Float32Array rounds exactly as the interpreter's float32 mode.
 */
function registerBlocked(m: number, k: number, n: number, A: Operand, B: Operand, O: (i: string, j: string) => string, store: string, value: (v: string, i: string, j: string) => string): string {
  // Block shapes measured on V8 (16×128 · 128×512, f32 arena): 4×3 5.6 GFLOP/s, 2×6 5.2, 2×4 4.6,
  // 4×4 4.9 (spills); for a single row, 1×6 4.8 against 1×8 4.5.
  const rows = m % 4 === 0 ? 4 : m % 2 === 0 ? 2 : 1;
  const cols = Math.min(rows === 4 ? 3 : 6, n);
  const off = (x: Operand, ij: string) => (typeof x.buf.off === 'number' && x.buf.off === 0 ? x.base(ij) : `${x.buf.off} + ${x.base(ij)}`);
  const pIndex = (v: string, step: number) => (step === 1 ? `${v} + p` : `${v} + p * ${step}`);
  const literal = (b: Buf) => (b.literal === undefined ? undefined : numberLiteral(b.literal));
  const block = (c: number, j0: string): string[] => {
    const acc = (ri: number, ci: number) => `c${ri}${ci}`;
    const decl: string[] = [];
    for (let ri = 0; ri < rows; ri++) for (let ci = 0; ci < c; ci++) decl.push(`${acc(ri, ci)} = 0`);
    const lines = [`let ${decl.join(', ')};`];
    if (A.buf.literal === undefined) for (let ri = 0; ri < rows; ri++) lines.push(`const ra${ri} = ${off(A, `(i + ${ri})`)};`);
    if (B.buf.literal === undefined) for (let ci = 0; ci < c; ci++) lines.push(`const rb${ci} = ${off(B, `(${j0} + ${ci})`)};`);
    const body: string[] = [];
    // A fill (a literal buffer) reads as its value.
    for (let ri = 0; ri < rows; ri++) body.push(`const a${ri} = ${literal(A.buf) ?? `${A.buf.arr}[${pIndex(`ra${ri}`, A.step)}]`};`);
    for (let ci = 0; ci < c; ci++) {
      body.push(`const b${ci} = ${literal(B.buf) ?? `${B.buf.arr}[${pIndex(`rb${ci}`, B.step)}]`};`);
      for (let ri = 0; ri < rows; ri++) body.push(`${acc(ri, ci)} += a${ri} * b${ci};`);
    }
    lines.push(`for (let p = 0; p < ${k}; p++) { ${body.join(' ')} }`);
    for (let ri = 0; ri < rows; ri++) for (let ci = 0; ci < c; ci++) lines.push(`${O(`(i + ${ri})`, `(${j0} + ${ci})`)} ${store} ${value(acc(ri, ci), `(i + ${ri})`, `(${j0} + ${ci})`)};`);
    return lines;
  };
  const full = Math.floor(n / cols) * cols;
  const lines = [`for (let i = 0; i < ${m}; i += ${rows}) {`];
  if (full > 0) lines.push(`  for (let j = 0; j < ${full}; j += ${cols}) {`, ...block(cols, 'j').map((l) => `    ${l}`), '  }');
  if (full < n) lines.push('  {', ...block(n - full, String(full)).map((l) => `    ${l}`), '  }');
  lines.push('}');
  return lines.join('\n');
}

/** `size` contiguous elements from `from` (an arena offset, or a buffer: a literal one copies its value) to `to`. */
export function blockCopy(to: Offset, from: Offset | Buf, size: number): CopyStatement {
  const x: Buf = typeof from === 'object' && 'arr' in from ? from : { arr: ARENA, off: from };
  return { kind: 'copy', dims: [size], out: { arr: ARENA, off: to }, outStrides: [1], x, xStrides: [1], accumulate: false };
}

/**
 * A copy's walk with size-1 dimensions dropped and neighbours merged where both sides are
 * contiguous across them: a block is one dimension, a slice's rows two.
 */
export function normalizeCopy(s: Pick<CopyStatement, 'dims' | 'outStrides' | 'xStrides'>): { dims: number[]; outStrides: number[]; xStrides: number[] } {
  const dims: number[] = [], outStrides: number[] = [], xStrides: number[] = [];
  s.dims.forEach((d, k) => {
    if (d === 1) return;
    const last = dims.length - 1;
    const os = s.outStrides[k]!, xs = s.xStrides[k]!;
    if (last >= 0 && outStrides[last] === os * d && xStrides[last] === xs * d) {
      dims[last]! *= d;
      outStrides[last] = os;
      xStrides[last] = xs;
      return;
    }
    dims.push(d);
    outStrides.push(os);
    xStrides.push(xs);
  });
  return { dims, outStrides, xStrides };
}

function copyTs(s: CopyStatement): string {
  const { dims, outStrides, xStrides } = normalizeCopy(s);
  const store = s.accumulate ? '+=' : '=';
  if (dims.length === 0) return `${at(s.out, 0)} ${store} ${at(s.x, 0)};`;
  const n = dims[0]!;
  if (dims.length === 1 && outStrides[0] === 1 && !s.accumulate) {
    // A block: a memmove where it pays (typed arrays copy natively); a broadcast value read once.
    if (xStrides[0] === 1 && n >= COPY_WITHIN && s.x.literal === undefined && !s.x.transposed) return `${ARENA}.copyWithin(${s.out.off}, ${s.x.off}, ${offsetPlus(s.x, n)});`;
    if (xStrides[0] === 0) return `{ const v = ${at(s.x, 0)}; for (let f = 0; f < ${n}; f++) ${at(s.out, 'f')} = v; }`;
  }
  const v = (d: number) => (dims.length === 1 ? 'i' : `i${d}`);
  const index = (strides: readonly number[]) => strides.flatMap((st, d) => (st === 0 ? [] : [st === 1 ? v(d) : `${v(d)} * ${st}`])).join(' + ') || 0;
  let code = `${at(s.out, index(outStrides))} ${store} ${at(s.x, index(xStrides))};`;
  for (let d = dims.length - 1; d >= 0; d--) code = `for (let ${v(d)} = 0; ${v(d)} < ${dims[d]}; ${v(d)}++) ${d === dims.length - 1 ? code : `{ ${code} }`}`;
  return code;
}


/** An index read from data: the check gather and scatterAdd make before using it (the message names the position and the value). */
function indexCheck(rows: number): string {
  return `if (!(k >= 0 && k < ${rows} && k === Math.floor(k))) throw new RangeError(\`gather: index \${n} is \${k}; indices are integers in 0..${rows - 1}\`);`;
}

const TS: StatementRules = {
  check: (s, target) => `${helperCall(target, NUMERICS, ARENA, String(s.out.off), String(s.size), JSON.stringify(s.what), ...(s.step ? [stepText(s.step)] : s.stepOf ? [stepOfText(s.stepOf)] : []))};`,
  panels: () => {
    throw new Error('emit: panels are planned for a target with product kernels only (TargetKernels.panelElements)');
  },
  product: productTs,
  elementwise: elementwiseTs,
  copy: copyTs,
  fill: (s) => (s.size === 1 ? `${at(s.out, 0)} = ${numberLiteral(s.value)};`
    : s.size >= COPY_WITHIN ? `${ARENA}.fill(${numberLiteral(s.value)}, ${s.out.off}, ${offsetPlus(s.out, s.size)});`
    : `for (let i = 0; i < ${s.size}; i++) ${at(s.out, 'i')} = ${numberLiteral(s.value)};`),
  values: (s) => s.data.map((v, i) => `${at(s.out, i)} = ${numberLiteral(v)};`).join(' '),
  reduce: (s) => (s.op === 'sum'
    ? reductionLoop(s.shape, s.axes, '0', (acc, f) => `${acc} + ${at(s.x, f)}`, (r, acc) => `${at(s.out, r)} ${s.accumulate ? '+=' : '='} ${acc};`)
    : reductionLoop(s.shape, s.axes, '-Infinity', (acc, f) => `Math.max(${acc}, ${at(s.x, f)})`, (r, acc) => `${at(s.out, r)} = ${acc};`)),
  gather: (s) => `for (let n = 0; n < ${s.count}; n++) { const k = ${at(s.indices, 'n')}; ${indexCheck(s.rows)} for (let j = 0; j < ${s.width}; j++) ${at(s.out, `n * ${s.width} + j`)} = ${at(s.table, `k * ${s.width} + j`)}; }`,
  scatterAdd: (s) => `for (let i = 0; i < ${s.rows * s.width}; i++) ${at(s.out, 'i')} = 0; for (let n = 0; n < ${s.count}; n++) { const k = ${at(s.indices, 'n')}; ${indexCheck(s.rows)} for (let j = 0; j < ${s.width}; j++) ${at(s.out, `k * ${s.width} + j`)} += ${at(s.values, `n * ${s.width} + j`)}; }`,
};

// ---------------------------------------------------------------------------------------------
// wasm

/**
 * How the wasm target runs one kind of statement: the calls of its kernels, or undefined where the
 * statement stays a line of TypeScript (only outside a loop that runs in wasm: `inWasm` false).
 */
type CallRule<K extends Statement['kind']> = (s: Extract<Statement, { readonly kind: K }>, kernels: TargetKernels, inWasm: boolean) => KernelCall[] | undefined;
type CallRules = { readonly [K in Statement['kind']]: CallRule<K> };

/** Below this many elements a statement called from TypeScript stays TypeScript: the call into wasm costs more. */
const SMALLEST_CALL = 4;

/** An epilogue as a chain with the product's value read at `at` (where the product was stored before the chain runs). */
export function overProduct(e: EpilogueExpr, at: Offset): ElementwiseExpr {
  if ('product' in e) return { read: at };
  if (!('op' in e)) return e;
  return { op: e.op, args: e.args.map((a) => overProduct(a, at)), attrs: e.attrs };
}

/** The function --check-numerics' TypeScript calls (its checks rendered for ts), defined once in the emitted module. */
export const NUMERICS: EmitHelper = {
  name: 'numerics',
  source: `function numerics(A: ArrayLike<number>, off: number, n: number, what: string, t?: number | { every: number; modulo?: number }): void {
  for (let i = 0; i < n; i++) {
    const v = A[off + i]!;
    if (v - v !== 0) {
      const step = typeof t === 'object' ? Math.floor(i / t.every) % (t.modulo ?? Infinity) : t;
      throw new RangeError(\`${NUMERICS_PREFIX}\${what} gives \${v} (element \${i})\${step === undefined ? '' : \` at step \${step + 1}\`}\`);
    }
  }
}`,
};

/** NUMERICS' last argument for a value over all steps: `{ every: 2 }`, `{ every: 8, modulo: 5 }`. */
function stepOfText(s: StepOfElement): string {
  return `{ every: ${s.every}${s.modulo === undefined ? '' : `, modulo: ${s.modulo}`} }`;
}

/** The message of NUMERICS' error for check `s` as a TypeScript expression in `position`, `value` and `step`. */
function numericsMessage(s: CheckStatement): string {
  const modulo = s.stepOf?.modulo === undefined ? '' : ` % ${s.stepOf.modulo}`;
  const at = s.step !== undefined ? " + ' at step ' + (step + 1)" : s.stepOf ? ` + ' at step ' + (Math.floor(position / ${s.stepOf.every})${modulo} + 1)` : '';
  return `${JSON.stringify(`${NUMERICS_PREFIX}${s.what} gives `)} + value + ' (element ' + position + ')'${at}`;
}

/** Whether a buffer is a literal (a fill): no kernel reads one. */
const isLiteral = (b: Buf) => b.literal !== undefined;

const WASM: CallRules = {
  // Inside a loop or method run in wasm, a check fails it with numerics' message (the TypeScript calling it throws).
  check: (s, kernels, inWasm) => (inWasm ? [kernels.check(s.size, s.out.off, numericsMessage(s), s.step)] : undefined),
  panels: (s, kernels) => [kernels.packPanels(s.shape, s.out, s.b)],
  // A fill operand is filled into scratch first, two make a fill; an epilogue adding into out runs
  // on the product's value in scratch (with a fill operand too, rare, it keeps the TypeScript loops).
  product: (s, kernels) => {
    if (s.epilogue) return isLiteral(s.a) || isLiteral(s.b) ? undefined : [kernels.productAddingEpilogue(s.shape, s.out.off, s.a.off, s.b.off, s.epilogue)];
    if (isLiteral(s.a) && isLiteral(s.b)) return [kernels.productOfLiterals(s.shape, s.out.off, s.a.literal!, s.b.literal!)];
    if (isLiteral(s.a)) return [kernels.productOverLiteral(s.shape, s.out.off, s.b.off, { operand: 'a', value: s.a.literal! })];
    if (isLiteral(s.b)) return [kernels.productOverLiteral(s.shape, s.out.off, s.a.off, { operand: 'b', value: s.b.literal! })];
    return [kernels.product(s.shape, s.out.off, s.a.off, s.b.off)];
  },
  elementwise: (s, kernels, inWasm) => (s.size < SMALLEST_CALL && !inWasm ? undefined : [kernels.elementwise(s.expr, s.size, s.out.off, s.accumulate)]),
  copy: (s, kernels, inWasm) => {
    const size = sizeOf(s.dims);
    if (size < SMALLEST_CALL && !inWasm) return undefined;
    if (isLiteral(s.x)) return s.accumulate ? undefined : literalCopy(s, kernels);
    return [kernels.strided(s.dims, s.outStrides, s.xStrides, s.accumulate, s.out.off, s.x.off)];
  },
  fill: (s, kernels, inWasm) => (s.size < SMALLEST_CALL && !inWasm ? undefined : [kernels.fill(s.size, s.value, s.out.off)]),
  values: (s, kernels, inWasm) => (s.data.length < SMALLEST_CALL && !inWasm ? undefined : [kernels.values(s.data, s.out.off)]),
  reduce: (s, kernels, inWasm) => (isLiteral(s.x) || (sizeOf(s.shape) < SMALLEST_CALL && !inWasm) ? undefined : [kernels.reduce(s.op, s.shape, s.axes, s.accumulate, s.out.off, s.x.off)]),
  // A bad index stops the step (the kernel returns it; a loop or method holding the call returns it on, and the TypeScript calling it throws).
  gather: (s, kernels) => (isLiteral(s.indices) || isLiteral(s.table) ? undefined : [kernels.gather(s.rows, s.width, s.count, s.out.off, s.table.off, s.indices.off)]),
  scatterAdd: (s, kernels) => (isLiteral(s.indices) || isLiteral(s.values) ? undefined : [kernels.scatterAdd(s.rows, s.width, s.count, s.out.off, s.values.off, s.indices.off)]),
};

/** Most fills a literal copied between strides becomes (one per run of contiguous elements). */
const MOST_FILLS = 64;

/** A literal (a fill's value) copied between strides: a fill of each contiguous run of out (a pad's zero band, a concatenation's constant part). */
function literalCopy(s: CopyStatement, kernels: TargetKernels): KernelCall[] | undefined {
  const { dims, outStrides } = normalizeCopy(s);
  const inner = dims.length > 0 && outStrides[dims.length - 1] === 1 ? dims[dims.length - 1]! : 1;
  const outer = inner === 1 ? dims : dims.slice(0, -1);
  const runs = sizeOf(outer);
  if (runs > MOST_FILLS) return undefined;
  const calls: KernelCall[] = [];
  for (let r = 0; r < runs; r++) {
    let at = 0, rest = r;
    for (let d = outer.length - 1; d >= 0; d--) {
      at += (rest % outer[d]!) * outStrides[d]!;
      rest = Math.floor(rest / outer[d]!);
    }
    calls.push(kernels.fill(inner, s.x.literal!, offsetPlus(s.out, at)));
  }
  return calls;
}

/**
 * A product with an epilogue as the wasm target runs it: the product into out, then the chain over
 * it in place (the planner gives the chain's root a buffer none of its inputs share). Adding into
 * out needs a buffer of its own: that rare case stays one statement (its kernel computes the
 * product into scratch).
 */
function forWasm(s: Statement): readonly Statement[] {
  if (s.kind !== 'product' || !s.epilogue || s.shape.accumulate) return [s];
  const { epilogue, ...product } = s;
  return [product, { kind: 'elementwise', size: s.shape.m * s.shape.n, out: s.out, expr: overProduct(epilogue, s.out.off), accumulate: false }];
}

/** The wasm target's code for `s` called from TypeScript: its kernels' calls, or TypeScript where its rule says so. */
function renderWasm(s: Statement, target: EmitTarget & { readonly kernels: TargetKernels }): string {
  return forWasm(s).map((x) => {
    const calls = (WASM[x.kind] as CallRule<Statement['kind']>)(x as never, target.kernels, false);
    return calls ? calls.join('\n') : (TS[x.kind] as Rule<Statement['kind']>)(x as never, target);
  }).join('\n');
}

/** The wasm target's kernel calls for `statements` inside a function of its module; undefined where one has none (its method stays TypeScript). */
export function callsInWasm(statements: readonly Statement[], kernels: TargetKernels): KernelCall[] | undefined {
  const calls: KernelCall[] = [];
  for (const x of statements.flatMap(forWasm)) {
    const c = (WASM[x.kind] as CallRule<Statement['kind']>)(x as never, kernels, true);
    if (!c) return undefined;
    calls.push(...c);
  }
  return calls;
}
