// y = x[start:end] along `axis`;  dx = dy padded with zeros back to x's extent
import { shapeToString, sizeOf } from '../ir/tensor.ts';
import { intAttr, offsetPlus } from './kit.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

/** [outer, extent, inner] of a tensor around one axis. */
export function aroundAxis(shape: readonly number[], axis: number): [number, number, number] {
  return [sizeOf(shape.slice(0, axis)), shape[axis]!, sizeOf(shape.slice(axis + 1))];
}

export const slice: PrimDef<StatementsEmit> = {
  name: 'slice',
  arity: 1,
  shape: ([x], attrs) => {
    const axis = intAttr(attrs, 'axis'), start = intAttr(attrs, 'start'), end = intAttr(attrs, 'end');
    if (!(axis >= 0 && axis < x!.length)) throw new Error(`slice: axis ${axis} out of range for ${shapeToString(x!)}`);
    if (!(start >= 0 && start < end && end <= x![axis]!)) {
      throw new Error(`slice: range ${start}:${end} is not within 0:${x![axis]} of axis ${axis} of ${shapeToString(x!)}`);
    }
    return x!.map((d, i) => (i === axis ? end - start : d));
  },
  evaluate: ([x], [s], attrs, shape) => {
    const axis = intAttr(attrs, 'axis'), start = intAttr(attrs, 'start');
    const [outer, extent, inner] = aroundAxis(s!, axis);
    const len = shape[axis]!;
    const out = new Float64Array(sizeOf(shape));
    for (let o = 0; o < outer; o++) {
      out.set(x!.subarray((o * extent + start) * inner, (o * extent + start + len) * inner), o * len * inner);
    }
    return out;
  },
  vjp: ({ dy, inputs: [x], attrs }, b) => {
    const axis = intAttr(attrs, 'axis'), start = intAttr(attrs, 'start'), end = intAttr(attrs, 'end');
    return [b.pad(dy, axis, start, x!.shape[axis]! - end)];
  },
  emit: {
    kind: 'statements',
    lower: ({ out, inputs: [x], inShapes: [s], attrs, shape }) => {
      const axis = intAttr(attrs, 'axis'), start = intAttr(attrs, 'start');
      const [outer, extent, inner] = aroundAxis(s!, axis);
      const span = shape[axis]! * inner;
      return [{ kind: 'copy', dims: [outer, span], out, outStrides: [span, 1], x: { ...x!, off: offsetPlus(x!, start * inner) }, xStrides: [extent * inner, 1], accumulate: false }];
    },
  },
};
