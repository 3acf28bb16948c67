// y = a @ b for ranks 1 and 2 (numpy's rule without batch dims);
// da = dy @ bᵀ, db = aᵀ @ dy, with vectors treated as rows or columns as numpy does.
import type { Node } from '../ir/node.ts';
import { shapeToString, type Shape } from '../ir/tensor.ts';
import { at, literalText } from './kit.ts';
import type { Buf, PrimDef, StatementsEmit } from './types.ts';

/** [m, k, n] of a product, where a vector operand contributes m = 1 or n = 1. */
export function matmulDims(a: Shape, b: Shape): [number, number, number] {
  const m = a.length === 2 ? a[0]! : 1;
  const k = a[a.length - 1]!;
  const n = b.length === 2 ? b[1]! : 1;
  return [m, k, n];
}

export const matmul: PrimDef<StatementsEmit> = {
  name: 'matmul',
  arity: 2,
  shape: ([a, b]) => {
    if (a!.length < 1 || a!.length > 2 || b!.length < 1 || b!.length > 2) {
      throw new Error(`matmul: operands must be vectors or matrices, got ${shapeToString(a!)} and ${shapeToString(b!)}`);
    }
    if (a![a!.length - 1] !== b![0]) {
      throw new Error(`matmul: inner dimensions differ: ${shapeToString(a!)} @ ${shapeToString(b!)}`);
    }
    const out: number[] = [];
    if (a!.length === 2) out.push(a![0]!);
    if (b!.length === 2) out.push(b![1]!);
    return out;
  },
  evaluate: ([a, b], [sa, sb]) => {
    const [m, k, n] = matmulDims(sa!, sb!);
    const out = new Float64Array(m * n);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let p = 0; p < k; p++) acc += a![i * k + p]! * b![p * n + j]!;
        out[i * n + j] = acc;
      }
    }
    return out;
  },
  vjp: ({ dy, inputs: [a, c] }, b) => {
    // Lift vectors to matrices so one rule covers every rank combination, then drop the lift.
    const A = a!.shape.length === 1 ? b.reshape(a!, [1, a!.shape[0]!]) : a!;
    const C = c!.shape.length === 1 ? b.reshape(c!, [c!.shape[0]!, 1]) : c!;
    const [m, , n] = matmulDims(a!.shape, c!.shape);
    const D = b.reshape(dy, [m, n]);
    const dA: Node = b.matmul(D, b.transpose(C));
    const dC: Node = b.matmul(b.transpose(A), D);
    return [b.reshape(dA, a!.shape), b.reshape(dC, c!.shape)];
  },
  emit: {
    kind: 'statements',
    accumulates: true,
    code: ({ out, inputs: [a, b], inShapes: [sa, sb], accumulate, epilogue, target }) => {
      const [m, k, n] = matmulDims(sa!, sb!);
      const kernels = target?.kernels;
      // A target with product kernels (wasm) computes it, unless an operand is a fill or an
      // epilogue would have to be added into the output (both rare; they keep the loops below).
      if (kernels && a!.literal === undefined && b!.literal === undefined && !(epilogue && accumulate)) {
        const shape = { m, k, n, transA: a!.transposed === true, transB: b!.transposed === true, accumulate: accumulate === true, ...(b!.panels ? { panels: true } : {}) };
        const call = kernels.product(shape, out.off, a!.off, b!.off);
        // The epilogue then runs over the finished product in place (the planner gives the chain's
        // root a buffer that none of its inputs share).
        return epilogue ? `${call}\nfor (let i = 0; i < ${m * n}; i++) ${at(out, 'i')} = ${epilogue(at(out, 'i'), 'i')};` : call;
      }
      if (b!.panels) throw new Error('emit: a product over B copied into panels is the target\'s kernel (the planner gives panels to no other)');
      // Where row i of a and column j of b start, and how far apart consecutive p are in each.
      const A: Operand = { buf: a!, base: (i) => (a!.transposed ? i : `${i} * ${k}`), step: a!.transposed ? m : 1 };
      const B: Operand = { buf: b!, base: (j) => (b!.transposed ? `${j} * ${k}` : j), step: b!.transposed ? 1 : n };
      const O = (i: string, j: string) => at(out, `${i} * ${n} + ${j}`);
      const store = accumulate ? '+=' : '=';
      const value = (v: string, i: string, j: string) => (epilogue ? epilogue(v, `${i} * ${n} + ${j}`) : v);
      if (k === 1) {
        if (epilogue) throw new Error('emit: an outer product (k = 1) takes no epilogue');
        // An outer product (e.g. a weight gradient at batch 1): one term per element, nothing to block.
        const a0 = literalText(a!) ?? `${a!.arr}[${A.buf.off === 0 ? '' : `${A.buf.off} + `}${A.base('i')}]`;
        const b0 = literalText(b!) ?? `${b!.arr}[${B.buf.off === 0 ? '' : `${B.buf.off} + `}${B.base('j')}]`;
        return `for (let i = 0; i < ${m}; i++) { const a0 = ${a0}; for (let j = 0; j < ${n}; j++) ${O('i', 'j')} ${store} a0 * ${b0}; }`;
      }
      return registerBlocked(m, k, n, A, B, O, store, value);
    },
  },
};

interface Operand {
  readonly buf: Buf;
  /** Index (within the buffer) where row i of a, or column j of b, starts. */
  base(ij: string): string;
  /** Distance between consecutive p. */
  readonly step: number;
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
  const block = (c: number, j0: string): string[] => {
    const acc = (ri: number, ci: number) => `c${ri}${ci}`;
    const decl: string[] = [];
    for (let ri = 0; ri < rows; ri++) for (let ci = 0; ci < c; ci++) decl.push(`${acc(ri, ci)} = 0`);
    const lines = [`let ${decl.join(', ')};`];
    if (A.buf.literal === undefined) for (let ri = 0; ri < rows; ri++) lines.push(`const ra${ri} = ${off(A, `(i + ${ri})`)};`);
    if (B.buf.literal === undefined) for (let ci = 0; ci < c; ci++) lines.push(`const rb${ci} = ${off(B, `(${j0} + ${ci})`)};`);
    const body: string[] = [];
    // A fill (a literal buffer) reads as its value.
    for (let ri = 0; ri < rows; ri++) body.push(`const a${ri} = ${literalText(A.buf) ?? `${A.buf.arr}[${pIndex(`ra${ri}`, A.step)}]`};`);
    for (let ci = 0; ci < c; ci++) {
      body.push(`const b${ci} = ${literalText(B.buf) ?? `${B.buf.arr}[${pIndex(`rb${ci}`, B.step)}]`};`);
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
