// Multi-index arithmetic for reference implementations written element by element, independently
// of the [outer, extent, inner] tricks the primitives use.
import type { Shape } from '../../src/ir/tensor.ts';
import { sizeOf } from '../../src/ir/tensor.ts';

export function unravel(flat: number, shape: Shape): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d]!;
    flat = Math.floor(flat / shape[d]!);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: Shape): number {
  let f = 0;
  for (let d = 0; d < shape.length; d++) f = f * shape[d]! + idx[d]!;
  return f;
}

/** Every multi-index of `shape`, row-major. */
export function* indices(shape: Shape): Generator<number[]> {
  const n = sizeOf(shape);
  for (let f = 0; f < n; f++) yield unravel(f, shape);
}
