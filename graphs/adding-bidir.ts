// A cell written in the DSL, stacked two layers deep with the first layer bidirectional — the
// program composes scans (stack, bidirectional); nothing is built in. The cell is a minimal gated
// unit: f = σ(x Ufᵀ + h Wfᵀ + bf), h' = f ⊙ h + (1 − f) ⊙ tanh(x Uᵀ + h Wᵀ + b).
// Trained on the adding problem (lengths 10..20, loss at each row's last valid step), where the
// reverse scan starts at each row's own last valid step.
import { add, addingTask, bidirectional, defineModel, input, matmul, mul, param, recurrence, sigmoid, stack, state, sub, tanh, transpose } from 'unfold-rnn';
import type { Node } from 'unfold-rnn';

const H = 16;

/** x Wᵀ + b for rows x [B, in]. */
const linear = (x: Node, W: Node, b?: Node) => (b ? add(matmul(x, transpose(W)), b) : matmul(x, transpose(W)));

/** One layer and direction of the gated cell; `suffix` names its parameters apart (l0, l0_reverse, l1). */
function gated(batch: number, inputSize: number, suffix: string) {
  const x = input('x', [batch, inputSize]);
  const h = state('h', [batch, H]);
  const [U, W, b] = [param(`U_${suffix}`, [H, inputSize]), param(`W_${suffix}`, [H, H]), param(`b_${suffix}`, [H])];
  const [Uf, Wf, bf] = [param(`Uf_${suffix}`, [H, inputSize]), param(`Wf_${suffix}`, [H, H]), param(`bf_${suffix}`, [H])];
  return recurrence({
    name: 'gated', state: { h }, input: { x }, params: [U, W, b, Uf, Wf, bf],
    step: ({ h }, { x }) => {
      const f = sigmoid(add(linear(x, Uf, bf), linear(h, Wf)));
      return { h: add(mul(f, h), mul(sub(1, f), tanh(add(linear(x, U, b), linear(h, W))))) };
    },
  });
}

export default defineModel({
  name: 'adding-bidir',
  description: 'a DSL-written gated cell, 2 layers (the first bidirectional), 2→16→1, on the adding problem',
  build: (batch) => {
    const V = param('V', [1, 2 * H]), c = param('c', [1]);
    return stack({
      layers: [bidirectional(gated(batch, 2, 'l0'), gated(batch, 2, 'l0_reverse')), bidirectional(gated(batch, 2 * H, 'l1'), gated(batch, 2 * H, 'l1_reverse'))],
      head: { params: [V, c], output: (top) => ({ o: linear(top, V, c) }) },
    });
  },
  task: addingTask({ batch: 16, seqLen: 20, steps: 300, lr: 0.01 }),
});
