// y = -x;  dx = -dy
import { elementwise } from './kit.ts';

export const neg = elementwise({
  name: 'neg',
  arity: 1,
  fn: () => (a) => -a,
  scalar: ([a]) => `-(${a})`,
  vjp: ({ dy }, b) => [b.neg(dy)],
});
