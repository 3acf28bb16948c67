// y = a @ b for ranks 1 and 2 (numpy's rule without batch dims);
// da = dy @ bᵀ, db = aᵀ @ dy, with vectors treated as rows or columns as numpy does.
import type { Node } from '../ir/node.ts';
import { shapeToString, type Shape } from '../ir/tensor.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

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
    // A transposed operand is read through its source with swapped indices; B copied into panels before a loop is read from them.
    lower: ({ out, inputs: [a, b], inShapes: [sa, sb], accumulate }) => {
      const [m, k, n] = matmulDims(sa!, sb!);
      const shape = { m, k, n, transA: a!.transposed === true, transB: b!.transposed === true, accumulate: accumulate === true, ...(b!.panels ? { panels: true } : {}) };
      return [{ kind: 'product', shape, out, a: a!, b: b! }];
    },
  },
};
