// y = max(x, 0);  dx = dy where x > 0, else 0
import { elementwise } from './kit.ts';

export const relu = elementwise({
  name: 'relu',
  arity: 1,
  // Math.max, as the emitted code: NaN stays NaN (as in PyTorch), −0 gives +0.
  fn: () => (a) => Math.max(a, 0),
  scalar: ([a]) => `Math.max(${a}, 0)`,
  vjp: ({ dy, inputs: [x] }, b) => [b.where(b.compare('gt', x!, b.scalar(0, x!.shape)), dy, b.scalar(0, x!.shape))],
});
