// What each command does, in the order `unfold --help` lists them: the help text loads no command's module.
export const COMMAND_SUMMARIES = {
  show: 'print a model\'s step graph as IR and the size of its unrolled and gradient graphs',
  dot: 'draw a model as DOT or SVG: folded, unfolded over τ steps, or its gradient graph',
  compile: 'emit a standalone TypeScript trainer (forward, loss, backward, optimizer) for a model',
  grad: "one window's loss, outputs, final state and gradients (parameters, inputs, initial states) as JSON",
  gradcheck: 'check the symbolic gradient against central finite differences (float64); exit 1 when off',
  train: 'train a model on its own task or a windows file: progress, checkpoints, loss and prediction plots',
  run: 'run a model forward from <state>0 for any number of steps: outputs and states as JSON, or drawn',
  evaluate: 'a trained model\'s loss, accuracy (cross-entropy) and perplexity (text) on held-out data, forward only',
  generate: 'run a trained model in a closed loop (its output fed back as the next input): text for a train --text model, else JSON',
  export: 'write a model as ONNX (the whole sequence with each recurrence an ONNX Scan, or one step) or its weights as safetensors',
  import: 'turn an ONNX file from torch.onnx.export (nn.RNN/LSTM/GRU + nn.Linear) into DIR/model.ts and its parameters',
  start: 'the demo (npm start): train graphs/sincos.ts like `unfold train graphs/sincos.ts` and draw out/sincos/*.svg',
} as const;

export type CommandName = keyof typeof COMMAND_SUMMARIES;
