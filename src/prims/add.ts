// y = a + b;  da = dy, db = dy
import { elementwise } from './kit.ts';

export const add = elementwise({
  name: 'add',
  arity: 2,
  fn: () => (a, b) => a + b,
  scalar: ([a, b]) => `${a} + ${b}`,
  vjp: ({ dy }) => [dy, dy],
});
