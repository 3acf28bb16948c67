// Per-row lengths in the data: checked against B and T, and the validity table valid(t) that the
// masked recurrence (src/dsl/lengths.ts, withLengths) reads.
import { UnfoldError } from '../ir/errors.ts';
import { shapeToString, sizeOf, type Tensor } from '../ir/tensor.ts';

// The recurrence-to-recurrence masking lives with the DSL (a graph of scans applies it too).
export { batchRows, VALID, withLengths } from '../dsl/lengths.ts';

/**
 * Checks a lengths tensor against B and T: B integers in 1..T. `where` names the file and window
 * in messages ("data.json", "windows.json: window 3").
 */
export function checkLengths(lengths: Tensor | readonly number[], B: number, T: number, where: string): number[] {
  const shape = 'shape' in lengths ? lengths.shape : [lengths.length];
  const data = 'data' in lengths ? Array.from(lengths.data) : [...lengths];
  if (shape.length !== 1 || shape[0] !== B || sizeOf(shape) !== data.length) {
    throw new UnfoldError(`${where}: "lengths" has shape ${shapeToString(shape)}, expected [${B}] (one length per batch row)`);
  }
  data.forEach((v, i) => {
    if (!Number.isInteger(v) || v < 1 || v > T) {
      throw new UnfoldError(`${where}: "lengths" index ${i} is ${v}; a length must be an integer in 1..${T} (T = ${T})`);
    }
  });
  return data;
}

/** valid(t) of every step, [T][B]: 1 while t < lengths[b] (t 0-based). */
export function validTable(lengths: readonly number[], T: number): Float64Array[] {
  return Array.from({ length: T }, (_, t) => Float64Array.from(lengths, (n) => (t < n ? 1 : 0)));
}
