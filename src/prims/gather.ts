// y = table[indices]: the rows of table [V, H] at integer indices [...N], shape [...N, H] (an embedding
// lookup);  dtable = scatterAdd(dy, indices, V), and the indices get none.
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, sizeOf } from '../ir/tensor.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

/** Row indices as integers in 0..V−1, or a message naming the first that is not (the data's fault, not the graph's). */
export function rowIndex(v: number, i: number, V: number): number {
  if (!Number.isInteger(v) || v < 0 || v >= V) throw new UnfoldError(`gather: index ${i} is ${v}; indices are integers in 0..${V - 1}`);
  return v;
}

export const gather: PrimDef<StatementsEmit> = {
  name: 'gather',
  arity: 2,
  shape: ([table, indices]) => {
    if (table!.length !== 2) throw new Error(`gather: the table must be a matrix [V, H], got ${shapeToString(table!)}`);
    return [...indices!, table![1]!];
  },
  evaluate: ([table, indices], [ts]) => {
    const [V, H] = ts as [number, number];
    const out = new Float64Array(indices!.length * H);
    indices!.forEach((v, n) => out.set(table!.subarray(rowIndex(v, n, V) * H, (rowIndex(v, n, V) + 1) * H), n * H));
    return out;
  },
  vjp: ({ dy, inputs: [table, indices] }, b) => [b.scatterAdd(dy, indices!, table!.shape[0]!), null],
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [table, indices], inShapes: [ts, is] }) => {
      const [rows, width] = ts as [number, number];
      return [{ kind: 'gather', rows, width, count: sizeOf(is!), out, table: table!, indices: indices! }];
    },
  },
};
