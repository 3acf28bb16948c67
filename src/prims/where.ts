// y = cond != 0 ? a : b;  da = where(cond, dy, 0), db = where(cond, 0, dy); cond gets none
import { elementwise } from './kit.ts';

export const where = elementwise({
  name: 'where',
  arity: 3,
  fn: () => (c, a, b) => (c !== 0 ? a : b),
  scalar: ([c, a, b]) => `(${c} !== 0 ? ${a} : ${b})`,
  // The branch the condition takes: b where c = 0, else a and b both needed.
  zeroFrom: ([c, a, b]) => (c! ? b! : a! && b!),
  vjp: ({ dy, inputs: [c] }, b) => {
    const zero = b.scalar(0, dy.shape);
    return [null, b.where(c!, dy, zero), b.where(c!, zero, dy)];
  },
});
