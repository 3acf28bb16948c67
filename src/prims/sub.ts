// y = a - b;  da = dy, db = -dy
import { elementwise } from './kit.ts';

export const sub = elementwise({
  name: 'sub',
  arity: 2,
  fn: () => (a, b) => a - b,
  scalar: ([a, b]) => `${a} - ${b}`,
  vjp: ({ dy }, b) => [dy, b.neg(dy)],
});
