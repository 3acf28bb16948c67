// The sin→cos task of graphs/sincos.ts with a GRU cell (gates r, z, n, reset applied after the
// product): the same data, loss, optimizer and truncated BPTT — PyTorch's nn.GRU(1, 32, batch_first=True).
import { defineModel, gru, sincosTask } from 'unfold-rnn';

export default defineModel({
  name: 'gru',
  description: 'GRU 1→32→1 predicting cos(t) from sin(t)',
  build: (batch) => gru({ batch, input: 1, hidden: 32, output: 1 }),
  task: sincosTask(),
});
