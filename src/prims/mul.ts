// y = a * b;  da = dy * b, db = dy * a
import { elementwise } from './kit.ts';

export const mul = elementwise({
  name: 'mul',
  arity: 2,
  fn: () => (a, b) => a * b,
  scalar: ([a, b]) => `${a} * ${b}`,
  zeroFrom: ([a, b]) => a! || b!, // 0·y = x·0 = 0 (finite operands)
  vjp: ({ dy, inputs: [a, c] }, b) => [b.mul(dy, c!), b.mul(dy, a!)],
});
