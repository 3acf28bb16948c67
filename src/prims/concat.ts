// y = the inputs joined along `axis`;  each dx_k = its slice of dy
import { shapeToString, sizeOf } from '../ir/tensor.ts';
import { intAttr, offsetPlus } from './kit.ts';
import { aroundAxis } from './slice.ts';
import type { PrimDef, Statement, StatementsEmit } from './types.ts';

export const concat: PrimDef<StatementsEmit> = {
  name: 'concat',
  arity: 'variadic',
  shape: (inputs, attrs) => {
    const axis = intAttr(attrs, 'axis');
    if (inputs.length === 0) throw new Error('concat: needs at least one input');
    const first = inputs[0]!;
    if (!(axis >= 0 && axis < first.length)) throw new Error(`concat: axis ${axis} out of range for ${shapeToString(first)}`);
    let total = 0;
    for (const s of inputs) {
      if (s.length !== first.length || s.some((d, i) => i !== axis && d !== first[i])) {
        throw new Error(`concat: shapes ${inputs.map(shapeToString).join(', ')} do not agree off axis ${axis}`);
      }
      total += s[axis]!;
    }
    return first.map((d, i) => (i === axis ? total : d));
  },
  evaluate: (inputs, shapes, attrs, shape) => {
    const axis = intAttr(attrs, 'axis');
    const [outer, full, inner] = aroundAxis(shape, axis);
    const out = new Float64Array(sizeOf(shape));
    let offset = 0;
    inputs.forEach((x, k) => {
      const ext = shapes[k]![axis]!;
      for (let o = 0; o < outer; o++) out.set(x.subarray(o * ext * inner, (o + 1) * ext * inner), (o * full + offset) * inner);
      offset += ext;
    });
    return out;
  },
  vjp: ({ dy, inputs, attrs }, b) => {
    const axis = intAttr(attrs, 'axis');
    let offset = 0;
    return inputs.map((x) => {
      const ext = x.shape[axis]!;
      const g = b.slice(dy, axis, offset, offset + ext);
      offset += ext;
      return g;
    });
  },
  emit: {
    kind: 'statements',
    // Each input is a block of rows copied into its columns of the output's rows.
    lower: ({ out, inputs, inShapes, attrs, shape }) => {
      const axis = intAttr(attrs, 'axis');
      const [outer, full, inner] = aroundAxis(shape, axis);
      let offset = 0;
      return inputs.map((x, k) => {
        const span = inShapes[k]![axis]! * inner;
        const part: Statement = { kind: 'copy', dims: [outer, span], out: { ...out, off: offsetPlus(out, offset * inner) }, outStrides: [full * inner, 1], x, xStrides: [span, 1], accumulate: false };
        offset += inShapes[k]![axis]!;
        return part;
      });
    },
  },
};
