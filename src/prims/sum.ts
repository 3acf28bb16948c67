// y = Σ over `axes` of x (those axes removed);  dx = broadcast(dy) back over the same axes
import { sizeOf } from '../ir/tensor.ts';
import { intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex } from './reduce.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const sum: PrimDef<StatementsEmit> = {
  name: 'sum',
  arity: 1,
  shape: ([x], attrs) => {
    const axes = intList(attrs, 'axes');
    checkAxes('sum', x!.length, axes);
    return dropAxes(x!, axes);
  },
  evaluate: ([x], [s], attrs, shape) => {
    const idx = reducedIndex(s!, intList(attrs, 'axes'));
    const out = new Float64Array(sizeOf(shape));
    for (let f = 0; f < idx.length; f++) out[idx[f]!]! += x![f]!;
    return out;
  },
  vjp: ({ dy, inputs: [x], attrs }, b) => [b.broadcast(dy, x!.shape, intList(attrs, 'axes'))],
  emit: {
    kind: 'statements',
    accumulates: true,
    lower: ({ out, inputs: [x], inShapes: [s], attrs, accumulate }) => [{ kind: 'reduce', op: 'sum', shape: s!, axes: intList(attrs, 'axes'), out, x: x!, accumulate: accumulate === true }],
  },
};
