// y = max over `axes` of x;  dx = dy at the maximal elements (every tied one), 0 elsewhere
import { sizeOf } from '../ir/tensor.ts';
import { at, intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex, reducedLoop } from './reduce.ts';
import type { PrimDef } from './types.ts';

export const max: PrimDef = {
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
    code: ({ out, inputs: [x], inShapes: [s], attrs, shape }) => {
      const n = sizeOf(shape);
      const init = n === 1 ? `${at(out, 0)} = -Infinity;` : `for (let r = 0; r < ${n}; r++) ${at(out, 'r')} = -Infinity;`;
      return `${init}\n${reducedLoop(s!, intList(attrs, 'axes'), (f, r) => `${at(out, r)} = Math.max(${at(out, r)}, ${at(x!, f)});`)}`;
    },
  },
};
