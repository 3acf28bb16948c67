// y = xᵀ for a matrix;  dx = dyᵀ
import { shapeToString } from '../ir/tensor.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const transpose: PrimDef<StatementsEmit> = {
  name: 'transpose',
  arity: 1,
  shape: ([x]) => {
    if (x!.length !== 2) throw new Error(`transpose: expects a matrix, got ${shapeToString(x!)}`);
    return [x![1]!, x![0]!];
  },
  evaluate: ([x], [s]) => {
    const [r, c] = s as [number, number];
    const out = new Float64Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x![i * c + j]!;
    return out;
  },
  vjp: ({ dy }, b) => [b.transpose(dy)],
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [x], inShapes: [s] }) => {
      const [r, c] = s as [number, number];
      return [{ kind: 'copy', dims: [r, c], out, outStrides: [1, r], x: x!, xStrides: [c, 1], accumulate: false }];
    },
  },
};
