// y = exp(x);  dx = dy * y
import { elementwise } from './kit.ts';

export const exp = elementwise({
  name: 'exp',
  arity: 1,
  fn: () => Math.exp,
  scalar: ([a]) => `Math.exp(${a})`,
  vjp: ({ dy, y }, b) => [b.mul(dy, y)],
});
