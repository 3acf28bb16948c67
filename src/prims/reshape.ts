// y = x with a new shape of the same size (row-major order kept);  dx = reshape(dy, x.shape)
import { shapeToString, sizeOf } from '../ir/tensor.ts';
import { intList } from './kit.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const reshape: PrimDef<StatementsEmit> = {
  name: 'reshape',
  arity: 1,
  shape: ([x], attrs) => {
    const shape = intList(attrs, 'shape');
    if (shape.some((d) => d < 0) || sizeOf(shape) !== sizeOf(x!)) {
      throw new Error(`reshape: cannot reshape ${shapeToString(x!)} (${sizeOf(x!)} elements) to ${shapeToString(shape)}`);
    }
    return shape;
  },
  evaluate: ([x]) => Float64Array.from(x!),
  vjp: ({ dy, inputs: [x] }, b) => [b.reshape(dy, x!.shape)],
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [x], shape }) => [{ kind: 'copy', dims: [sizeOf(shape)], out, outStrides: [1], x: x!, xStrides: [1], accumulate: false }],
  },
};
