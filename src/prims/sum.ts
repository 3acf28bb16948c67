// y = Σ over `axes` of x (those axes removed);  dx = broadcast(dy) back over the same axes
import { sizeOf } from '../ir/tensor.ts';
import { at, intList } from './kit.ts';
import { checkAxes, dropAxes, reducedIndex, reductionLoop } from './reduce.ts';
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
    code: ({ out, inputs: [x], inShapes: [s], attrs, accumulate, target }) => {
      // Over leading axes (a bias gradient: rows summed per column), the target's column-sum kernel when it has one.
      const axes = intList(attrs, 'axes');
      const lead = axes.length > 0 && axes.length < s!.length && axes.every((a, i) => a === i) ? sizeOf(s!.slice(0, axes.length)) : 0;
      const cols = sizeOf(s!) / Math.max(lead, 1);
      if (target?.kernels && lead > 0 && cols >= 4 && x!.literal === undefined && !x!.transposed) return target.kernels.columnSum(lead, cols, out.off, x!.off, accumulate === true);
      return reductionLoop(s!, intList(attrs, 'axes'), '0', (acc, f) => `${acc} + ${at(x!, f)}`, (r, acc) => `${at(out, r)} ${accumulate ? '+=' : '='} ${acc};`);
    },
  },
};
