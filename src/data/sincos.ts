// The sin→cos task of the PyTorch RNN tutorial, as ../shared/bench/workloads.json specifies it:
// window k spans [kπ, (k+1)π] at T points (linspace, both ends); channel j and batch row b are
// phase-shifted by 0.1 j and 2πb/B; x = sin, y = cos.
import { tensor, type Tensor } from '../ir/tensor.ts';
import type { TaskDef } from '../dsl/model.ts';

export interface SincosShape {
  readonly batch: number;
  readonly seqLen: number;
  readonly input: number;
  readonly output: number;
}

/** Sample times of window k: linspace(kπ, (k+1)π, T), computed as numpy/torch do. */
export function windowTimes(k: number, seqLen: number): number[] {
  const a = k * Math.PI, b = (k + 1) * Math.PI;
  if (seqLen === 1) return [a];
  return Array.from({ length: seqLen }, (_, s) => a + ((b - a) * s) / (seqLen - 1));
}

export function sincosWindow(k: number, shape: SincosShape): { x: Tensor; y: Tensor } {
  const { batch: B, seqLen: T, input: I, output: O } = shape;
  const ts = windowTimes(k, T);
  const phase = B === 1 ? 0 : (2 * Math.PI) / B;
  const x = tensor([B, T, I]);
  const y = tensor([B, T, O]);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < T; s++) {
      for (let j = 0; j < I; j++) x.data[(b * T + s) * I + j] = Math.sin(ts[s]! + j * 0.1 + b * phase);
      for (let j = 0; j < O; j++) y.data[(b * T + s) * O + j] = Math.cos(ts[s]! + j * 0.1 + b * phase);
    }
  }
  return { x, y };
}

/**
 * The seed task: window k of the sin→cos signal at each training step, MSE, Adam, the hidden state
 * carried from window to window and detached (truncated BPTT) — the PyTorch tutorial's loop.
 * @example task: sincosTask() // 10 points per window, 60 steps, Adam lr 0.02, batch 1
 */
export function sincosTask(opts: { seqLen?: number; steps?: number; lr?: number; batch?: number; input?: number; output?: number; seed?: number } = {}): TaskDef {
  const shape = { batch: opts.batch ?? 1, seqLen: opts.seqLen ?? 10, input: opts.input ?? 1, output: opts.output ?? 1 };
  return {
    batch: shape.batch,
    seqLen: shape.seqLen,
    steps: opts.steps ?? 60,
    loss: { kind: 'mse' },
    optimizer: { name: 'adam', lr: opts.lr ?? 0.02 },
    carryState: true,
    seed: opts.seed ?? 1234,
    window: (k) => sincosWindow(k, shape),
  };
}
