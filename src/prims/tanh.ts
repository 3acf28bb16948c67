// y = tanh(x);  dx = dy * (1 - y*y)   (uses the primal output, like JAX's defjvp2)
import { elementwise } from './kit.ts';

export const tanh = elementwise({
  name: 'tanh',
  arity: 1,
  fn: () => Math.tanh,
  scalar: ([a]) => `Math.tanh(${a})`,
  vjp: ({ dy, y }, b) => [b.mul(dy, b.sub(b.scalar(1, y.shape), b.mul(y, y)))],
});
