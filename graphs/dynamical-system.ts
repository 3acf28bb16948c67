// An input-free dynamical system s(t) = f(s(t−1); θ): a linear map s(t) = A s(t−1) + b with
// learnable A and b, fitted to an observed damped rotation (radius × 0.95, angle + 0.3 per step)
// that starts from s(0) = (1, 0). The output is the state itself.
import { add, defineModel, matmul, param, recurrence, state, tensor, transpose, type Tensor } from 'unfold-rnn';

const STEPS = 20;
const DAMPING = 0.95;
const ANGLE = 0.3;

/** The observed trajectory s(1..T) of the true system, [B, T, 2], every row from (1, 0). */
function trajectory(batch: number): Tensor {
  const y = tensor([batch, STEPS, 2]);
  for (let b = 0; b < batch; b++) {
    for (let t = 1; t <= STEPS; t++) {
      const r = DAMPING ** t;
      y.data[(b * STEPS + t - 1) * 2] = r * Math.cos(ANGLE * t);
      y.data[(b * STEPS + t - 1) * 2 + 1] = r * Math.sin(ANGLE * t);
    }
  }
  return y;
}

export default defineModel({
  name: 'dynamical-system',
  description: 's(t) = A s(t−1) + b fitted to a damped rotation',
  build: (batch) => {
    const s = state('s', [batch, 2]);
    const A = param('A', [2, 2], [1, 0, 0, 1]);
    const b = param('b', [2], 0);
    return recurrence({
      name: 'dynamical-system',
      state: { s },
      params: { A, b },
      step: ({ s }) => ({ s: add(matmul(s, transpose(A)), b) }),
      output: ({ s }) => ({ o: s }),
    });
  },
  task: {
    batch: 1,
    seqLen: STEPS,
    steps: 300,
    loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: 0.01 },
    carryState: false,
    window: () => ({ y: trajectory(1), initial: { s: tensor([1, 2], [1, 0]) } }),
  },
});
