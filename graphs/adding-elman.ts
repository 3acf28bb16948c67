// The adding problem of graphs/adding.ts with an Elman RNN (2 → 32 → 1, tanh) in place of the
// LSTM: the same task and data, for comparing how far back through time each gets a gradient
// (`unfold train graphs/adding-elman.ts --grad-flow`).
import { addingTask, defineModel, elman } from 'unfold-rnn';

export default defineModel({
  name: 'adding-elman',
  description: 'Elman RNN 2→32→1 on the adding problem, T = 20, lengths 10..20, loss at the last valid step',
  build: (batch) => elman({ batch, input: 2, hidden: 32, output: 1 }),
  task: addingTask({ batch: 16, seqLen: 20, steps: 600, lr: 0.01 }),
});
