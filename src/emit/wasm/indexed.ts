// Row gathers and scatter-adds at float32 indices read from the arena (an embedding lookup and its gradient), each index checked as it is read: the kernel returns −1, or the first n whose index is not an integer in 0..rows−1. And --check-numerics' check of a tensor, which returns its first value that is not finite.
import { F32, FunctionBuilder, I32 } from './encoder.ts';
import { run, zeroRun } from './copies.ts';

/**
 * Reads the index at the byte pointer in local `indices` into local `k`, returning `n` from the
 * kernel unless it is an integer in 0..rows−1: truncated (saturating, NaN to 0), it must convert
 * back to itself and be below rows unsigned (which a negative one is not).
 */
function checkedIndex(f: FunctionBuilder, rows: number, indices: number, n: number, k: number, v: number): void {
  f.localGet(indices).f32Load().localTee(v).i32TruncSatF32S().localTee(k).f32ConvertI32S().localGet(v).f32Ne();
  f.localGet(k).i32Const(rows).i32GeU().i32Or();
  f.if().localGet(n).return().end();
}

/** Loops n over 0..count−1 (none when count is 0), the index checked, `row` given the row's byte pointer in the table or out. */
function overIndices(f: FunctionBuilder, rows: number, width: number, count: number, base: number, indices: number, row: (at: number) => void): void {
  const n = f.local(I32), k = f.local(I32), v = f.local(F32), at = f.local(I32);
  if (count === 0) return;
  f.i32Const(0).localSet(n).loop();
  checkedIndex(f, rows, indices, n, k, v);
  f.localGet(base).localGet(k).i32Const(width * 4).i32Mul().i32Add().localSet(at);
  row(at);
  f.localGet(indices).i32Const(4).i32Add().localSet(indices);
  f.localGet(n).i32Const(1).i32Add().localTee(n).i32Const(count).i32Ne().brIf(0).end();
}

/** `(out, table, indices) → i32`: out[n·width + j] = table[k·width + j], k = indices[n], for n < count, j < width. */
export function gatherKernel(rows: number, width: number, count: number): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32, I32], [I32]);
  for (const p of [0, 1, 2]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  overIndices(f, rows, width, count, 1, 2, (at) => {
    run(f, width, 0, at, false);
    f.localGet(0).i32Const(width * 4).i32Add().localSet(0);
  });
  f.i32Const(-1);
  return f;
}

/** `(out, values, indices) → i32`: out[rows×width] = 0, then out[k·width + j] += values[n·width + j], k = indices[n], for n < count in order. */
export function scatterAddKernel(rows: number, width: number, count: number): FunctionBuilder {
  const f = new FunctionBuilder([I32, I32, I32], [I32]);
  for (const p of [0, 1, 2]) f.localGet(p).i32Const(2).i32Shl().localSet(p);
  zeroRun(f, rows * width, 0);
  overIndices(f, rows, width, count, 0, 2, (at) => {
    run(f, width, at, 1, true);
    f.localGet(1).i32Const(width * 4).i32Add().localSet(1);
  });
  f.i32Const(-1);
  return f;
}

/** `(out) → i32`: the first i < size whose value out[i] is not finite (v·0 ≠ 0: NaN or ±Infinity), else −1 (--check-numerics). */
export function checkKernel(size: number): FunctionBuilder {
  const f = new FunctionBuilder([I32], [I32]);
  const i = f.local(I32);
  f.localGet(0).i32Const(2).i32Shl().localSet(0);
  if (size > 0) {
    f.i32Const(0).localSet(i).loop();
    f.localGet(0).f32Load().f32Const(0).f32Mul().f32Const(0).f32Ne().if().localGet(i).return().end();
    f.localGet(0).i32Const(4).i32Add().localSet(0);
    f.localGet(i).i32Const(1).i32Add().localTee(i).i32Const(size).i32Ne().brIf(0).end();
  }
  f.i32Const(-1);
  return f;
}
