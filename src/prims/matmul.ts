// y = a @ b for ranks 1 and 2 (numpy's rule without batch dims);
// da = dy @ bᵀ, db = aᵀ @ dy, with vectors treated as rows or columns as numpy does.
import type { Node } from '../ir/node.ts';
import { shapeToString, type Shape } from '../ir/tensor.ts';
import { at } from './kit.ts';
import type { Buf, PrimDef } from './types.ts';

/** [m, k, n] of a product, where a vector operand contributes m = 1 or n = 1. */
export function matmulDims(a: Shape, b: Shape): [number, number, number] {
  const m = a.length === 2 ? a[0]! : 1;
  const k = a[a.length - 1]!;
  const n = b.length === 2 ? b[1]! : 1;
  return [m, k, n];
}

export const matmul: PrimDef = {
  name: 'matmul',
  arity: 2,
  shape: ([a, b]) => {
    if (a!.length < 1 || a!.length > 2 || b!.length < 1 || b!.length > 2) {
      throw new Error(`matmul: operands must be vectors or matrices, got ${shapeToString(a!)} and ${shapeToString(b!)}`);
    }
    const kb = b!.length === 2 ? b![0]! : b![0]!;
    if (a![a!.length - 1] !== kb) {
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
    scratch: ([sa, sb]) => 2 * matmulDims(sa!, sb!)[2],
    accumulates: true,
    code: ({ out, inputs: [a, b], inShapes: [sa, sb], scratch, accumulate }) => {
      const [m, k, n] = matmulDims(sa!, sb!);
      const plain = (x: Buf): Buf => ({ ...x, transposed: false });
      // Element (i, p) of a and (p, j) of b in their buffers, through a transposed view if given one.
      const A = (i: string, p: string) => at(plain(a!), a!.transposed ? `${p} * ${m} + ${i}` : `${i} * ${k} + ${p}`);
      const B = (p: string, j: string) => at(plain(b!), b!.transposed ? `${j} * ${k} + ${p}` : `${p} * ${n} + ${j}`);
      const O = (i: string, j: string) => at(out, `${i} * ${n} + ${j}`);
      // Every output element sums its products in the order p = 0 … k−1 in a float64 accumulator and
      // is stored once, so a Float32Array rounds exactly as the interpreter's float32 mode does.
      const store = accumulate ? '+=' : '=';
      if (k === 1) {
        // An outer product: one term per element, nothing to accumulate.
        return `for (let i = 0; i < ${m}; i++) { const a0 = ${A('i', '0')}; for (let j = 0; j < ${n}; j++) ${O('i', 'j')} ${store} a0 * ${B('0', 'j')}; }`;
      }
      if (b!.transposed && !a!.transposed) return dotProducts(m, k, n, A, B, O, store);
      return rowUpdates(m, k, n, A, B, O, scratch, store);
    },
  },
};

type Index = (r: string, c: string) => string;

/**
 * b is stored as rows of length k (a transposed view), so each output is a dot product of two
 * contiguous rows; a 2×4 register block reuses every load of a (×4) and of b (×2).
 */
function dotProducts(m: number, k: number, n: number, A: Index, B: Index, O: Index, store: string): string {
  const rows = m % 2 === 0 ? 2 : 1;
  const cols = Math.min(4, n);
  const block = (r: number, c: number, j0: string): string[] => {
    const acc = (ri: number, ci: number) => `c${ri}${ci}`;
    const lines: string[] = [];
    const decl: string[] = [];
    for (let ri = 0; ri < r; ri++) for (let ci = 0; ci < c; ci++) decl.push(`${acc(ri, ci)} = 0`);
    lines.push(`let ${decl.join(', ')};`);
    const body: string[] = [];
    for (let ri = 0; ri < r; ri++) body.push(`const a${ri} = ${A(`(i + ${ri})`, 'p')};`);
    for (let ci = 0; ci < c; ci++) {
      body.push(`const b${ci} = ${B('p', `(${j0} + ${ci})`)};`);
      for (let ri = 0; ri < r; ri++) body.push(`${acc(ri, ci)} += a${ri} * b${ci};`);
    }
    lines.push(`for (let p = 0; p < ${k}; p++) { ${body.join(' ')} }`);
    for (let ri = 0; ri < r; ri++) for (let ci = 0; ci < c; ci++) lines.push(`${O(`(i + ${ri})`, `(${j0} + ${ci})`)} ${store} ${acc(ri, ci)};`);
    return lines;
  };
  const full = Math.floor(n / cols) * cols;
  const lines = [`for (let i = 0; i < ${m}; i += ${rows}) {`];
  if (full > 0) lines.push(`  for (let j = 0; j < ${full}; j += ${cols}) {`, ...block(rows, cols, 'j').map((l) => `    ${l}`), '  }');
  if (full < n) lines.push('  {', ...block(rows, n - full, String(full)).map((l) => `    ${l}`), '  }');
  lines.push('}');
  return lines.join('\n');
}

/**
 * Otherwise rows of the output are accumulated in float64 scratch, walking b's rows with unit
 * stride: out[i, :] = Σ_p a[i, p] · b[p, :], two output rows at a time to reuse each load of b.
 */
function rowUpdates(m: number, k: number, n: number, A: Index, B: Index, O: Index, S: string, store: string): string {
  const rows = m % 2 === 0 ? 2 : 1;
  const lines = [`for (let i = 0; i < ${m}; i += ${rows}) {`, `  ${S}.fill(0, 0, ${rows * n});`, `  for (let p = 0; p < ${k}; p++) {`];
  for (let r = 0; r < rows; r++) lines.push(`    const a${r} = ${A(`(i + ${r})`, 'p')};`);
  const upd = Array.from({ length: rows }, (_, r) => `${S}[${r ? `${r * n} + ` : ''}j] += a${r} * v;`).join(' ');
  lines.push(`    for (let j = 0; j < ${n}; j++) { const v = ${B('p', 'j')}; ${upd} }`, '  }');
  for (let r = 0; r < rows; r++) lines.push(`  for (let j = 0; j < ${n}; j++) ${O(`(i + ${r})`, 'j')} ${store} ${S}[${r ? `${r * n} + ` : ''}j];`);
  lines.push('}');
  return lines.join('\n');
}
