// y = scatter-add: Σ of values [...N, H] into the rows [V, H] their indices [...N] name (gather's VJP: rows read
// twice collect both cotangents);  dvalues = gather(dy, indices), and the indices get none.
import { intAttr } from './kit.ts';
import { sizeOf, shapeToString } from '../ir/tensor.ts';
import { rowIndex } from './gather.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const scatter: PrimDef<StatementsEmit> = {
  name: 'scatter',
  arity: 2,
  shape: ([values, indices], attrs) => {
    const V = intAttr(attrs, 'rows');
    if (V < 1) throw new Error(`scatter: rows must be positive, got ${V}`);
    if (values!.length !== indices!.length + 1 || indices!.some((d, i) => d !== values![i])) {
      throw new Error(`scatter: values ${shapeToString(values!)} must be indices ${shapeToString(indices!)} plus one axis`);
    }
    return [V, values![values!.length - 1]!];
  },
  evaluate: ([values, indices], _s, _attrs, shape) => {
    const [V, H] = shape as [number, number];
    const out = new Float64Array(V * H);
    indices!.forEach((v, n) => {
      const k = rowIndex(v, n, V);
      for (let j = 0; j < H; j++) out[k * H + j]! += values![n * H + j]!;
    });
    return out;
  },
  vjp: ({ dy, inputs: [, indices] }, b) => [b.gather(dy, indices!), null],
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [values, indices], inShapes: [, is], shape }) => {
      const [rows, width] = shape as [number, number];
      return [{ kind: 'scatterAdd', rows, width, count: sizeOf(is!), out, values: values!, indices: indices! }];
    },
  },
};
