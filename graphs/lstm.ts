// The sin→cos task of graphs/sincos.ts with an LSTM cell: the same data, loss, optimizer and truncated BPTT.
import { defineModel, lstm, sincosWindow } from 'unfold';

const TIME_STEP = 10;

export default defineModel({
  name: 'lstm',
  description: 'LSTM 1→32→1 predicting cos(t) from sin(t)',
  build: (batch) => lstm({ batch, input: 1, hidden: 32, output: 1 }),
  task: {
    batch: 1,
    seqLen: TIME_STEP,
    steps: 60,
    loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: 0.02 },
    carryState: true,
    seed: 1234,
    window: (k) => sincosWindow(k, { batch: 1, seqLen: TIME_STEP, input: 1, output: 1 }),
  },
});
