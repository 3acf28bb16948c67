// y = 1 / (1 + exp(-x));  dx = dy * y * (1 - y)
import { elementwise } from './kit.ts';

export const sigmoid = elementwise({
  name: 'sigmoid',
  arity: 1,
  fn: () => (a) => 1 / (1 + Math.exp(-a)),
  scalar: ([a]) => `1 / (1 + Math.exp(-(${a})))`,
  vjp: ({ dy, y }, b) => [b.mul(dy, b.mul(y, b.sub(b.scalar(1, y.shape), y)))],
});
