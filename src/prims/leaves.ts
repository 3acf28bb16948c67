// Leaves: `param` (a learnable tensor, by name), `input` (data bound at run time: x(t), y(t),
// the initial state s(0)), and `const` (a scalar fill, or explicit row-major data).
import { sizeOf } from '../ir/tensor.ts';
import type { LeafEmit, PrimDef, StatementsEmit } from './types.ts';

function boundLeaf(name: string): PrimDef<LeafEmit> {
  return {
    name,
    arity: 0,
    shape: (_i, attrs, declared) => {
      if (typeof attrs['name'] !== 'string') throw new Error(`${name}: needs a name`);
      return declared;
    },
    evaluate: () => {
      throw new Error(`${name} leaves are bound by the caller, not evaluated`);
    },
    vjp: () => [],
    emit: { kind: 'leaf' },
  };
}

export const param = boundLeaf('param');
export const input = boundLeaf('input');

/** The values of a const node: attrs.value (a fill) or attrs.data (row-major). */
export function constValues(attrs: Readonly<Record<string, unknown>>, n: number): Float64Array {
  const data = attrs['data'];
  if (Array.isArray(data)) return Float64Array.from(data as number[]);
  return new Float64Array(n).fill(attrs['value'] as number);
}

export const constant: PrimDef<StatementsEmit> = {
  name: 'const',
  arity: 0,
  shape: (_i, attrs, declared) => {
    const data = attrs['data'];
    if (Array.isArray(data)) {
      if (data.length !== sizeOf(declared) || data.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new Error(`const: data must hold ${sizeOf(declared)} finite numbers`);
      }
    } else if (typeof attrs['value'] !== 'number' || !Number.isFinite(attrs['value'])) {
      throw new Error('const: needs a finite value or data');
    }
    return declared;
  },
  evaluate: (_i, _s, attrs, shape) => constValues(attrs, sizeOf(shape)),
  vjp: () => [],
  emit: {
    kind: 'statements',
    lower: ({ out, attrs, shape }) => {
      const data = attrs['data'];
      return [Array.isArray(data) ? { kind: 'values', data: data as number[], out } : { kind: 'fill', size: sizeOf(shape), value: attrs['value'] as number, out }];
    },
  },
};
