// The classic example: an Elman RNN (1 → 32 → 1, tanh) with a Linear head learns cos(t) from
// sin(t) over windows of π, 10 points each; MSE, Adam lr 0.02, 60 steps, hidden state carried
// from window to window and detached — PyTorch's nn.RNN(1, 32, batch_first=True) + nn.Linear(32, 1).
import { defineModel, elman, sincosTask } from 'unfold-rnn';

export default defineModel({
  name: 'sincos',
  description: 'Elman RNN 1→32→1 predicting cos(t) from sin(t)',
  build: (batch) => elman({ batch, input: 1, hidden: 32, output: 1 }),
  task: {
    ...sincosTask({ seqLen: 10, steps: 60, lr: 0.02 }),
    reference: { what: 'PyTorch on this task (nn.RNN(1, 32) + nn.Linear, Adam lr 0.02, 60 steps)', medianLast10: 0.04 },
  },
});
