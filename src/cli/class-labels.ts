// Class-index targets, as nn.CrossEntropyLoss takes them: y [B, T] of integers beside one-hot y [B, T, C]; each is checked (an integer in 0..C−1 at every valid step, any integer past a row's length) and becomes the one-hot target the trainer compares.
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, type Tensor } from '../ir/tensor.ts';
import type { LossSpec } from '../transforms/loss.ts';

/** Whether `y` is class indices for an output of `classes` features per row: [B, T] where [B, T, C] is expected. */
export function isClassIndices(y: Tensor, classes: number): boolean {
  return y.shape.length === 2 && classes >= 1;
}

/**
 * y [B, T] class indices as one-hot [B, T, C]. A row's steps past its length are padding: any
 * integer there (PyTorch code pads with 0 or −100) becomes a zero row, which the loss never reads.
 * `where` names the tensor in errors (`w.json: windows[2].y`).
 */
export function oneHotTargets(y: Tensor, classes: number, loss: LossSpec, where: string, lengths?: ArrayLike<number>): Tensor {
  if (loss.kind !== 'xent') {
    throw new UnfoldError(`${where} has shape ${shapeToString(y.shape)}: class indices [B, T] are targets of a cross-entropy loss, not --loss ${loss.kind}; give --loss xent or one-hot/real targets [B, T, ${classes}]`);
  }
  const [B, T] = y.shape as [number, number];
  const out = new Float64Array(B * T * classes);
  for (let b = 0; b < B; b++) {
    const n = lengths?.[b] ?? T;
    for (let t = 0; t < T; t++) {
      const c = y.data[b * T + t]!;
      if (!Number.isInteger(c)) throw new UnfoldError(`${where}[${b}, ${t}] is ${c}; class indices are integers`);
      if (t >= n) continue;
      if (c < 0 || c >= classes) throw new UnfoldError(`${where}[${b}, ${t}] is ${c}; a class index is in 0..${classes - 1} (the model's output has ${classes} classes)`);
      out[(b * T + t) * classes + c] = 1;
    }
  }
  return { shape: [B, T, classes], data: out };
}
