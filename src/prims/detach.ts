// y = x, with no gradient: stop_gradient (a detached carried state, a stabilizing shift).
import { elementwise } from './kit.ts';

export const detach = elementwise({
  name: 'detach',
  arity: 1,
  fn: () => (a) => a,
  scalar: ([a]) => `${a}`,
  vjp: () => [null],
});
