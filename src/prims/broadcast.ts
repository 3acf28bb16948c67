// y = x repeated along new axes `axes` of `shape` (x's shape is `shape` without them);
// dy is summed back over those axes.
import { sameShape, shapeToString, sizeOf, stridesOf } from '../ir/tensor.ts';
import { intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex, reducedStrides } from './reduce.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const broadcast: PrimDef<StatementsEmit> = {
  name: 'broadcast',
  arity: 1,
  shape: ([x], attrs) => {
    const shape = intList(attrs, 'shape');
    const axes = intList(attrs, 'axes');
    checkAxes('broadcast', shape.length, axes);
    if (!sameShape(dropAxes(shape, axes), x!)) {
      throw new Error(`broadcast: cannot broadcast ${shapeToString(x!)} to ${shapeToString(shape)} along axes [${axes.join(', ')}]`);
    }
    return shape;
  },
  evaluate: ([x], _s, attrs, shape) => {
    const idx = reducedIndex(shape, intList(attrs, 'axes'));
    const out = new Float64Array(sizeOf(shape));
    for (let f = 0; f < idx.length; f++) out[f] = x![idx[f]!]!;
    return out;
  },
  vjp: ({ dy, attrs }, b) => [b.sum(dy, intList(attrs, 'axes'))],
  emit: {
    kind: 'statements',
    // Each element of out reads x where the broadcast axes are dropped (a 0 stride along them).
    lower: ({ out, inputs: [x], attrs, shape }) => [{ kind: 'copy', dims: shape, out, outStrides: stridesOf(shape), x: x!, xStrides: reducedStrides(shape, intList(attrs, 'axes')), accumulate: false }],
  },
};
