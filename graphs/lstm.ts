// The sin→cos task of graphs/sincos.ts with an LSTM cell (gates i, f, g, o; state h and c):
// the same data, loss, optimizer and truncated BPTT — PyTorch's nn.LSTM(1, 32, batch_first=True).
import { defineModel, lstm, sincosTask } from 'unfold-rnn';

export default defineModel({
  name: 'lstm',
  description: 'LSTM 1→32→1 predicting cos(t) from sin(t)',
  build: (batch) => lstm({ batch, input: 1, hidden: 32, output: 1 }),
  task: sincosTask(),
});
