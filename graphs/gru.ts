// The sin→cos task of graphs/sincos.ts with a GRU cell: the same data, loss, optimizer and truncated BPTT.
import { defineModel, gru, sincosWindow } from 'unfold';

const TIME_STEP = 10;

export default defineModel({
  name: 'gru',
  description: 'GRU 1→32→1 predicting cos(t) from sin(t)',
  build: (batch) => gru({ batch, input: 1, hidden: 32, output: 1 }),
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
