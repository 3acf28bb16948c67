// y = |x|;  dx = dy * sign(x), with sign(0) = 0 as PyTorch's abs backward (dy·sgn(x)) gives
import { elementwise } from './kit.ts';

export const abs = elementwise({
  name: 'abs',
  arity: 1,
  // Math.abs, as the emitted code and f32x4.abs: |−0| is +0, NaN stays NaN.
  fn: () => Math.abs,
  scalar: ([a]) => `Math.abs(${a})`,
  // sign(x) as (x > 0) − (x < 0): 0 at 0 (and at NaN), so a zero input passes no gradient.
  vjp: ({ dy, inputs: [x] }, b) => {
    const zero = b.scalar(0, x!.shape);
    return [b.mul(dy, b.sub(b.compare('gt', x!, zero), b.compare('lt', x!, zero)))];
  },
});
