// y = x with `before` and `after` zeros along `axis`;  dx = the middle slice of dy
import { shapeToString, sizeOf } from '../ir/tensor.ts';
import { intAttr, offsetPlus } from './kit.ts';
import { aroundAxis } from './slice.ts';
import type { PrimDef, StatementsEmit } from './types.ts';

export const pad: PrimDef<StatementsEmit> = {
  name: 'pad',
  arity: 1,
  shape: ([x], attrs) => {
    const axis = intAttr(attrs, 'axis'), before = intAttr(attrs, 'before'), after = intAttr(attrs, 'after');
    if (!(axis >= 0 && axis < x!.length)) throw new Error(`pad: axis ${axis} out of range for ${shapeToString(x!)}`);
    if (before < 0 || after < 0) throw new Error(`pad: negative padding ${before}, ${after}`);
    return x!.map((d, i) => (i === axis ? d + before + after : d));
  },
  evaluate: ([x], [s], attrs, shape) => {
    const axis = intAttr(attrs, 'axis'), before = intAttr(attrs, 'before');
    const [outer, extent, inner] = aroundAxis(s!, axis);
    const full = shape[axis]!;
    const out = new Float64Array(sizeOf(shape));
    for (let o = 0; o < outer; o++) out.set(x!.subarray(o * extent * inner, (o + 1) * extent * inner), (o * full + before) * inner);
    return out;
  },
  vjp: ({ dy, inputs: [x], attrs }, b) => {
    const axis = intAttr(attrs, 'axis'), before = intAttr(attrs, 'before');
    return [b.slice(dy, axis, before, before + x!.shape[axis]!)];
  },
  emit: {
    kind: 'statements',
    // Zeros, then x's rows into the middle of the output's.
    lower: ({ out, inputs: [x], inShapes: [s], attrs, shape }) => {
      const axis = intAttr(attrs, 'axis'), before = intAttr(attrs, 'before');
      const [outer, extent, inner] = aroundAxis(s!, axis);
      const span = extent * inner;
      return [
        { kind: 'fill', size: sizeOf(shape), value: 0, out },
        { kind: 'copy', dims: [outer, span], out: { ...out, off: offsetPlus(out, before * inner) }, outStrides: [shape[axis]! * inner, 1], x: x!, xStrides: [span, 1], accumulate: false },
      ];
    },
  },
};
