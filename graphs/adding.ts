// The adding problem, many-to-one over rows of different lengths: an LSTM (2 → 32 → 1) reads
// (value, marker) pairs and, at each row's own last valid step, outputs the sum of the two marked
// values. PyTorch's nn.LSTM(2, 32, batch_first=True) over pack_padded_sequence + nn.Linear(32, 1)
// at the last valid step; MSE, Adam lr 0.01.
import { addingTask, defineModel, lstm } from 'unfold-rnn';

export default defineModel({
  name: 'adding',
  description: 'LSTM 2→32→1 on the adding problem, T = 20, lengths 10..20, loss at the last valid step',
  build: (batch) => lstm({ batch, input: 2, hidden: 32, output: 1 }),
  task: addingTask({ batch: 16, seqLen: 20, steps: 600, lr: 0.01 }),
});
