// The adding problem (Hochreiter & Schmidhuber 1997), with variable lengths: each row holds T
// steps of (u, marker), u ~ U(0, 1), of which its first `lengths[b]` are valid; exactly two valid
// steps are marked (one in each half) and the target at the row's last valid step is the sum of
// their u. A many-to-one task: the loss looks at each row's last valid step only.
import type { TaskDef, Window } from '../dsl/model.ts';
import { mulberry32 } from '../dsl/init.ts';

export interface AddingShape {
  readonly batch: number;
  readonly seqLen: number;
  /** The shortest row (default ⌈seqLen / 2⌉); lengths are uniform in minLength..seqLen. */
  readonly minLength?: number;
}

/** Window k: x [B, T, 2] (value, marker), y [B, T, 1] (the sum at each row's last valid step, 0 elsewhere), lengths [B]. */
export function addingWindow(k: number, shape: AddingShape, seed = 1): Window {
  const { batch: B, seqLen: T } = shape;
  const min = shape.minLength ?? Math.ceil(T / 2);
  const next = mulberry32((seed * 0x9e3779b1 + k) >>> 0);
  const x = new Float64Array(B * T * 2), y = new Float64Array(B * T), lengths = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    const n = min + Math.floor(next() * (T - min + 1));
    lengths[b] = n;
    for (let t = 0; t < T; t++) x[(b * T + t) * 2] = next();
    const half = Math.max(1, Math.floor(n / 2));
    const first = Math.floor(next() * half), second = Math.min(n - 1, half + Math.floor(next() * (n - half)));
    for (const t of [first, second]) x[(b * T + t) * 2 + 1] = 1;
    y[b * T + n - 1] = x[(b * T + first) * 2]! + x[(b * T + second) * 2]!;
  }
  return { x: { shape: [B, T, 2], data: x }, y: { shape: [B, T, 1], data: y }, lengths: { shape: [B], data: lengths } };
}

/** The adding problem as a model file's task: MSE at each row's last valid step, Adam. */
export function addingTask(opts: { batch?: number; seqLen?: number; minLength?: number; steps?: number; lr?: number; seed?: number } = {}): TaskDef {
  const shape = { batch: opts.batch ?? 16, seqLen: opts.seqLen ?? 20, ...(opts.minLength !== undefined ? { minLength: opts.minLength } : {}) };
  return {
    batch: shape.batch,
    seqLen: shape.seqLen,
    steps: opts.steps ?? 600,
    loss: { kind: 'mse', over: 'last' },
    optimizer: { name: 'adam', lr: opts.lr ?? 0.01 },
    carryState: false,
    seed: opts.seed ?? 1234,
    window: (k) => addingWindow(k, shape),
  };
}
