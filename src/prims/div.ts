// y = a / b;  da = dy / b, db = -dy * y / b
import { elementwise } from './kit.ts';

export const div = elementwise({
  name: 'div',
  arity: 2,
  fn: () => (a, b) => a / b,
  scalar: ([a, b]) => `${a} / ${b}`,
  zeroFrom: ([a]) => a!, // 0/y = 0 (y ≠ 0)
  vjp: ({ dy, y, inputs: [, d] }, b) => [b.div(dy, d!), b.neg(b.div(b.mul(dy, y), d!))],
});
