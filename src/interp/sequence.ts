// Batch-first sequences [B, T, K] <-> the per-step leaves `name@t` [B, K] of an unrolled graph.
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, type Tensor } from '../ir/tensor.ts';

/** Step t (1-based) of a [B, T, K] sequence as a [B, K] row block. */
export function stepOf(seq: Tensor, t: number): Float64Array {
  const [B, T, K] = seq.shape as [number, number, number];
  const out = new Float64Array(B * K);
  for (let b = 0; b < B; b++) out.set(seq.data.subarray((b * T + t - 1) * K, (b * T + t) * K), b * K);
  return out;
}

/** Per-step [B, K] blocks back into a [B, T, K] sequence. */
export function stackSteps(steps: readonly ArrayLike<number>[], B: number, K: number): Tensor {
  const T = steps.length;
  const data = new Float64Array(B * T * K);
  steps.forEach((s, i) => {
    for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) data[(b * T + i) * K + k] = s[b * K + k]!;
  });
  return { shape: [B, T, K], data };
}

/** Binds `name@1..T` from a [B, T, K] tensor, checking its shape. */
export function bindSequence(into: Map<string, Float64Array>, name: string, seq: Tensor, B: number, T: number, K: number, file = 'data'): void {
  if (seq.shape.length !== 3 || seq.shape[0] !== B || seq.shape[1] !== T || seq.shape[2] !== K) {
    throw new UnfoldError(`${file}: tensor "${name}" has shape ${shapeToString(seq.shape)}, expected ${shapeToString([B, T, K])}`);
  }
  for (let t = 1; t <= T; t++) into.set(`${name}@${t}`, stepOf(seq, t));
}
