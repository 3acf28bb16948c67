// y = (a <kind> b) ? 1 : 0, kind one of gt ge lt le eq; piecewise constant, so no gradient.
import type { Attrs } from '../ir/node.ts';
import { elementwise } from './kit.ts';
import type { CompareKind } from './types.ts';

const KINDS = {
  gt: { js: '>', fn: (a: number, b: number) => (a > b ? 1 : 0) },
  ge: { js: '>=', fn: (a: number, b: number) => (a >= b ? 1 : 0) },
  lt: { js: '<', fn: (a: number, b: number) => (a < b ? 1 : 0) },
  le: { js: '<=', fn: (a: number, b: number) => (a <= b ? 1 : 0) },
  eq: { js: '===', fn: (a: number, b: number) => (a === b ? 1 : 0) },
} as const satisfies Record<CompareKind, unknown>;

/** The comparison a compare node makes (its `kind` attribute), checked. */
export function compareKind(attrs: Attrs): CompareKind {
  const k = attrs['kind'];
  if (typeof k !== 'string' || !Object.hasOwn(KINDS, k)) throw new Error(`compare: unknown kind ${JSON.stringify(k)}`);
  return k as CompareKind;
}

export const COMPARE_KINDS = Object.keys(KINDS) as CompareKind[];

const kindOf = (attrs: Attrs) => KINDS[compareKind(attrs)];

export const compare = elementwise({
  name: 'compare',
  arity: 2,
  fn: (attrs) => kindOf(attrs).fn as (...xs: number[]) => number,
  scalar: ([a, b], attrs) => `(${a} ${kindOf(attrs).js} ${b} ? 1 : 0)`,
  // Not claimed, though gt and lt of two zeros are 0: packed rows' tails were measured without it.
  zeroFrom: () => false,
  vjp: () => [null, null],
});
