// y = log(x);  dx = dy / x
import { elementwise } from './kit.ts';

export const log = elementwise({
  name: 'log',
  arity: 1,
  fn: () => Math.log,
  scalar: ([a]) => `Math.log(${a})`,
  vjp: ({ dy, inputs: [x] }, b) => [b.div(dy, x!)],
});
