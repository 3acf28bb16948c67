// y = (a <kind> b) ? 1 : 0, kind one of gt ge lt le eq; piecewise constant, so no gradient.
import type { Attrs } from '../ir/node.ts';
import { elementwise } from './kit.ts';

const KINDS = {
  gt: { js: '>', fn: (a: number, b: number) => (a > b ? 1 : 0) },
  ge: { js: '>=', fn: (a: number, b: number) => (a >= b ? 1 : 0) },
  lt: { js: '<', fn: (a: number, b: number) => (a < b ? 1 : 0) },
  le: { js: '<=', fn: (a: number, b: number) => (a <= b ? 1 : 0) },
  eq: { js: '===', fn: (a: number, b: number) => (a === b ? 1 : 0) },
} as const;

function kindOf(attrs: Attrs): (typeof KINDS)[keyof typeof KINDS] {
  const k = attrs['kind'];
  if (typeof k !== 'string' || !Object.hasOwn(KINDS, k)) throw new Error(`compare: unknown kind ${JSON.stringify(k)}`);
  return KINDS[k as keyof typeof KINDS];
}

export const compare = elementwise({
  name: 'compare',
  arity: 2,
  fn: (attrs) => kindOf(attrs).fn as (...xs: number[]) => number,
  scalar: ([a, b], attrs) => `(${a} ${kindOf(attrs).js} ${b} ? 1 : 0)`,
  vjp: () => [null, null],
});
