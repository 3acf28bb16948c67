// y = x repeated along new axes `axes` of `shape` (x's shape is `shape` without them);
// dy is summed back over those axes.
import { sameShape, shapeToString, sizeOf } from '../ir/tensor.ts';
import { at, intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex, reducedLoop } from './reduce.ts';
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
    code: ({ out, inputs: [x], inShapes: [s], attrs, shape }) => {
      if (s!.length === 0) {
        const n = sizeOf(shape);
        return n === 1 ? `${at(out, 0)} = ${at(x!, 0)};` : `{ const v = ${at(x!, 0)}; for (let f = 0; f < ${n}; f++) ${at(out, 'f')} = v; }`;
      }
      return reducedLoop(shape, intList(attrs, 'axes'), (f, r) => `${at(out, f)} = ${at(x!, r)};`);
    },
  },
};
