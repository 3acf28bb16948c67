// y = max over `axes` of x;  dx = dy at the maximal elements (every tied one), 0 elsewhere
import { sizeOf } from '../ir/tensor.ts';
import { intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex } from './reduce.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const max: PrimDef<StatementsEmit> = {
  name: 'max',
  arity: 1,
  shape: ([x], attrs) => {
    const axes = intList(attrs, 'axes');
    checkAxes('max', x!.length, axes);
    return dropAxes(x!, axes);
  },
  evaluate: ([x], [s], attrs, shape) => {
    const idx = reducedIndex(s!, intList(attrs, 'axes'));
    const out = new Float64Array(sizeOf(shape)).fill(-Infinity);
    for (let f = 0; f < idx.length; f++) out[idx[f]!] = Math.max(out[idx[f]!]!, x![f]!);
    return out;
  },
  vjp: ({ dy, y, inputs: [x], attrs }, b) => {
    const axes = intList(attrs, 'axes');
    const isMax = b.compare('eq', x!, b.broadcast(y, x!.shape, axes));
    return [b.where(isMax, b.broadcast(dy, x!.shape, axes), b.scalar(0, x!.shape))];
  },
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [x], inShapes: [s], attrs }) => [{ kind: 'reduce', op: 'max', shape: s!, axes: intList(attrs, 'axes'), out, x: x!, accumulate: false }],
  },
};
